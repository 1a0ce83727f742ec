"""Where the consultation button of a case leads."""

from django.conf import settings


def target(case=None) -> str:
    """The booking page for a case: its location's, told which case was looked at
    (``?case=<public_id>``, ``Case.booking_url``); the clinic's booking page alone without
    a case.

    The one place that decides: every consultation click goes through ``/book/``, which
    counts it and sends the visitor here."""
    if case is None:
        return settings.CLINIC_BOOKING_URL
    return case.booking_url  # the case's location's booking page (gallery/models.py)
