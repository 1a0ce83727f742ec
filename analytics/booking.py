"""Where the consultation button of a case leads."""

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from django.conf import settings


def with_params(url: str, **params: str) -> str:
    """The URL with these query parameters set, its other parameters and fragment kept."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in params]
    return urlunsplit(parts._replace(query=urlencode([*query, *params.items()])))


def target(case=None) -> str:
    """The booking page for a case: its location's, told which case was looked at
    (``?case=<public_id>``, ``Case.booking_url``); the clinic's booking page alone without
    a case.

    The one place that decides: every consultation click goes through ``/book/``, which
    counts it and sends the visitor here."""
    if case is None:
        return settings.CLINIC_BOOKING_URL
    return case.booking_url  # the case's location's booking page (gallery/models.py)
