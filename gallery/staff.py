"""Staff views. Every one checks login and permission: anonymous users are sent to log in,
others without the permission get 403."""

import logging

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Count, Prefetch, Q
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from clinic.access import private_file_response, staff_required
from clinic.middleware import allows_camera
from consent.models import Consent, ConsentEvent, Patient
from gallery import images
from gallery.comparability import interval_problems, missing_facts, pair_checks
from gallery.forms import CaseForm, CropForm, PhotoUploadForm, SessionEntries
from gallery.images import PhotoRejected
from gallery.models import (
    FITZPATRICK_CHOICES,
    FITZPATRICK_INFO,
    Case,
    Photo,
    Treatment,
    after_photo_date,
    derive_facts,
)
from gallery.publication import (
    add_photo,
    build_case_renditions,
    private_storage,
    remove_photo,
    rotation_limit,
    set_pair_crop,
)
from gallery.workflow import (
    TRANSITIONS,
    WorkflowError,
    allowed_actions,
    can_edit,
    publish,
    reopen,
    send_back,
    submit_for_review,
    unpublish,
)

log = logging.getLogger(__name__)

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


def _thumbnail(photo: Photo | None) -> dict | None:
    """The smallest JPEG rendition of a photo, for a staff preview, or None."""
    jpegs = [r for r in (photo.renditions if photo else []) if r["format"] == "jpeg"]
    if not jpegs:
        return None
    smallest = min(jpegs, key=lambda r: r["width"])
    return {"pk": photo.pk, "width": smallest["width"], "height": smallest["height"]}


def next_action(user, case: Case) -> str:
    """What someone has to do next with a case, in the words of the dashboard.
    Uses prefetched photos and concerns: no query of its own."""
    photos = list(case.photos.all())
    if case.status == Case.Status.DRAFT:
        if case.review_comment:
            return "Fix what the reviewer asked"
        roles = {p.role for p in photos}
        if Photo.Role.BEFORE not in roles:
            return "Add the before photo"
        if Photo.Role.AFTER not in roles:
            return "Add the after photo"
        if any(p.rendered_at is None for p in photos):
            return "Wait for the previews"
        if not case.complete_pairs():
            return "Add a before and an after photo of the same view"
        if missing_facts(case):
            return "Fill in the missing facts"
        return "Submit for review"
    if case.status == Case.Status.REVIEW:
        if user.has_perm("gallery.publish_case"):
            return "Review and publish"
        return "Waiting for the reviewer"
    if case.status == Case.Status.PUBLISHED:
        return "Check the public page"
    return "Reopen to change it"


def _dashboard_cards(user, cases) -> list[dict]:
    """Patient, treatment, status, a before/after thumbnail and the next step of each case."""
    cards = []
    for case in cases:
        photos = list(case.photos.all())
        pair = case.complete_pairs()
        before, after = pair[0] if pair else (None, None)
        if before is None:
            before = next((p for p in photos if p.role == Photo.Role.BEFORE), None)
            after = next((p for p in photos if p.role == Photo.Role.AFTER), None)
        cards.append(
            {
                "case": case,
                "thumbs": [(_thumbnail(before), "Before"), (_thumbnail(after), "After")],
                "next": next_action(user, case),
            }
        )
    return cards


def _dashboard_cases(queryset):
    return queryset.select_related("treatment", "patient", "created_by").prefetch_related(
        Prefetch("photos", queryset=Photo.objects.order_by("view", "role", "pk")), "concerns"
    )


@staff_required("gallery.view_case", "consent.view_consent", any_of=True)
def dashboard(request: HttpRequest) -> HttpResponse:
    """The staff home: what each role has to do next, case by case. A bounded number of
    queries whatever the number of cases (photos and concerns are prefetched)."""
    user = request.user
    can_publish = user.has_perm("gallery.publish_case")
    can_upload = user.has_perm("gallery.add_case")
    my_drafts = review_queue = recently_published = []
    if can_upload:
        my_drafts = _dashboard_cases(
            Case.objects.filter(created_by=user, status=Case.Status.DRAFT).order_by("-updated_at")
        )
    if can_publish:
        review_queue = _dashboard_cases(
            Case.objects.filter(status=Case.Status.REVIEW).order_by("updated_at")
        )
        recently_published = _dashboard_cases(
            Case.objects.filter(status=Case.Status.PUBLISHED).order_by("-published_at")[:10]
        )
    context = {
        "my_drafts": _dashboard_cards(user, my_drafts),
        "review_queue": _dashboard_cards(user, review_queue),
        "recently_published": _dashboard_cards(user, recently_published),
        "can_consent": user.has_perm("consent.add_consent"),
        "can_publish": can_publish,
        "can_upload": can_upload,
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


# --- cases ---------------------------------------------------------------------------


def _editable_case(request: HttpRequest, pk: int) -> Case:
    case = get_object_or_404(Case.objects.select_related("treatment", "consent"), pk=pk)
    if not can_edit(request.user, case):
        raise PermissionDenied
    return case


@staff_required("gallery.add_case")
def case_new(request: HttpRequest) -> HttpResponse:
    """Step one: choose the patient (a case needs one of their active consents)."""
    query = request.GET.get("q", "").strip()
    patients = Patient.objects.annotate(
        active=Count("consents", filter=Q(consents__in=Consent.objects.active()))
    ).order_by("reference")
    if query:
        patients = patients.filter(Q(reference__icontains=query) | Q(full_name__icontains=query))
    return render(request, "staff/case_new.html", {"patients": patients[:30], "query": query})


@staff_required("gallery.add_case")
@require_http_methods(["GET", "POST"])
def case_create(request: HttpRequest, patient: int) -> HttpResponse:
    patient = get_object_or_404(Patient, pk=patient)
    if not Consent.objects.active().filter(patient=patient).exists():
        messages.warning(request, "Record the patient's photo consent first.")
        return redirect("consent:new", patient=patient.pk)
    form = CaseForm(request.POST or None, patient=patient)
    sessions = SessionEntries(request.POST or None)
    if request.method == "POST" and _facts_valid(form, sessions, None):
        with transaction.atomic():
            case = form.save(commit=False)
            case.created_by = request.user
            # The derived columns are never empty: from the form's sessions until
            # record_facts reads the saved ones (the same derivation).
            for name, value in derive_facts(
                sessions.records, None, case.weeks_after_entered, case.session_interval_weeks
            ).items():
                setattr(case, name, value)
            case.save()
            form.save_m2m()
            sessions.save(case)
        messages.success(request, "Case created. Now add the before and after photos.")
        return redirect("staff:case", pk=case.pk)
    return _case_form(request, form, sessions, patient, None)


@staff_required("gallery.change_case")
@require_http_methods(["GET", "POST"])
def case_edit(request: HttpRequest, pk: int) -> HttpResponse:
    case = _editable_case(request, pk)
    after_on = after_photo_date(case)
    form = CaseForm(
        request.POST or None, instance=case, patient=case.patient, after_photo_on=after_on
    )
    sessions = SessionEntries(request.POST or None, case=case)
    if request.method == "POST" and _facts_valid(form, sessions, after_on):
        with transaction.atomic():
            form.save()
            sessions.save(case)
        messages.success(request, "Facts saved.")
        return redirect("staff:case", pk=case.pk)
    return _case_form(request, form, sessions, case.patient, case, after_on)


def _facts_valid(form: CaseForm, sessions: SessionEntries, after_on) -> bool:
    # Both are checked, so every mistake shows at once; RF settings need the treatment.
    valid = form.is_valid()
    treatment = form.cleaned_data.get("treatment") if hasattr(form, "cleaned_data") else None
    return sessions.is_valid(treatment, after_on) and valid


def _case_form(request, form, sessions, patient, case, after_on=None) -> HttpResponse:
    rf_treatments = [t.pk for t in Treatment.objects.all() if t.uses_rf]
    return render(
        request,
        "staff/case_form.html",
        {
            "form": form,
            "sessions": sessions,
            "patient": patient,
            "case": case,
            "after_photo_on": after_on,
            "rf_treatments": rf_treatments,
            # RF settings show for an RF treatment (a page script follows the choice).
            "rf_on": str(form["treatment"].value()) in {str(pk) for pk in rf_treatments},
        },
    )


@allows_camera
@staff_required("gallery.view_case")
def case_detail(request: HttpRequest, pk: int) -> HttpResponse:
    case = get_object_or_404(
        Case.objects.select_related("treatment", "consent", "patient", "created_by"), pk=pk
    )
    photos = list(case.photos.all())
    checks = pair_checks(case)
    pair_warnings = any(c.warnings for c in checks)
    context = {
        "case": case,
        "photos": photos,
        "pairs": [
            {
                "before": b,
                "after": a,
                "check": c,
                "aspect": pair_aspect(b, a),
                "editors": crop_editors(b, a),
            }
            for (b, a), c in zip(case.complete_pairs(), checks, strict=True)
        ],
        "singles": [p for p in photos if not any(p in pair for pair in case.complete_pairs())],
        "missing": missing_facts(case),
        "interval": interval_problems(case),
        "pair_warnings": pair_warnings,
        "editable": can_edit(request.user, case),
        "can_publish": request.user.has_perm("gallery.publish_case"),
        "actions": allowed_actions(request.user, case),
        "problems": case.publication_problems() if case.status == Case.Status.PUBLISHED else [],
        "roles": Photo.Role.choices,
        "views": Photo.View.choices,
        "concern_names": ", ".join(c.name for c in case.concerns.all()),
        "pending": sum(1 for p in photos if p.rendered_at is None),
        "captures": capture_targets(photos),
        "sessions": case.sessions.prefetch_related("zones"),
        "after_photo_on": after_photo_date(case),
    }
    return render(request, "staff/case_detail.html", context)


def pair_aspect(before: Photo, after: Photo) -> float:
    """The shape (width / height) both crops of a pair have, as ``set_pair_crop`` keeps it:
    a stored crop's shape, else the pair's common aspect."""
    return (
        before.crop_aspect()
        or after.crop_aspect()
        or images.common_aspect([(before.width, before.height), (after.width, after.height)])
    )


def crop_editors(before: Photo, after: Photo) -> list[dict]:
    """What the crop editor of each photo of a pair starts from: the stored crop as zoom
    and centre, its turn as staff see it (the photo's, clockwise: ``CropForm.turn``) and
    how far it may turn."""
    return [
        {
            "photo": photo,
            "partner": partner,
            "controls": {
                **photo.crop_controls(),
                "turn": round(-(photo.rotation or 0.0), 3) or 0.0,
            },
            "limit": rotation_limit(photo),
        }
        for photo, partner in ((before, after), (after, before))
    ]


FRAME_LONGEST = 1200


@staff_required("gallery.change_case")
def photo_frame(request: HttpRequest, pk: int, photo: int) -> HttpResponse:
    """The whole upright photo, uncropped, small and without metadata: what the crop
    editor moves inside its frame."""
    _editable_case(request, pk)
    target = get_object_or_404(Photo, pk=photo, case_id=pk)
    scale = min(1.0, FRAME_LONGEST / max(target.width, target.height))
    size = (max(1, round(target.width * scale)), max(1, round(target.height * scale)))
    with private_storage().open(target.original.name, "rb") as fp:
        (_, _, _, data), *_ = images.render_crop(
            fp, images.Crop(0.0, 0.0, 1.0, 1.0), [size], formats=("jpeg",)
        )
    response = HttpResponse(data, content_type="image/jpeg")
    response["Cache-Control"] = "private, no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response


def capture_targets(photos: list[Photo]) -> list[dict]:
    """What the in-page camera offers: the after photo of each view that has a before photo
    and no after (its before photo, when previewed, is the ghost to line up with), then the
    before photo of each view that has none."""
    by_view: dict[str, dict[str, Photo]] = {}
    for photo in photos:
        by_view.setdefault(photo.view, {})[photo.role] = photo
    afters, befores = [], []
    for view, label in Photo.View.choices:
        roles = by_view.get(view, {})
        if "before" in roles and "after" not in roles:
            afters.append({"view": view, "label": label, "role": "after", "ghost": roles["before"]})
        elif not roles:
            befores.append({"view": view, "label": label, "role": "before", "ghost": None})
    return afters + befores


def _photo_json(photo: Photo) -> dict:
    return {
        "id": photo.pk,
        "role": photo.role,
        "view": photo.view,
        "width": photo.width,
        "height": photo.height,
        "rendered": photo.rendered_at is not None,
    }


@staff_required("gallery.change_case")
@require_POST
def photo_upload(request: HttpRequest, pk: int) -> JsonResponse:
    """One file per request, so one bad file never loses the others."""
    case = _editable_case(request, pk)
    form = PhotoUploadForm(request.POST, request.FILES)
    if not form.is_valid():
        if "file" in form.errors:
            return JsonResponse({"error": "Choose a photo to upload."}, status=400)
        return JsonResponse({"error": "Choose before or after, and the view."}, status=400)
    upload = form.cleaned_data["file"]
    try:
        photo = add_photo(
            case, form.cleaned_data["role"], form.cleaned_data["view"], upload, upload.name
        )
    except PhotoRejected as refusal:
        return JsonResponse({"error": refusal.message}, status=400)
    except Exception:
        log.exception("Upload failed for case %s", case.pk)
        return JsonResponse(
            {"error": "The photo could not be saved just now. Nothing was kept; try again."},
            status=503,
        )
    try:
        build_case_renditions.enqueue(case.pk, photo.view)
    except Exception:
        # The original is safe; renditions can be rebuilt (rebuild_renditions or re-crop).
        log.exception("Could not build renditions for case %s", case.pk)
    photo.refresh_from_db()
    return JsonResponse({"photo": _photo_json(photo)}, status=201)


@staff_required("gallery.change_case")
@require_POST
def photo_delete(request: HttpRequest, pk: int, photo: int) -> HttpResponse:
    case = _editable_case(request, pk)
    target = get_object_or_404(Photo, pk=photo, case=case)
    remove_photo(target)
    view = target.view
    transaction.on_commit(lambda: build_case_renditions.enqueue(case.pk, view))
    messages.success(request, "Photo removed.")
    return redirect("staff:case", pk=case.pk)


@staff_required("gallery.change_case")
@require_POST
def photo_crop(request: HttpRequest, pk: int, photo: int) -> HttpResponse:
    """Adjust one photo's crop so the pair lines up; the original is never altered."""
    case = _editable_case(request, pk)
    target = get_object_or_404(Photo, pk=photo, case=case)
    form = CropForm(request.POST, limit=rotation_limit(target))
    if not form.is_valid():
        role = target.get_role_display().lower()
        messages.error(request, f"The {role} photo's crop was not saved: {form.problem()}.")
        return redirect("staff:case", pk=case.pk)
    set_pair_crop(
        target,
        form.cleaned_data["zoom"],
        form.cleaned_data["centre_x"],
        form.cleaned_data["centre_y"],
        rotation=form.cleaned_data["rotation"],
    )
    messages.success(request, "Crop saved; the pair was rendered again.")
    return redirect("staff:case", pk=case.pk)


@staff_required("gallery.change_case")
@require_POST
def case_submit(request: HttpRequest, pk: int) -> HttpResponse:
    case = _editable_case(request, pk)
    try:
        submit_for_review(case, request.user)
    except WorkflowError as error:
        for problem in error.problems:
            messages.error(request, problem)
    else:
        messages.success(request, "Sent for review.")
    return redirect("staff:case", pk=case.pk)


@staff_required("gallery.publish_case")
@require_POST
def case_publish(request: HttpRequest, pk: int) -> HttpResponse:
    case = get_object_or_404(Case, pk=pk)
    try:
        publish(case, request.user, override=request.POST.get("override", ""))
    except WorkflowError as error:
        messages.error(request, "Not published:")
        for problem in error.problems:
            messages.error(request, problem)
    else:
        messages.success(request, "Approved and published: the case is in the public gallery.")
    return redirect("staff:case", pk=case.pk)


@staff_required("gallery.publish_case")
@require_POST
def case_send_back(request: HttpRequest, pk: int) -> HttpResponse:
    case = get_object_or_404(Case, pk=pk)
    try:
        send_back(case, request.user, request.POST.get("comment", ""))
    except WorkflowError as error:
        for problem in error.problems:
            messages.error(request, problem)
    else:
        messages.success(request, "Sent back to the photographer with your comment.")
    return redirect("staff:case", pk=case.pk)


@staff_required("gallery.publish_case")
@require_POST
def case_unpublish(request: HttpRequest, pk: int) -> HttpResponse:
    case = get_object_or_404(Case, pk=pk)
    archive = request.POST.get("archive") == "1"
    try:
        unpublish(case, request.user, archive=archive)
    except WorkflowError as error:
        for problem in error.problems:
            messages.error(request, problem)
    else:
        if archive:
            messages.success(request, "Archived: the case is off the public gallery, if it was on.")
        else:
            messages.success(
                request, "Unpublished: the case and its images left the public gallery."
            )
    return redirect("staff:case", pk=case.pk)


@staff_required("gallery.publish_case")
@require_POST
def case_reopen(request: HttpRequest, pk: int) -> HttpResponse:
    case = get_object_or_404(Case, pk=pk)
    try:
        reopen(case, request.user)
    except WorkflowError as error:
        for problem in error.problems:
            messages.error(request, problem)
    else:
        messages.success(request, f"{TRANSITIONS['reopen'].label}: done.")
    return redirect("staff:case", pk=case.pk)


@staff_required("gallery.view_case")
def case_renditions(request: HttpRequest, pk: int) -> JsonResponse:
    """How many of a case's photos still wait for their renditions (a worker builds them)."""
    case = get_object_or_404(Case, pk=pk)
    photos = list(case.photos.values("id", "rendered_at"))
    pending = sum(1 for p in photos if p["rendered_at"] is None)
    return JsonResponse({"photos": len(photos), "pending": pending})
