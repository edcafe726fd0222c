"""The loop's long-lived objects and Python's collector."""

import gc

from aicity.core.heap import long_lived


def test_long_lived_freezes_what_exists_and_hands_it_back() -> None:
    before = gc.get_freeze_count()
    setup = [[i] for i in range(1000)]  # objects the collector tracks
    with long_lived():
        assert gc.get_freeze_count() >= before + len(setup)
        garbage: list[object] = []
        garbage.append(garbage)  # a cycle made inside the block is still collected there
        del garbage
        assert gc.collect() >= 1
    assert gc.get_freeze_count() == 0
    assert setup[999] == [999]


def test_long_lived_unfreezes_when_the_block_raises() -> None:
    try:
        with long_lived():
            raise ValueError("stop")
    except ValueError:
        pass
    assert gc.get_freeze_count() == 0
