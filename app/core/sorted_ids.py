"""Row of an id in a sorted tuple of ids, by binary search: a dictionary's lookups without the
dictionary.

A catalogue snapshot's offer ids are sorted, so the row of an id is where it sorts. A
``dict`` of 100,000 ids to rows costs ~8 MB (its table and an integer object per row); this
costs nothing beyond the tuple the snapshot holds anyway, and a lookup ~17 string comparisons
in C. Lookups are per scored offer and per offer with statistics, not per offer of the
catalogue, so the difference in time does not show in a batch.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator, Mapping
from typing import Any, TypeVar, overload

T = TypeVar("T")


class SortedIds(Mapping[str, int]):
    """``ids[i] -> i`` for a tuple of distinct ids in ascending order (not checked: the
    caller sorts; :func:`sorted` of distinct strings qualifies)."""

    __slots__ = ("_ids",)

    def __init__(self, ids: tuple[str, ...]) -> None:
        self._ids = ids

    def _row(self, key: str) -> int:
        """The row of ``key``, -1 when absent."""
        ids = self._ids
        row = bisect_left(ids, key)
        return row if row < len(ids) and ids[row] == key else -1

    def __getitem__(self, key: str) -> int:
        row = self._row(key)
        if row < 0:
            raise KeyError(key)
        return row

    @overload
    def get(self, key: str, /) -> int | None: ...

    @overload
    def get(self, key: str, default: int, /) -> int: ...

    @overload
    def get(self, key: str, default: T, /) -> int | T: ...

    def get(self, key: str, default: Any = None, /) -> Any:
        row = self._row(key)
        return default if row < 0 else row

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self._row(key) >= 0

    def __iter__(self) -> Iterator[str]:
        return iter(self._ids)

    def __len__(self) -> int:
        return len(self._ids)
