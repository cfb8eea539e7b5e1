"""A bounded LRU of users' stored state, owned by one worker between batches."""

from __future__ import annotations

from collections import OrderedDict

from app.ports import StoredUser


class UserCache:
    """LRU of :class:`StoredUser` by user id, at most ``capacity`` entries (0 disables it).

    Stale entries are harmless: writes are compare-and-set on the stored version, and a
    conflict evicts the user and re-reads it.
    """

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._entries: OrderedDict[str, StoredUser] = OrderedDict()

    def get(self, user_id: str) -> StoredUser | None:
        entry = self._entries.get(user_id)
        if entry is not None:
            self._entries.move_to_end(user_id)
        return entry

    def put(self, user: StoredUser) -> None:
        if self._capacity <= 0:
            return
        self._entries[user.user_id] = user
        self._entries.move_to_end(user.user_id)
        while len(self._entries) > self._capacity:
            self._entries.popitem(last=False)

    def evict(self, user_id: str) -> None:
        self._entries.pop(user_id, None)

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
