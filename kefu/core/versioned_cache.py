"""Per-process copies of small data that many pages read and few people edit (the working-day calendar, the
pick lists of users, departments and record types), each reloaded when its version in MongoDB moved.

Whoever writes such data bumps its stored version after the write and drops this process's copy, so the
writing process sees the edit at once; every other process compares the stored version at most every
``max_age`` seconds (2 by default), so it sees the edit within about that long, and meanwhile answers from
memory without a query. A copy is shared by every request and thread of the process: callers must not
change what ``get`` returns. Copies are kept per database (the tests use one database each).
"""
from __future__ import annotations

import threading
import time
from typing import Callable, Generic, TypeVar

from kefu.core.db import get_database

VERSIONS = "cache_versions"  # {_id: name, version: n} for the caches below that have no version of their own

T = TypeVar("T")


class VersionedCache(Generic[T]):
    """``load()``'s result, reloaded when ``stored_version()`` moved (compared at most every ``max_age`` s)."""

    def __init__(self, load: Callable[[], T], stored_version: Callable[[], int], *, max_age: float = 2.0,
                 clock: Callable[[], float] = time.monotonic):
        self.load = load
        self.stored_version = stored_version
        self.max_age = max_age
        self.clock = clock
        self._lock = threading.Lock()
        self._copy: tuple[str, int, T] | None = None  # (database, version, value)
        self._checked = 0.0

    def get(self) -> T:
        database = get_database().name
        with self._lock:
            now = self.clock()
            copy = self._copy if self._copy is not None and self._copy[0] == database else None
            if copy is not None and now - self._checked < self.max_age:
                return copy[2]
            # The version is read before the data: a write racing the load shows up as a newer version later.
            version = self.stored_version()
            if copy is None or copy[1] != version:
                copy = self._copy = (database, version, self.load())
            self._checked = now
            return copy[2]

    def clear(self) -> None:
        """Drop this process's copy: the next ``get`` loads."""
        with self._lock:
            self._copy = None


class NamedCache(VersionedCache[T]):
    """A ``VersionedCache`` whose version is the document ``name`` of ``cache_versions``; ``changed()`` after
    every write."""

    def __init__(self, name: str, load: Callable[[], T], **options):
        super().__init__(load, self._stored_version, **options)
        self.name = name

    def _stored_version(self) -> int:
        stored = get_database()[VERSIONS].find_one({"_id": self.name})
        return stored["version"] if stored else 0

    def changed(self) -> None:
        """Call after writing the data: bumps the stored version (other processes reload at their next
        check) and drops this process's copy (it reloads at once)."""
        get_database()[VERSIONS].update_one({"_id": self.name}, {"$inc": {"version": 1}}, upsert=True)
        self.clear()
