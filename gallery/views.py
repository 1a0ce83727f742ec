import hashlib
import json
import math
import mimetypes
from pathlib import Path
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.sitemaps import views as sitemap_views
from django.core.exceptions import ValidationError
from django.core.files.storage import storages
from django.db import connection
from django.db.models import Case as Case_
from django.db.models import Exists, F, OuterRef, Prefetch, Q, When, prefetch_related_objects
from django.db.models.functions import Abs
from django.http import (
    FileResponse,
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseServerError,
    JsonResponse,
)
from django.shortcuts import render
from django.template import loader
from django.template.response import TemplateResponse
from django.templatetags.static import static
from django.urls import reverse
from django.utils.cache import get_conditional_response
from django.utils.http import http_date
from django.utils.safestring import mark_safe
from django.utils.translation import gettext
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.csp import csp_override
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_safe

from clinic.i18n import language_neutral
from gallery.cache import cached_public_page, current_generation, known_params
from gallery.context_processors import brand_context
from gallery.filter_panel import (
    active_chips,
    describe,
    filter_groups,
    nearest_matches,
    page_links,
)
from gallery.filters import SORTS, CaseFilter, page_field
from gallery.listing import checked, page_of
from gallery.models import (
    FITZPATRICK_CHOICES,
    FITZPATRICK_INFO,
    Case,
    Location,
    Photo,
    Practitioner,
    Treatment,
    booking_url,
    reference_data,
    vocabulary,
)
from gallery.openapi import openapi_document
from gallery.serialisers import case_json
from gallery.sitemaps import sitemaps

PER_PAGE = 24
MEDIA_PATH_MAX = 200  # public rendition names are about 40 characters
# Rendition names are unguessable and never reused: a year, immutable.
IMMUTABLE = "public, max-age=31536000, immutable"


# The escapes of Django's json_script, for a JSON-LD block (json_script writes only
# type="application/json"): no "</script>" or "<!--" in the data can end the block.
_SCRIPT_ESCAPES = {ord("<"): "\\u003C", ord(">"): "\\u003E", ord("&"): "\\u0026"}


def json_for_script(value) -> str:
    """JSON that is safe to write between <script> and </script>."""
    return mark_safe(json.dumps(value).translate(_SCRIPT_ESCAPES))


def _page_number(raw: str | None, pages: int) -> int | None:
    """A valid page number, or None for nonsense or a page past the last (the caller
    answers 404, or 400 and 404 for the API)."""
    try:
        number = page_field().clean(raw) or 1
    except ValidationError:
        return None
    return number if number <= max(pages, 1) else None


def _gallery_page(request: HttpRequest):
    """Filter, count, facet and slice the public cases for the list page and the API."""
    filterset = CaseFilter(request.GET or None, queryset=Case.objects.listed())
    total, facets = filterset.facets(current_generation())
    pages = max(1, math.ceil(total / PER_PAGE))
    number = _page_number(request.GET.get("page"), pages)
    cases = []
    if number is not None and total:
        start = (number - 1) * PER_PAGE
        page = page_of(filterset.qs, filterset.sort_order(), start, PER_PAGE)
        cases = list(page.for_display())
    return filterset, total, facets, pages, number, cases


def _page_link(request: HttpRequest, number: int) -> str:
    # Only the parameters the page reads: the cached page is shared by every request that
    # differs in the others, so whatever else one visitor sent must not end up in it.
    params = [(k, v) for k, v in known_params(request) if k != "page"]
    query = urlencode([*params, ("page", str(number))])
    return request.build_absolute_uri(f"{request.path}?{query}")


# The clinic's own picture for a shared link when no case can be shown (static/gallery/).
SHARE_IMAGE = {"path": "gallery/share.png", "width": 1200, "height": 630}


def share_image(request: HttpRequest, cases) -> dict:
    """What a link to the page shows when shared (og:image): the after photo of the first
    case that is not blurred as sensitive, else the clinic's own picture."""
    for case in cases:
        pairs = case.public_pairs() if not case.sensitive else []
        jpeg = pairs[0][1].public_sources().get("jpeg", []) if pairs else []
        if jpeg:
            largest = jpeg[-1]
            return {
                "url": request.build_absolute_uri(largest["url"]),
                "width": largest["width"],
                "height": largest["height"],
                "alt": gettext("%(photo)s: %(treatment)s, %(weeks)s weeks after the last session")
                % {
                    "photo": pairs[0][1].default_alt(),
                    "treatment": case.treatment.local_name.lower(),
                    "weeks": case.weeks_after_last_session,
                },
            }
    return {
        "url": request.build_absolute_uri(static(SHARE_IMAGE["path"])),
        "width": SHARE_IMAGE["width"],
        "height": SHARE_IMAGE["height"],
        "alt": gettext("%(clinic)s: before and after photos, compared side by side")
        % {"clinic": settings.CLINIC_NAME},
    }


def _canonical(request: HttpRequest) -> str:
    params = request.GET.copy()
    for key in list(params):
        if key not in CaseFilter.base_filters and key != "page":
            del params[key]
    if params.get("page") == "1":
        del params["page"]
    query = "&".join(sorted(params.urlencode().split("&"))) if params else ""
    return request.build_absolute_uri(request.path) + (f"?{query}" if query else "")


@require_safe
@cached_public_page
def home(request: HttpRequest) -> HttpResponse:
    featured = list(page_of(Case.objects.listed(), SORTS["newest"], 0, 6).for_display())
    _, facets = CaseFilter(None, queryset=Case.objects.listed()).facets(current_generation())
    return render(
        request,
        "gallery/home.html",
        {
            "featured": featured,
            "treatments": vocabulary(reference_data()["treatments"]).items(),
            "fitzpatrick": [
                {
                    "value": n,
                    "label": label,
                    "description": FITZPATRICK_INFO[n][0],
                    "swatch": FITZPATRICK_INFO[n][1],
                    "count": facets["fitzpatrick"][str(n)],
                }
                for n, label in FITZPATRICK_CHOICES
            ],
            "concerns": [
                (slug, name, facets["concern"].get(slug, 0))
                for slug, name in sorted(
                    vocabulary(reference_data()["concerns"]).items(), key=lambda kv: kv[1]
                )
            ],
            "canonical": request.build_absolute_uri(reverse("gallery:home")),
            "og_image": share_image(request, featured),
        },
    )


@require_safe
@cached_public_page
def case_list(request: HttpRequest) -> HttpResponse:
    filterset, total, facets, pages, number, cases = _gallery_page(request)
    if number is None:
        raise Http404("No such page.")
    chosen = filterset.chosen()
    chips = active_chips(chosen)
    context = {
        "filter": filterset,
        "groups": filter_groups(chosen, facets),
        "chips": chips,
        "suggestions": nearest_matches(chosen, facets) if not total else [],
        "wanted": describe(chosen),
        "cases": cases,
        "total": total,
        "page": number,
        "pages": pages,
        "page_links": page_links(number, pages, lambda n: _page_link(request, n)),
        "previous_url": _page_link(request, number - 1) if number > 1 else None,
        "next_url": _page_link(request, number + 1) if number < pages else None,
        "values": {name: values[0] for name, values in chosen.items()},
        "canonical": _canonical(request),
        "filtered": bool(chips),
        "og_image": share_image(request, cases),
    }
    template = "gallery/case_list.html"
    if request.headers.get("X-Fragment") == "layout":
        template += "#layout"  # the filter panel and results alone, for in-place updates
    response = render(request, template, context)
    response["Vary"] = "X-Fragment"
    return response


# Similar cases are chosen among this many recent candidates: ranking every public case
# that shares a concern or the treatment would read most of a large gallery per page.
SIMILAR_CANDIDATES = 200


def similar_cases(case: Case, limit: int = 4) -> list[Case]:
    """Same concern or treatment, nearest Fitzpatrick type first, among the most recent
    candidates from the listing (checked against the rule, like every list)."""
    # The case's concerns as literal ids (from its annotated slugs and the cached
    # reference data): a per-row index lookup, not a subquery over every such case.
    ids = reference_data()["concern_ids"]
    concern_ids = [ids[s] for s in case.concern_slugs() if s in ids]
    shares_concern = Exists(
        Case.concerns.through.objects.filter(case_id=OuterRef("pk"), concern_id__in=concern_ids)
    )
    candidates = (
        Case.objects.listed()
        .exclude(pk=case.pk)
        .filter(Q(shares_concern) | Q(treatment_id=case.treatment_id))
        .order_by(*SORTS["newest"])
        .values("pk")[:SIMILAR_CANDIDATES]
    )
    return list(
        checked(candidates)
        .annotate(
            concern_rank=Case_(When(shares_concern, then=0), default=1),
            distance=Abs(F("fitzpatrick") - case.fitzpatrick),
        )
        .order_by("concern_rank", "distance", "-published_at")
        .select_related("treatment", "location", "practitioner")
        .with_concern_slugs()[:limit]
    )


@require_safe
@cached_public_page
def case_detail(request: HttpRequest, public_id: str) -> HttpResponse:
    # Three queries: the case, its similar cases, and the photos of all of them at once.
    case = (
        Case.objects.public()
        .select_related("treatment", "location", "practitioner")
        .with_concern_slugs()
        .filter(public_id=public_id)
        .first()
    )
    if case is None:
        raise Http404("No public case with this id.")
    similar = similar_cases(case)
    prefetch_related_objects(
        [case, *similar], Prefetch("photos", queryset=Photo.objects.exclude(public_key=""))
    )
    return render(
        request,
        "gallery/case_detail.html",
        {
            "case": case,
            "pairs": case.public_pairs(),
            "similar": similar,
            "concerns": [
                vocabulary(reference_data()["concerns"]).get(s, s) for s in case.concern_slugs()
            ],
            "fitzpatrick_description": FITZPATRICK_INFO[case.fitzpatrick][0],
            "canonical": request.build_absolute_uri(case.get_absolute_url()),
            "og_image": share_image(request, [case]),
        },
    )


@require_safe
@cached_public_page
def treatment_detail(request: HttpRequest, slug: str) -> HttpResponse:
    treatment = Treatment.objects.filter(slug=slug).first()
    if treatment is None:
        raise Http404("No such treatment.")
    listed = Case.objects.listed().filter(treatment=treatment)
    cases = list(page_of(listed, SORTS["newest"], 0, 12).for_display())
    # FAQPage structured data only where the page shows its questions and answers.
    faq_json = None
    if treatment.faq:
        faq_json = json_for_script(
            {
                "@context": "https://schema.org",
                "@type": "FAQPage",
                "mainEntity": [
                    {
                        "@type": "Question",
                        "name": item["q"],
                        "acceptedAnswer": {"@type": "Answer", "text": item["a"]},
                    }
                    for item in treatment.faq
                ],
            }
        )
    return render(
        request,
        "gallery/treatment.html",
        {
            "treatment": treatment,
            "cases": cases,
            "canonical": request.build_absolute_uri(treatment.get_absolute_url()),
            "og_image": share_image(request, cases),
            "faq_json": faq_json,
        },
    )


# How many of a practitioner's or a location's cases their page shows (the list has all).
PEOPLE_PAGE_CASES = 12


@require_safe
@cached_public_page
def practitioner_detail(request: HttpRequest, slug: str) -> HttpResponse:
    """A practitioner: credentials, registration, where they work, their public cases."""
    # The practitioner and where they work in one query (their rows of the link table).
    links = list(
        Practitioner.locations.through.objects.filter(practitioner__slug=slug)
        .select_related("practitioner", "location")
        .order_by("location__name")
    )
    practitioner = (
        links[0].practitioner if links else Practitioner.objects.filter(slug=slug).first()
    )
    if practitioner is None:
        raise Http404("No such practitioner.")
    listed = Case.objects.listed().filter(practitioner=practitioner)
    cases = list(page_of(listed, SORTS["newest"], 0, PEOPLE_PAGE_CASES).for_display())
    locations = [link.location for link in links]
    return render(
        request,
        "gallery/practitioner.html",
        {
            "practitioner": practitioner,
            "locations": [(location, booking_url(location.booking_url)) for location in locations],
            "cases": cases,
            "canonical": request.build_absolute_uri(practitioner.get_absolute_url()),
            "og_image": share_image(request, cases),
        },
    )


@require_safe
@cached_public_page
def location_detail(request: HttpRequest, slug: str) -> HttpResponse:
    """A location: address, booking, its practitioners and its public cases."""
    links = list(
        Practitioner.locations.through.objects.filter(location__slug=slug)
        .select_related("practitioner", "location")
        .order_by("practitioner__name")
    )
    location = links[0].location if links else Location.objects.filter(slug=slug).first()
    if location is None:
        raise Http404("No such location.")
    listed = Case.objects.listed().filter(location=location)
    cases = list(page_of(listed, SORTS["newest"], 0, PEOPLE_PAGE_CASES).for_display())
    return render(
        request,
        "gallery/location.html",
        {
            "location": location,
            "practitioners": [link.practitioner for link in links],
            "booking": booking_url(location.booking_url),
            "cases": cases,
            "canonical": request.build_absolute_uri(location.get_absolute_url()),
            "og_image": share_image(request, cases),
        },
    )


def _api_error(message: str, status: int, fields: dict | None = None) -> JsonResponse:
    body = {"error": message, **({"fields": fields} if fields else {})}
    return JsonResponse(body, status=status)


# The API views only read: exempt from CSRF so that any other method (QUERY is not one
# Django's CSRF check counts as safe) is answered 405 by require_safe, not 403.
@language_neutral
@csrf_exempt
@require_safe
@cached_public_page
def api_case_list(request: HttpRequest) -> JsonResponse:
    filterset, total, facets, pages, number, cases = _gallery_page(request)
    errors = {name: list(messages) for name, messages in filterset.errors.items()}
    try:
        page_field().clean(request.GET.get("page"))
    except ValidationError as error:
        errors["page"] = error.messages
    if errors:
        names = ", ".join(errors)
        return _api_error(f"Invalid parameter{'s' * (len(errors) > 1)}: {names}.", 400, errors)
    if number is None:
        return _api_error(f"No such page: the last page is {pages}.", 404)
    return JsonResponse(
        {
            "count": total,
            "page": number,
            "pages": pages,
            "next": _page_link(request, number + 1) if number < pages else None,
            "previous": _page_link(request, number - 1) if number > 1 else None,
            "facets": facets,
            "results": [case_json(case, request) for case in cases],
        }
    )


@language_neutral
@csrf_exempt
@require_safe
@cached_public_page
def api_case_detail(request: HttpRequest, public_id: str) -> JsonResponse:
    case = Case.objects.public().for_display().filter(public_id=public_id).first()
    if case is None:
        return _api_error("No public case with this id.", 404)
    return JsonResponse(case_json(case, request))


@language_neutral
@csrf_exempt
@require_safe
@cached_public_page
def api_openapi(request: HttpRequest) -> JsonResponse:
    server_url = request.build_absolute_uri("/").rstrip("/")
    return JsonResponse(openapi_document(server_url, per_page=PER_PAGE))


@require_safe
@xframe_options_exempt
@csp_override({**settings.SECURE_CSP, "frame-ancestors": ["*"]})
@cached_public_page
def embed(request: HttpRequest) -> HttpResponse:
    """The gallery for the clinic's own website, in an iframe: the same filters as the list,
    compact cards, links opening the full case in the top window."""
    filterset, total, facets, pages, number, cases = _gallery_page(request)
    if number is None:
        raise Http404("No such page.")
    # "All N cases" opens the list under the same filters.
    query = urlencode([(k, v) for k, v in known_params(request) if k != "page"])
    return render(
        request,
        "gallery/embed.html",
        {
            "cases": cases,
            "total": total,
            "full_url": request.build_absolute_uri(reverse("gallery:list"))
            + (f"?{query}" if query else ""),
        },
    )


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """The branded 404: a mistyped link, or a case that is no longer public."""
    return render(request, "404.html", status=404)


def server_error(request: HttpRequest) -> HttpResponse:
    """The branded 500, rendered from settings alone: whatever broke may be the database
    or a context processor, so neither is used."""
    return HttpResponseServerError(loader.render_to_string("500.html", brand_context()))


@language_neutral
@require_safe
def healthz(request: HttpRequest) -> HttpResponse:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return HttpResponse("ok", content_type="text/plain; charset=utf-8")


def _sitemap_response(response: TemplateResponse) -> TemplateResponse:
    """A sitemap view's response, rendered (as the other views' are) and undated: Django
    dates a sitemap by its newest entry, and a case taken off it leaves that date as it
    was, so a conditional request would be told nothing changed."""
    response.headers.pop("Last-Modified", None)
    return response.render()


@language_neutral
@require_safe
@cached_public_page(reads=["p"])
def sitemap_xml(request: HttpRequest) -> HttpResponse:
    """The sitemap: one file while the public cases fit in one (``CasesSitemap.limit``),
    beyond that an index of the sections' files (``sitemap_section``)."""
    sections = sitemaps()
    if sections["cases"].paginator.num_pages > 1:
        return _sitemap_response(
            sitemap_views.index(request, sections, sitemap_url_name="sitemap-section")
        )
    return _sitemap_response(sitemap_views.sitemap(request, sections))


@language_neutral
@require_safe
@cached_public_page(reads=["p"])
def sitemap_section(request: HttpRequest, section: str) -> HttpResponse:
    """One file of the sitemap index: ``/sitemap-cases.xml?p=2``."""
    return _sitemap_response(sitemap_views.sitemap(request, sitemaps(), section=section))


@language_neutral
@require_safe
@cached_public_page
def robots_txt(request: HttpRequest) -> HttpResponse:
    lines = [
        "User-agent: *",
        "Disallow: /staff/",
        "Disallow: /admin/",
        "Disallow: /consent/",
        "Disallow: /api/",
        "Disallow: /book/",
        "Disallow: /a/",
        "Disallow: /language/",
        f"Sitemap: {request.build_absolute_uri('/sitemap.xml')}",
    ]
    return HttpResponse("\n".join(lines) + "\n", content_type="text/plain; charset=utf-8")


@language_neutral
@require_safe
def public_media(request: HttpRequest, path: str) -> FileResponse:
    """Serve a public rendition on the embedded default (a proxy or CDN does in production).

    Only the public storage is reachable here; anything missing is a plain 404.
    """
    if not settings.SERVE_PUBLIC_MEDIA:
        raise Http404
    # Rendition names are short and plain (r/<key>/<width>.<ext>); anything else is
    # nobody's file and must not reach the filesystem, which answers a NUL byte or an
    # over-long name with an exception (a 500) instead of "no such file".
    parts = path.split("/")
    if len(path) > MEDIA_PATH_MAX or "\\" in path or "\x00" in path or {"", ".", ".."} & set(parts):
        raise Http404
    storage = storages["public"]
    root = Path(storage.location).resolve()
    try:
        target = (root / path).resolve()
        found = root in target.parents and target.is_file()
        modified = target.stat().st_mtime if found else 0
    except (OSError, ValueError):
        found = False
    if not found:
        raise Http404
    content_type = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
    if not content_type.startswith("image/"):
        raise Http404
    # A rendition's name is unique and its file never changes: the name is its ETag.
    etag = '"' + hashlib.sha256(path.encode()).hexdigest()[:32] + '"'
    not_modified = get_conditional_response(request, etag=etag, last_modified=int(modified))
    if not_modified is not None:  # 304, or 412 for a failed If-Match
        if not_modified.status_code == 304:
            not_modified["ETag"] = etag
            not_modified["Cache-Control"] = IMMUTABLE
        return not_modified
    response = FileResponse(target.open("rb"), content_type=content_type)
    response["ETag"] = etag
    response["Last-Modified"] = http_date(modified)
    response["Cache-Control"] = IMMUTABLE
    response["X-Content-Type-Options"] = "nosniff"
    return response
