"""Counting working days without walking them: the index behind ``WorkCalendar``'s arithmetic.

Days are handled as ordinals (``date.toordinal()``: 1 is Monday 0001-01-01). Within the index's span — the
calendar's range (``FIRST_YEAR``–``LAST_YEAR`` of ``kefu.calendar.days``), widened to every year holding an entry
— the working days are a sorted list of ordinals: "working days up to a day" is a ``bisect`` and "the k-th
working day" is a position in the list. Outside the span no entry can be, so a day is worked when it is
Monday–Friday and not a fixed-date fallback holiday; that pattern repeats every 400 years (146,097 days, a whole
number of weeks) and is counted arithmetically. Every answer costs O(log n), whatever the distance between days.
"""
from __future__ import annotations

from bisect import bisect_right
from datetime import date
from functools import lru_cache
from typing import Callable, Iterable

CYCLE_YEARS = 400  # the Gregorian calendar repeats its weekdays every 400 years
MAX_ORDINAL = date.max.toordinal()


def _weekdays_to(ordinal: int) -> int:
    """Monday–Friday days with an ordinal from 1 to ``ordinal``."""
    weeks, rest = divmod(ordinal, 7)
    return weeks * 5 + min(rest, 5)


def _is_weekday(ordinal: int) -> bool:
    return ordinal % 7 not in (6, 0)  # ordinal 1 is a Monday: 6 is a Saturday, 0 a Sunday


def _holidays_off(year: int, fallback: tuple) -> list[int]:
    """Ordinals of ``year``'s fallback holidays that fall Monday–Friday (the ones taking a working day)."""
    days = (date(year, month, day).toordinal() for month, day in fallback)
    return sorted(ordinal for ordinal in days if _is_weekday(ordinal))


@lru_cache(maxsize=4)
def _cycle(fallback: tuple) -> tuple[list[int], int]:
    """Working days the fallback holidays take in the first k years of a 400-year cycle (k = 0…399), and in the
    whole cycle. Year 2000 + k stands for every year ≡ k (mod 400)."""
    before, total = [], 0
    for offset in range(CYCLE_YEARS):
        before.append(total)
        total += len(_holidays_off(2000 + offset, fallback))
    return before, total


class WorkdayIndex:
    """The working days of one calendar snapshot, answered by position.

    ``is_workday`` decides the ``special`` days (every entered day and every fallback holiday of the span);
    every other day of the span is worked when it is Monday–Friday, and a day outside the span when it is
    Monday–Friday and not one of the ``fallback`` holidays (``(month, day)`` pairs). Immutable once built.
    """

    def __init__(self, first_year: int, last_year: int, special: Iterable[date], is_workday: Callable[[date], bool],
                 fallback: Iterable[tuple[int, int]]):
        self.first = date(first_year, 1, 1).toordinal()
        self.last = date(last_year, 12, 31).toordinal()
        self.fallback = tuple(sorted(fallback))
        self._cycle_before, self._cycle_total = _cycle(self.fallback)
        off, extra = set(), []  # weekdays not worked; Saturdays and Sundays worked
        for day in set(special):
            ordinal = day.toordinal()
            if self.first <= ordinal <= self.last and is_workday(day) != _is_weekday(ordinal):
                if _is_weekday(ordinal):
                    off.add(ordinal)
                else:
                    extra.append(ordinal)
        workdays = [o for o in range(self.first, self.last + 1) if _is_weekday(o) and o not in off]
        workdays.extend(sorted(extra))
        workdays.sort()  # two sorted runs: timsort merges them in linear time
        self.workdays = workdays
        self._before = self._outside_count_to(self.first - 1)

    # -- counting ----------------------------------------------------------------------------------------------
    def count_to(self, ordinal: int) -> int:
        """Working days up to ``ordinal`` (inclusive), counted from a fixed origin: only differences mean anything."""
        if ordinal < self.first:
            return self._outside_count_to(ordinal)
        if ordinal <= self.last:
            return self._before + bisect_right(self.workdays, ordinal)
        return (self._before + len(self.workdays) + self._outside_count_to(ordinal)
                - self._outside_count_to(self.last))

    def nth_after(self, ordinal: int, n: int) -> int:
        """The ordinal of the ``n``-th working day after ``ordinal`` (``n >= 1``). ``OverflowError`` past 9999."""
        target = self.count_to(ordinal) + n
        position = target - self._before
        if 0 < position <= len(self.workdays):
            return self.workdays[position - 1]
        return self._search(ordinal, target)

    # -- outside the span --------------------------------------------------------------------------------------
    def _outside_count_to(self, ordinal: int) -> int:
        """``count_to`` for a calendar of weekends and fallback holidays only (the days outside the span)."""
        if ordinal < 1:
            return 0
        year = date.fromordinal(ordinal).year
        cycles, offset = divmod(year, CYCLE_YEARS)
        taken = cycles * self._cycle_total + self._cycle_before[offset]
        taken += sum(1 for holiday in _holidays_off(year, self.fallback) if holiday <= ordinal)
        return _weekdays_to(ordinal) - taken

    def _search(self, ordinal: int, target: int) -> int:
        """The first ordinal after ``ordinal`` whose ``count_to`` reaches ``target``: doubling, then bisection."""
        low, step = ordinal, max(target - self.count_to(ordinal), 1) * 2 + 7
        high = min(ordinal + step, MAX_ORDINAL)
        while self.count_to(high) < target:
            if high == MAX_ORDINAL:
                raise OverflowError("date value out of range")
            low, step = high, step * 2
            high = min(ordinal + step, MAX_ORDINAL)
        while high - low > 1:  # count_to(low) < target <= count_to(high)
            middle = (low + high) // 2
            if self.count_to(middle) < target:
                low = middle
            else:
                high = middle
        return high
