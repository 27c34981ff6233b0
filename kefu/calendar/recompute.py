"""How far the recomputation of running deadlines after a calendar edit got (``calendar_recomputes``).

The calendar does not know what a deadline is. It keeps one document per
calendar version that needs the running clocks recomputed: ``request`` writes
it, the background job (``jobs.calendar``) ``claim``s it, reports each batch
with ``advance`` (which also keeps the job's lease) and ends it with ``finish``
or ``fail``; the calendar screen shows the newest one (``latest``).

A newer request supersedes the older unfinished ones: its job recomputes every
running clock on the newer calendar anyway. ``unfinished`` names the requests
whose job never reached the queue (Redis down), was lost, died mid-way (its
lease ran out) or failed fewer than ``MAX_ATTEMPTS`` times, so the scheduler's
tick can queue them again; a job resumes after the last record done.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from enum import Enum

from mongoengine import DateTimeField, Document, IntField, ObjectIdField, Q, StringField

from kefu.calendar.days import stored_version
from kefu.core.clock import utcnow

LEASE = timedelta(minutes=5)   # a job reports at least this often; a request silent for longer is queued again
MAX_ATTEMPTS = 3


class RecomputeState(str, Enum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    SUPERSEDED = "superseded"


UNFINISHED = (RecomputeState.QUEUED.value, RecomputeState.RUNNING.value, RecomputeState.FAILED.value)


class CalendarRecompute(Document):
    """The recomputation of the running deadlines for one calendar version."""

    version = IntField(primary_key=True)
    state = StringField(default=RecomputeState.QUEUED.value, choices=[s.value for s in RecomputeState])
    total = IntField(default=0)        # running records when the job (last) started
    done = IntField(default=0)         # records recomputed so far
    after_id = ObjectIdField()         # the last record done: a resumed job continues after it
    queued_at = DateTimeField()        # when its job last reached rq (None while Redis is down)
    attempts = IntField(default=0)
    error = StringField()
    requested_at = DateTimeField(default=utcnow)
    started_at = DateTimeField()
    reported_at = DateTimeField()      # the job's last sign of life
    finished_at = DateTimeField()

    meta = {"collection": "calendar_recomputes", "indexes": ["state"]}

    @property
    def is_active(self) -> bool:
        return self.state in (RecomputeState.QUEUED.value, RecomputeState.RUNNING.value)


def request(now: datetime | None = None) -> CalendarRecompute:
    """Record that the running deadlines need recomputing on the calendar as stored now; supersede older requests.

    Idempotent per calendar version: a second request for the same version returns the first.
    """
    now = now or utcnow()
    version = stored_version()
    CalendarRecompute.objects(version__lt=version, state__in=UNFINISHED).update(
        set__state=RecomputeState.SUPERSEDED.value, set__finished_at=now)
    return CalendarRecompute.objects(version=version).modify(
        upsert=True, new=True, set_on_insert__requested_at=now, set_on_insert__state=RecomputeState.QUEUED.value,
        set_on_insert__done=0, set_on_insert__total=0, set_on_insert__attempts=0)


def mark_queued(version: int, now: datetime | None = None) -> None:
    """The job for ``version`` reached the queue."""
    CalendarRecompute.objects(version=version).update_one(set__queued_at=now or utcnow())


def claim(version: int, now: datetime | None = None) -> CalendarRecompute | None:
    """Start (or resume) ``version``'s recomputation for the calling job; None when it is not this job's to do:
    finished, superseded, failed too often, or running in another job whose lease has not run out."""
    now = now or utcnow()
    claimable = (Q(state=RecomputeState.QUEUED.value)
                 | Q(state=RecomputeState.RUNNING.value, reported_at__lt=now - LEASE)
                 | Q(state=RecomputeState.FAILED.value, attempts__lt=MAX_ATTEMPTS))
    recompute = CalendarRecompute.objects(Q(version=version) & claimable).modify(
        new=True, set__state=RecomputeState.RUNNING.value, set__reported_at=now, inc__attempts=1, unset__error=True,
        unset__finished_at=True)
    if recompute is not None and recompute.started_at is None:
        recompute.update(set__started_at=now)
        recompute.started_at = now
    return recompute


def advance(version: int, done: int, total: int, after_id, now: datetime | None = None) -> bool:
    """Note that ``done`` of ``total`` records are recomputed, the last being ``after_id``; False when the
    recomputation is no longer running (a newer edit superseded it): the job stops."""
    return bool(CalendarRecompute.objects(version=version, state=RecomputeState.RUNNING.value).update_one(
        set__done=done, set__total=total, set__after_id=after_id, set__reported_at=now or utcnow()))


def release(version: int) -> None:
    """The job stops after a slice of its work; the request waits in the queue for its continuation."""
    CalendarRecompute.objects(version=version, state=RecomputeState.RUNNING.value).update_one(
        set__state=RecomputeState.QUEUED.value, unset__queued_at=True, dec__attempts=1)


def finish(version: int, now: datetime | None = None) -> None:
    CalendarRecompute.objects(version=version, state=RecomputeState.RUNNING.value).update_one(
        set__state=RecomputeState.DONE.value, set__finished_at=now or utcnow())


def fail(version: int, error: str, now: datetime | None = None) -> None:
    """Record why the job failed; the tick queues it again while it has attempts left."""
    CalendarRecompute.objects(version=version, state=RecomputeState.RUNNING.value).update_one(
        set__state=RecomputeState.FAILED.value, set__error=error[:1000], set__finished_at=now or utcnow())


def unfinished(now: datetime | None = None) -> list[int]:
    """The versions whose job should be queued (again): never queued, queued or silent for longer than the
    lease, or failed with attempts left."""
    now = now or utcnow()
    stale = now - LEASE
    waiting = Q(state=RecomputeState.QUEUED.value) & (Q(queued_at=None) | Q(queued_at__lt=stale))
    dead = Q(state=RecomputeState.RUNNING.value, reported_at__lt=stale)
    retry = Q(state=RecomputeState.FAILED.value, attempts__lt=MAX_ATTEMPTS)
    return [row["_id"] for row in CalendarRecompute.objects(waiting | dead | retry).only("version").as_pymongo()]


def latest() -> CalendarRecompute | None:
    """The newest request (what the calendar screen shows), or None before the first edit."""
    return CalendarRecompute.objects.order_by("-version").first()
