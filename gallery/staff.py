"""Staff views. Every one checks login and permission: anonymous users are sent to log in,
others without the permission get 403."""

from django.db.models import Count
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from clinic.access import private_file_response, staff_required
from consent.models import Consent, ConsentEvent
from gallery.models import FITZPATRICK_CHOICES, FITZPATRICK_INFO, Case, Photo, Treatment

CONTENT_TYPES = {
    "jpeg": "image/jpeg",
    "png": "image/png",
    "webp": "image/webp",
    "heic": "image/heic",
    "avif": "image/avif",
}


@staff_required("gallery.view_original")
def photo_original(request: HttpRequest, pk: int) -> HttpResponse:
    photo = get_object_or_404(Photo.objects.select_related("case"), pk=pk)
    ConsentEvent.record(
        photo.case.consent,
        ConsentEvent.Kind.ORIGINAL_VIEWED,
        actor=request.user,
        details={"case": photo.case.public_id, "photo": photo.pk, "sha256": photo.sha256},
    )
    return private_file_response(
        photo.original.name,
        CONTENT_TYPES.get(photo.original_format, "application/octet-stream"),
        f"{photo.case.public_id}-{photo.role}-{photo.view}.{photo.original_format}",
    )


@staff_required("gallery.view_photo")
def photo_preview(request: HttpRequest, pk: int, width: int, fmt: str) -> HttpResponse:
    """A rendition from private storage: staff previews never use public URLs."""
    photo = get_object_or_404(Photo, pk=pk)
    for r in photo.renditions:
        if r["width"] == width and r["format"] == fmt:
            return private_file_response(r["name"], CONTENT_TYPES[fmt], f"preview-{width}.{fmt}")
    raise Http404


@staff_required("gallery.view_case", "consent.view_consent", any_of=True)
def dashboard(request: HttpRequest) -> HttpResponse:
    """The staff home: what each role has to do next."""
    user = request.user
    context = {
        "can_consent": user.has_perm("consent.add_consent"),
        "can_publish": user.has_perm("gallery.publish_case"),
        "can_upload": user.has_perm("gallery.add_case"),
        "expiring": Consent.objects.expiring_within(30).select_related("patient")[:20]
        if user.has_perm("consent.view_consent")
        else [],
    }
    return render(request, "staff/dashboard.html", context)


@staff_required("gallery.publish_case")
def coverage(request: HttpRequest) -> HttpResponse:
    """Public cases per Fitzpatrick type and treatment: whom the gallery fails to show."""
    counts = {
        (row["fitzpatrick"], row["treatment_id"]): row["n"]
        for row in Case.objects.public()
        .values("fitzpatrick", "treatment_id")
        .annotate(n=Count("pk"))
    }
    treatments = list(Treatment.objects.order_by("name"))
    rows = []
    for number, label in FITZPATRICK_CHOICES:
        cells = [counts.get((number, t.pk), 0) for t in treatments]
        rows.append(
            {
                "number": number,
                "label": label,
                "description": FITZPATRICK_INFO[number][0],
                "cells": cells,
                "total": sum(cells),
            }
        )
    return render(
        request,
        "staff/coverage.html",
        {
            "treatments": treatments,
            "rows": rows,
            "totals": [sum(r["cells"][i] for r in rows) for i in range(len(treatments))],
            "gaps": sum(1 for r in rows for c in r["cells"] if c == 0),
        },
    )
