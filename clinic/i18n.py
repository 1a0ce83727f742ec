"""The language of a page.

Public pages (the gallery's URLs, under ``i18n_patterns``) have one address per language:
English at the plain URL (``/gallery/``), every other language under its prefix
(``/es/gallery/``), so a search engine sees each language at its own URL (the sitemap and
each page name the others with ``hreflang``). A visitor whose browser prefers Spanish, and
who has not chosen a language with the switch, is sent from the plain URL to the Spanish
one; the switch (``switch_language``) records the choice in the language cookie.

Pages without a language of their own (the patient's private link, error pages, staff
pages) follow the visitor's choice, else the browser's ``Accept-Language``. Views marked
``language_neutral`` (the API, the sitemap, media) always answer in the default language,
and only at their plain URL.
"""

from collections.abc import Callable
from functools import wraps
from urllib.parse import urlencode

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import Resolver404, resolve, translate_url
from django.utils import translation
from django.utils.cache import add_never_cache_headers, patch_vary_headers
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_safe

# The namespace whose pages exist in every language (gallery/urls.py).
TRANSLATED_NAMESPACE = "gallery"


def language_neutral(view: Callable) -> Callable:
    """Mark a view whose answer is the same in every language (JSON, XML, files): it is
    served in the default language, and not under a language prefix."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if translation.get_language_from_path(request.path_info):
            raise Http404("This address has no language prefix.")
        return view(request, *args, **kwargs)

    wrapper.language_neutral = True
    return wrapper


def page_kind(path_info: str) -> str:
    """ "translated" (a public page with an address per language), "neutral" or "other"."""
    try:
        match = resolve(path_info)
    except Resolver404:
        return "other"
    if getattr(match.func, "language_neutral", False):
        return "neutral"
    if TRANSLATED_NAMESPACE in match.namespaces:
        return "translated"
    return "other"


def _script_prefix(request: HttpRequest) -> str:
    return request.path[: len(request.path) - len(request.path_info)]


class LanguageMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        from_path = translation.get_language_from_path(request.path_info)
        negotiated = False
        if from_path:
            language = from_path
        else:
            # The default language is active while the path is resolved: a prefixed path
            # only resolves under its own language, a plain one under the default.
            translation.activate(settings.LANGUAGE_CODE)
            kind = page_kind(request.path_info)
            wanted = translation.get_language_from_request(request, check_path=False)
            if kind == "neutral":
                language = settings.LANGUAGE_CODE
            elif kind == "translated":
                language = settings.LANGUAGE_CODE
                negotiated = True
                if wanted != language and request.method in ("GET", "HEAD"):
                    response = self._redirect(request, wanted)
                    translation.deactivate()
                    return response
            else:
                language = wanted
                negotiated = True
        translation.activate(language)
        request.LANGUAGE_CODE = language
        try:
            response = self.get_response(request)
        finally:
            # The next request chooses again; nothing after this one runs in its language.
            translation.deactivate()
        if negotiated and response.get("Content-Type", "").startswith("text/html"):
            patch_vary_headers(response, ("Accept-Language", "Cookie"))
        response.headers.setdefault("Content-Language", language)
        return response

    def _redirect(self, request: HttpRequest, language: str) -> HttpResponse:
        """From a public page's plain URL to its address in the visitor's language."""
        target = _script_prefix(request) + translate_url(request.path_info, language)
        query = request.META.get("QUERY_STRING", "")
        response = HttpResponseRedirect(target + (f"?{query}" if query else ""))
        patch_vary_headers(response, ("Accept-Language", "Cookie"))
        add_never_cache_headers(response)
        return response


def page_in(path_info: str, language: str) -> str:
    """The address of the page at ``path_info`` in ``language`` (the same path for a page
    without an address per language)."""
    current = translation.get_language_from_path(path_info) or settings.LANGUAGE_CODE
    with translation.override(current):
        return translate_url(path_info, language)


@language_neutral
@require_safe
def switch_language(request: HttpRequest, language: str) -> HttpResponse:
    """``/language/es/?next=/gallery/``: remember the visitor's language and show them the
    page they were on in it. A plain link (no form, no CSRF token), so the public pages
    that carry it stay cacheable."""
    if language not in dict(settings.LANGUAGES):
        raise Http404("No such language.")
    following = request.GET.get("next", "/")
    if not following.startswith("/") or not url_has_allowed_host_and_scheme(
        following, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        following = "/"
    path, _, query = following.partition("?")
    target = page_in(path, language) + (f"?{query}" if query else "")
    response = HttpResponseRedirect(target)
    response.set_cookie(
        settings.LANGUAGE_COOKIE_NAME,
        language,
        max_age=settings.LANGUAGE_COOKIE_AGE,
        path=settings.LANGUAGE_COOKIE_PATH,
        domain=settings.LANGUAGE_COOKIE_DOMAIN,
        secure=settings.LANGUAGE_COOKIE_SECURE or request.is_secure(),
        httponly=settings.LANGUAGE_COOKIE_HTTPONLY,
        samesite=settings.LANGUAGE_COOKIE_SAMESITE or "Lax",
    )
    add_never_cache_headers(response)
    return response


def switch_links(request: HttpRequest, query: list[tuple[str, str]]) -> list[dict]:
    """The language switch of a page: one link per language, to ``switch_language`` with
    this page (and the query parameters it reads) to come back to."""
    from django.urls import reverse

    here = request.path_info + (f"?{urlencode(query)}" if query else "")
    current = translation.get_language()
    return [
        {
            "code": code,
            "name": name,
            "current": code == current,
            "url": reverse("switch-language", args=[code]) + "?" + urlencode({"next": here}),
        }
        for code, name in settings.LANGUAGES
    ]
