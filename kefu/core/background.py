"""Work the domain hands to the background, announced as signals that the composition root connects to rq jobs.

The domain areas sit below ``jobs`` and never import it: they send one of these signals, and ``jobs.signals.connect``
(called by ``create_app``) queues the job that does the work. Every such job only speeds up what MongoDB already
holds: with nothing connected (a script without the app) or Redis down, the scheduler's next tick does the work.
"""
from __future__ import annotations

from blinker import Namespace

_signals = Namespace()

#: Records whose next alert is due already (registered late, a level raised to the top); sender: their ids as str.
alerts_due = _signals.signal("alerts-due")
#: An export too large to stream while the person waits; sender: the export job's id. Receivers return the queued
#: job, or None when the queue cannot be reached.
export_requested = _signals.signal("export-requested")
#: Choices of a field were renamed (``kefu.records.choice_migrations``); sender: the migration's id. Receivers return
#: the queued job, or None when the queue cannot be reached (the migration then runs at once).
choices_renamed = _signals.signal("choices-renamed")
#: A record type's definition was saved or it was enabled or disabled: its list sort indexes may change
#: (``kefu.records.indexes.sync_list_indexes``); sender: the type's key. Without a receiver the nightly duty does it.
record_type_saved = _signals.signal("record-type-saved")


def queued(signal, sender) -> bool:
    """Send ``signal`` and tell whether some receiver queued the work (returned something other than None)."""
    return any(result is not None for _receiver, result in signal.send(sender))
