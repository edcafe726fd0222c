"""City files (aicity/core/city.py): one that cannot be read is one typed line, never an internal error."""

from pathlib import Path

import pytest

from aicity.core.city import load_city_file
from aicity.core.errors import UserError


@pytest.mark.parametrize(("content", "words"), [
    (b"\xff\xfe not text", "cannot read city file"),                             # was a UnicodeDecodeError
    (b"a = " + b"[" * 3000 + b"1" + b"]" * 3000, "nested too deeply to read"),  # was a RecursionError
    (b"parts = [", "cannot read city file"),
    (b"parts = 5", "parts must be a list"),
])
def test_a_city_file_that_cannot_be_read_is_one_line(tmp_path: Path, content: bytes, words: str) -> None:
    path = tmp_path / "city.toml"
    path.write_bytes(content)
    with pytest.raises(UserError, match=words):
        load_city_file(path)


def test_a_city_file_names_its_parts_and_options(tmp_path: Path) -> None:
    path = tmp_path / "my-city.toml"
    path.write_text('description = "two parts"\nparts = ["mobility/grid3x3", "safety/cologne8-ems"]\n'
                    '[options.safety]\nload_multiplier = 2\n')
    city = load_city_file(path)
    assert city.name == "my-city" and city.parts == ("mobility/grid3x3", "safety/cologne8-ems")
    assert city.params == {"safety": {"load_multiplier": 2}} and city.description == "two parts"
