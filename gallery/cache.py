"""The public-page cache and its invalidation.

Every cached public response is stored under the current *publication generation*, a
random token kept in the shared cache (a file cache on one machine, Redis beyond). Any
change to what is public (publish, unpublish, archive, withdrawal, expiry) replaces the
token, so every process on every machine misses on its next request: nothing can serve a
page that still shows a withdrawn case.

Expiry needs no event to happen: the generation also records the earliest moment a public
case's consent expires, and the first request after that moment starts a new generation.
"""

import hashlib
import secrets
from collections.abc import Callable, Iterable
from datetime import datetime
from functools import wraps
from urllib.parse import urlencode

from django.core.cache import cache
from django.db.models import Exists, OuterRef
from django.http import HttpRequest, HttpResponse
from django.utils import timezone, translation
from django.utils.cache import get_conditional_response

GENERATION_KEY = "gallery:public-generation"
PAGE_TTL = 600
# How long a browser or a shared cache may keep a public page without asking again. Short:
# a withdrawn case must leave every copy soon, and asking again is cheap (the ETag below
# answers 304 from the page cache without rendering).
BROWSER_TTL = 60
PUBLIC_CACHE_CONTROL = f"public, max-age={BROWSER_TTL}"


def _next_expiry() -> datetime | None:
    """The earliest expiry among active consents that have a published case: never later
    than the first public case's consent expiry (every public case has such a consent),
    and found through the expiry index instead of checking every public case."""
    from consent.models import Consent
    from gallery.models import Case

    published = Case.objects.filter(consent_id=OuterRef("pk"), status=Case.Status.PUBLISHED)
    return (
        Consent.objects.active()
        .filter(Exists(published))
        .order_by("expires_at")
        .values_list("expires_at", flat=True)
        .first()
    )


def new_generation() -> str:
    """Start a new generation: every cached public page is stale from now on."""
    token = secrets.token_hex(8)
    cache.set(GENERATION_KEY, (token, _next_expiry()), None)
    return token


def current_generation() -> str:
    value = cache.get(GENERATION_KEY)
    if value is None:
        return new_generation()
    token, expiry = value
    if expiry is not None and timezone.now() >= expiry:
        return new_generation()
    return token


def known_params(request: HttpRequest, reads: Iterable[str] = ()) -> list[tuple[str, str]]:
    """The query parameters a public page reads (the filters, ``page`` and the view's own
    ``reads``), sorted. Others (utm_*, fbclid, random cache-busters) must neither split
    the cache nor let anyone bypass it at will."""
    from gallery.filters import CaseFilter

    known = set(CaseFilter.base_filters) | {"page", *reads}
    return sorted((k, v) for k in request.GET if k in known for v in request.GET.getlist(k))


def cached_public_page(view: Callable | None = None, *, reads: Iterable[str] = ()) -> Callable:
    """Cache anonymous GET and HEAD responses of a public view under the current generation,
    one entry per language (clinic/i18n.py chooses it before the view runs).

    ``@cached_public_page``, or ``@cached_public_page(reads=["p"])`` for a view that also
    reads query parameters of its own (the sitemap's file number).

    A stored page carries an ETag made of the generation and the request's cache key, so
    it changes whenever what is public changes; a request whose If-None-Match holds it is
    answered 304 from the cache, without rendering. HEAD is answered from the same entry
    (the server drops the body); only a GET's response is ever stored."""
    if view is None:
        return lambda view: cached_public_page(view, reads=reads)
    reads = tuple(reads)

    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if request.method not in ("GET", "HEAD") or request.user.is_authenticated:
            return view(request, *args, **kwargs)
        raw = "|".join(
            [
                request.get_host(),
                translation.get_language(),
                request.path,
                urlencode(known_params(request, reads)),
                request.headers.get("Accept", ""),
                request.headers.get("X-Fragment", ""),
            ]
        )
        digest = hashlib.sha256(raw.encode()).hexdigest()
        generation = current_generation()
        key = f"gallery:page:{generation}:{digest}"
        etag = '"' + hashlib.sha256(f"{generation}:{digest}".encode()).hexdigest()[:32] + '"'
        stored = cache.get(key)
        if stored is not None:
            status, headers, content = stored
            response = HttpResponse(content, status=status)
            for name, value in headers:
                response[name] = value
            response["X-Cache"] = "hit"
            return get_conditional_response(request, etag=etag, response=response)
        response = view(request, *args, **kwargs)
        if getattr(response, "is_rendered", True) is False:
            response.render()  # a TemplateResponse: rendered before it is stored
        if response.status_code == 200 and not response.streaming and not response.cookies:
            response["ETag"] = etag
            response["Cache-Control"] = PUBLIC_CACHE_CONTROL
            if request.method == "GET":
                # Per-request headers are not kept: the CSP middleware adds a fresh one.
                skip = {"set-cookie", "content-security-policy"}
                headers = [(k, v) for k, v in response.items() if k.lower() not in skip]
                cache.set(key, (response.status_code, headers, response.content), PAGE_TTL)
            return get_conditional_response(request, etag=etag, response=response)
        return response

    return wrapper
