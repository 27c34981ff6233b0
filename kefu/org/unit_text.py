"""A unit as people type it — ``3幢2单元1201``, ``3-2-1201``, ``3栋2单元1201室``, ``A座1201`` — read into its
building, entrance and room, and the units of the organisation it names.

Sites name buildings 幢, 栋, 号楼, 座 or #, and entrances 单元; people type the same unit with any of them, with dashes
or slashes between the numbers, full-width digits, spaces, and 室 after the room. ``parse_unit_text`` reads the
three parts (the entrance may be missing); ``find_units`` finds the stored units (``kefu.org.structure.Unit``) that
match whatever words their building and entrance use.
"""
from __future__ import annotations

import re
import unicodedata
from typing import NamedTuple

from bson import ObjectId

from kefu.org.structure import Building, Unit

BUILDING_WORDS = ("幢", "栋", "号楼", "座", "#", "号")
ENTRANCE_WORD = "单元"
ROOM_WORDS = ("室", "号")
MAX_UNITS = 50

_SEPARATOR = r"[-/._—~]"
_UNIT = re.compile(
    rf"(?P<building>[A-Za-z]?\d{{1,3}}[A-Za-z]?|[A-Za-z])(?:号楼|幢|栋|座|#|号)?{_SEPARATOR}?"
    rf"(?:(?P<entrance>\d{{1,2}})(?:{ENTRANCE_WORD}{_SEPARATOR}?|{_SEPARATOR}))?"
    r"(?P<room>\d{2,5})(?:室|号)?")


class UnitText(NamedTuple):
    """A typed unit's parts, bare: ``building`` ``"3"`` or ``"A"``, ``entrance`` ``"2"`` or None, ``room``
    ``"1201"``."""

    building: str
    entrance: str | None
    room: str


def parse_unit_text(text: str | None) -> UnitText | None:
    """The building, entrance and room ``text`` names (``"3幢2单元1201"`` → ``UnitText("3", "2", "1201")``), or
    None when it does not read as a unit. A building is required: a bare ``1201`` is not a unit. Letters are
    upper-cased; the text must be a unit and nothing else (``"3幢漏水"`` is not)."""
    folded = "".join(unicodedata.normalize("NFKC", text or "").split())
    match = _UNIT.fullmatch(folded)
    if match is None:
        return None
    building, entrance, room = match.group("building", "entrance", "room")
    has_separator = folded != building + room  # "31201" is a number, not building 3 room 1201
    if not has_separator:
        return None
    return UnitText(building.upper(), entrance, room)


def building_names(parsed: UnitText) -> list[str]:
    """The names a building of ``parsed`` may be stored under (``3``, ``3幢``, ``3栋`` …)."""
    return [parsed.building, *(parsed.building + word for word in BUILDING_WORDS)]


def find_units(text: str | None, project=None, limit: int = MAX_UNITS) -> list[Unit]:
    """The units ``text`` names (:func:`parse_unit_text`), in any project or in ``project`` (an id); with no
    entrance typed, the room in every entrance of the building. Empty when ``text`` is no unit."""
    parsed = parse_unit_text(text)
    if parsed is None:
        return []
    buildings = Building.objects(name__in=building_names(parsed))
    if project is not None:
        buildings = buildings.filter(project=ObjectId(str(project)))
    building_ids = list(buildings.scalar("id"))
    if not building_ids:
        return []
    units = Unit.objects(building__in=building_ids, room__in=[parsed.room, *(parsed.room + w for w in ROOM_WORDS)])
    if parsed.entrance is not None:
        units = units.filter(entrance__in=[parsed.entrance, parsed.entrance + ENTRANCE_WORD])
    return list(units.limit(limit))
