"""TUS part bookkeeping without a server."""

from __future__ import annotations

from ownbase.storage.tus import _part_keys


def test_part_keys_are_the_recorded_ones() -> None:
    row = {"id": "ID", "part_keys": [".tus/v/0.a1", ".tus/v/10.b2"], "part_offsets": [0, 10]}
    assert _part_keys(row) == [".tus/v/0.a1", ".tus/v/10.b2"]


def test_parts_of_the_previous_release_keep_their_derived_keys() -> None:
    # A rolling upgrade: an old process recorded offsets 0 and 20 only, a new one offset 10 with its key.
    row = {"id": "ID", "part_keys": [".tus/v/10.abc"], "part_offsets": [0, 10, 20]}
    assert _part_keys(row) == [".tus/ID/0", ".tus/v/10.abc", ".tus/ID/20"]
