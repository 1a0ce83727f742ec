import math
import mimetypes
from pathlib import Path

from django.conf import settings
from django.core.files.storage import storages
from django.db import connection
from django.http import (
    FileResponse,
    Http404,
    HttpRequest,
    HttpResponse,
    JsonResponse,
)
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from gallery.api import case_json
from gallery.cache import cached_public_page
from gallery.filters import CaseFilter
from gallery.models import FITZPATRICK_INFO, Case, Treatment

PER_PAGE = 24


def _page_number(raw: str | None, pages: int) -> int | None:
    """A valid page number, or None for nonsense (the caller answers 404 or 400)."""
    if raw in (None, ""):
        return 1
    try:
        number = int(raw)
    except ValueError:
        return None
    return number if 1 <= number <= max(pages, 1) else None


def _gallery_page(request: HttpRequest):
    """Filter, count, facet and slice the public cases for the list page and the API."""
    filterset = CaseFilter(request.GET or None, queryset=Case.objects.public())
    total, facets = filterset.facets(Case.objects.public())
    pages = max(1, math.ceil(total / PER_PAGE))
    number = _page_number(request.GET.get("page"), pages)
    cases = []
    if number is not None and total:
        start = (number - 1) * PER_PAGE
        cases = list(filterset.ordered().for_display()[start : start + PER_PAGE])
    return filterset, total, facets, pages, number, cases


def _page_link(request: HttpRequest, number: int) -> str:
    params = request.GET.copy()
    params["page"] = str(number)
    return request.build_absolute_uri(f"{request.path}?{params.urlencode()}")


@require_GET
@cached_public_page
def home(request: HttpRequest) -> HttpResponse:
    featured = list(Case.objects.public().order_by("-published_at").for_display()[:6])
    return render(
        request,
        "gallery/home.html",
        {"featured": featured, "treatments": Treatment.objects.all()},
    )


@require_GET
@cached_public_page
def case_list(request: HttpRequest) -> HttpResponse:
    filterset, total, facets, pages, number, cases = _gallery_page(request)
    if number is None:
        raise Http404("No such page.")
    return render(
        request,
        "gallery/case_list.html",
        {
            "filter": filterset,
            "cases": cases,
            "total": total,
            "facets": facets,
            "page": number,
            "pages": pages,
            "previous_url": _page_link(request, number - 1) if number > 1 else None,
            "next_url": _page_link(request, number + 1) if number < pages else None,
            "fitzpatrick_info": FITZPATRICK_INFO,
        },
    )


@require_GET
@cached_public_page
def case_detail(request: HttpRequest, public_id: str) -> HttpResponse:
    case = get_object_or_404(Case.objects.public().for_display(), public_id=public_id)
    return render(
        request,
        "gallery/case_detail.html",
        {"case": case, "pairs": case.public_pairs(), "fitzpatrick_info": FITZPATRICK_INFO},
    )


@require_GET
@cached_public_page
def treatment_detail(request: HttpRequest, slug: str) -> HttpResponse:
    treatment = get_object_or_404(Treatment, slug=slug)
    cases = list(
        Case.objects.public()
        .filter(treatment=treatment)
        .order_by("-published_at")
        .for_display()[:12]
    )
    return render(request, "gallery/treatment.html", {"treatment": treatment, "cases": cases})


@require_GET
@cached_public_page
def api_case_list(request: HttpRequest) -> JsonResponse:
    filterset, total, facets, pages, number, cases = _gallery_page(request)
    errors = dict(filterset.errors) if request.GET else {}
    if number is None:
        errors["page"] = [f"Page must be a whole number from 1 to {pages}."]
    if errors:
        return JsonResponse(
            {
                "error": "Invalid filter parameters.",
                "fields": {k: list(v) for k, v in errors.items()},
            },
            status=400,
        )
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


@require_GET
@cached_public_page
def api_case_detail(request: HttpRequest, public_id: str) -> JsonResponse:
    case = Case.objects.public().for_display().filter(public_id=public_id).first()
    if case is None:
        return JsonResponse({"error": "No public case with this id."}, status=404)
    return JsonResponse(case_json(case, request))


@require_GET
def healthz(request: HttpRequest) -> HttpResponse:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return HttpResponse("ok", content_type="text/plain")


@require_GET
def robots_txt(request: HttpRequest) -> HttpResponse:
    lines = [
        "User-agent: *",
        "Disallow: /staff/",
        "Disallow: /admin/",
        "Disallow: /consent/",
        "Disallow: /api/",
        f"Sitemap: {request.build_absolute_uri('/sitemap.xml')}",
    ]
    return HttpResponse("\n".join(lines) + "\n", content_type="text/plain")


@require_GET
def public_media(request: HttpRequest, path: str) -> FileResponse:
    """Serve a public rendition on the embedded default (a proxy or CDN does in production).

    Only the public storage is reachable here; anything missing is a plain 404.
    """
    if not settings.SERVE_PUBLIC_MEDIA:
        raise Http404
    storage = storages["public"]
    root = Path(storage.location).resolve()
    target = (root / path).resolve()
    if root not in target.parents or not target.is_file():
        raise Http404
    content_type = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
    if not content_type.startswith("image/"):
        raise Http404
    response = FileResponse(target.open("rb"), content_type=content_type)
    # Names are unguessable and never reused: a year, immutable.
    response["Cache-Control"] = "public, max-age=31536000, immutable"
    response["X-Content-Type-Options"] = "nosniff"
    return response
