"""The twin's clock under a city loop that steps more often than the grid: seconds accumulate into grid steps."""

from __future__ import annotations

from aicity.core.domain import RunServices
from aicity.domains.energy import domain


def test_short_advances_accumulate_into_whole_grid_steps() -> None:
    scen = domain.resolve("acn-caltech-day")
    assert scen is not None
    twin = domain.open_twin(scen, seed=1, mode="smart", services=RunServices())
    twin.start()
    step = twin.site.step_s  # type: ignore[attr-defined]
    for _ in range(11):
        twin.advance(step / 12)
        assert twin.elapsed_s() == 0.0
    twin.advance(step / 12)
    assert twin.elapsed_s() == step
    twin.advance(2.5 * step)
    assert twin.elapsed_s() == 3 * step  # the half step waits for the next call
    twin.advance(0.5 * step)
    assert twin.elapsed_s() == 4 * step
    twin.close()
