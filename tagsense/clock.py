"""The time the system acts at.

`now()` is timezone.now(), unless code runs inside `at(moment)`: then it is that moment. The
demo's history (demo.simulation) replays backdated days through the same storage, evaluation
and snapshot code real scans use; that code reads the time here, so every row the replay writes
carries the simulated day, never the day the replay ran. Nothing else sets the clock.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime

from django.utils import timezone

_moment: ContextVar[datetime | None] = ContextVar("tagsense_clock", default=None)


def now() -> datetime:
    """The present, or the simulated moment inside at()."""
    moment = _moment.get()
    return timezone.now() if moment is None else moment


@contextmanager
def at(moment: datetime) -> Iterator[datetime]:
    """Run the block with the clock set to `moment` (timezone-aware)."""
    if timezone.is_naive(moment):
        raise ValueError("the clock is set to a timezone-aware moment")
    token = _moment.set(moment)
    try:
        yield moment
    finally:
        _moment.reset(token)
