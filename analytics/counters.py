"""Counting without a database write on the request path.

An event adds one to a counter in the shared cache (Redis beyond one machine, the file
cache on one), in a bucket for the current minute. ``flush()`` (``manage.py flush_counts``,
from cron every minute, and before the report is shown) adds every finished minute to the
daily rows and forgets it. Nothing lives in a process's memory: any app server counts, any
machine flushes.

Atomicity: Redis's ``add`` (SET NX) and ``incr`` (INCRBY) are atomic, and so are the
local-memory cache's (one lock). The file cache's are a read then a write, so two processes
could lose a count; there, each event holds an exclusive ``flock`` on a file beside the
cache (one machine: that is what the file cache is for).

A minute is flushed once it is over (with a margin for slow requests and clock skew), when
no server writes to it any more: reading and then deleting its counters loses nothing.
The minute is recorded in the same transaction as the counts it adds, so a flush run twice
or two flushes at once add it once.
"""

import fcntl
import logging
import os
from collections import Counter
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.filebased import FileBasedCache
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from analytics.models import DailyCaseCount, DailyFilterCount, FlushedMinute

log = logging.getLogger(__name__)

# The events of a case page, and the daily column each one adds to.
CASE_EVENTS = {"view": "views", "compare": "comparisons", "book": "bookings"}
FILTER_EVENT = "filter"
KEEP = 2 * 24 * 3600  # counters outlive a day of missed flushes
GRACE = timedelta(seconds=30)
WINDOW = timedelta(days=1)  # how far back a flush looks for unflushed minutes


def store():
    """The cache that holds the counters: its own ``counts`` alias when configured (so the
    page cache's culling cannot drop counts), else the default cache."""
    return caches["counts" if "counts" in settings.CACHES else "default"]


def _stamp(minute: datetime) -> str:
    return minute.astimezone(UTC).strftime("%Y%m%d%H%M")


def _minute(at: datetime) -> datetime:
    return at.astimezone(UTC).replace(second=0, microsecond=0)


@contextmanager
def _exclusive(cache):
    if not isinstance(cache, FileBasedCache):
        yield
        return
    os.makedirs(cache._dir, exist_ok=True)
    # Not *.djcache: the cache's clear() and culling leave this file alone.
    with open(os.path.join(cache._dir, "analytics.lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def record(kind: str, subject: str, at: datetime | None = None) -> None:
    """Add one to ``kind`` for ``subject`` (a case's public id, or ``name=value`` of a
    filter) in the current minute. Never raises: a count is not worth a failed page."""
    cache = store()
    stamp = _stamp(_minute(at or timezone.now()))
    key = f"analytics:{stamp}:n:{kind}:{subject}"
    try:
        with _exclusive(cache):
            if cache.add(key, 0, KEEP):
                # The first count of this key in this minute: list it for the flush.
                slots = f"analytics:{stamp}:slots"
                cache.add(slots, 0, KEEP)
                number = cache.incr(slots)
                cache.set(f"analytics:{stamp}:slot:{number}", (kind, subject), KEEP)
            cache.incr(key)
    except Exception:
        log.warning("Could not count %s for %s", kind, subject, exc_info=True)


def snapshot(case) -> dict:
    """The facts of a case the report groups by, copied so the counts outlive the case.
    ``location`` is read when the case has one (str() of whatever it is)."""
    location = getattr(case, "location", None)
    return {
        "case": case,
        "treatment": case.treatment.name,
        "fitzpatrick": case.fitzpatrick,
        "skin_type": case.skin_type,
        "practitioner": str(case.practitioner or ""),
        "location": str(location) if location else "",
    }


def _add(minute: datetime, counts: Counter) -> bool:
    """Add one minute's counts to the daily rows; False if it was added before."""
    from gallery.models import Case

    with transaction.atomic():
        try:
            with transaction.atomic():
                FlushedMinute.objects.create(minute=minute)
        except IntegrityError:
            return False
        day = timezone.localdate(minute)
        per_case: dict[str, Counter] = {}
        for (kind, subject), n in counts.items():
            if kind in CASE_EVENTS:
                per_case.setdefault(subject, Counter())[CASE_EVENTS[kind]] += n
            elif kind == FILTER_EVENT:
                name, _, value = subject.partition("=")
                row, _ = DailyFilterCount.objects.get_or_create(date=day, name=name, value=value)
                DailyFilterCount.objects.filter(pk=row.pk).update(count=F("count") + n)
        cases = Case.objects.select_related("treatment").in_bulk(per_case, field_name="public_id")
        for public_id, columns in per_case.items():
            case = cases.get(public_id)
            facts = snapshot(case) if case else {}
            row, _ = DailyCaseCount.objects.get_or_create(
                date=day, public_id=public_id, defaults=facts
            )
            DailyCaseCount.objects.filter(pk=row.pk).update(
                **facts, **{column: F(column) + n for column, n in columns.items()}
            )
    return True


def flush(now: datetime | None = None) -> dict[str, int]:
    """Add every finished, unflushed minute of the last day to the daily rows."""
    now = now or timezone.now()
    cache = store()
    last = _minute(now - timedelta(minutes=1) - GRACE)
    first = _minute(now - WINDOW)
    minutes = [
        first + timedelta(minutes=i) for i in range(int((last - first).total_seconds()) // 60 + 1)
    ]
    slot_counts = cache.get_many([f"analytics:{_stamp(m)}:slots" for m in minutes])
    done = set(FlushedMinute.objects.filter(minute__gte=first).values_list("minute", flat=True))
    flushed = events = 0
    for minute in minutes:
        stamp = _stamp(minute)
        slots_key = f"analytics:{stamp}:slots"
        if slots_key not in slot_counts:
            continue
        slot_keys = [f"analytics:{stamp}:slot:{i}" for i in range(1, slot_counts[slots_key] + 1)]
        entries = set(cache.get_many(slot_keys).values())
        keys = {
            f"analytics:{stamp}:n:{kind}:{subject}": (kind, subject) for kind, subject in entries
        }
        if minute not in done:
            counts = Counter({keys[k]: v for k, v in cache.get_many(list(keys)).items() if v})
            if _add(minute, counts):
                flushed += 1
                events += sum(counts.values())
        cache.delete_many([slots_key, *slot_keys, *keys])
    FlushedMinute.objects.filter(minute__lt=first).delete()
    return {"minutes": flushed, "events": events}
