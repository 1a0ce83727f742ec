"""Consent officers' pages, and the patient's own page from their private link.

The gallery is named by string (``apps.get_model``) where a page must show cases: the
consent app never imports the gallery.
"""

import csv
import hmac
import io
import json
import zipfile

from django.apps import apps
from django.contrib import messages
from django.core.files.storage import default_storage
from django.core.mail import send_mail
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from clinic.access import private_file_response, staff_required
from consent.forms import ConsentCaptureForm, PatientForm, consent_kwargs
from consent.models import Consent, ConsentEvent, ConsentForm, Patient, hash_token, record_consent


def _cases_model():
    return apps.get_model("gallery", "Case")


def _withdrawal_receipt(request: HttpRequest, consent: Consent) -> None:
    """Email the patient a receipt of their withdrawal, when an address exists."""
    if not consent.patient.email:
        return
    when = timezone.localtime(consent.withdrawn_at).strftime("%d %B %Y at %H:%M")
    send_mail(
        "Your photo consent has been withdrawn",
        f"Dear {consent.patient.full_name},\n\n"
        f"Your consent to the use of your treatment photographs (signed "
        f"{consent.signed_at:%d %B %Y}) was withdrawn on {when}.\n"
        "Your photos have been removed from the clinic's website. The clinic will not use "
        "them for any purpose you agreed to in that consent.\n\n"
        "Your treatment and care are not affected in any way.\n",
        None,
        [consent.patient.email],
    )


# --- staff ---------------------------------------------------------------------------


@staff_required("consent.view_consent")
def consent_list(request: HttpRequest) -> HttpResponse:
    now = timezone.now()
    query = request.GET.get("q", "").strip()
    patients = Patient.objects.all()
    if query:
        patients = patients.filter(reference__icontains=query) | patients.filter(
            full_name__icontains=query
        )
    return render(
        request,
        "consent/consent_list.html",
        {
            "expiring": Consent.objects.expiring_within(30)
            .select_related("patient")
            .order_by("expires_at"),
            "recent": Consent.objects.select_related("patient").order_by("-recorded_at")[:20],
            "patients": patients.order_by("reference")[:50],
            "query": query,
            "now": now,
        },
    )


@staff_required("consent.add_patient")
@require_http_methods(["GET", "POST"])
def patient_new(request: HttpRequest) -> HttpResponse:
    form = PatientForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        patient = form.save()
        messages.success(request, f"Patient {patient.reference} added. Now record their consent.")
        return redirect("consent:new", patient=patient.pk)
    return render(request, "consent/patient_form.html", {"form": form})


@staff_required("consent.view_patient")
def patient_detail(request: HttpRequest, pk: int) -> HttpResponse:
    patient = get_object_or_404(Patient, pk=pk)
    return render(
        request,
        "consent/patient_detail.html",
        {
            "patient": patient,
            "consents": patient.consents.select_related("form").order_by("-signed_at"),
            "cases": _cases_model().objects.filter(patient=patient).select_related("treatment"),
        },
    )


@staff_required("consent.add_consent")
@require_http_methods(["GET", "POST"])
def consent_new(request: HttpRequest, patient: int) -> HttpResponse:
    patient = get_object_or_404(Patient, pk=patient)
    consent_form = ConsentForm.current()
    form = ConsentCaptureForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        document = form.cleaned_data["document"]
        if form.cleaned_data["signature_data"]:
            document = ("png", form.cleaned_data["signature_data"])
        consent = record_consent(
            patient, consent_form, request.user, document, **consent_kwargs(form)
        )
        messages.success(
            request,
            f"Consent recorded for {patient.reference}. It ends on {consent.expires_at:%d %B %Y}.",
        )
        return redirect("consent:detail", pk=consent.pk)
    return render(
        request,
        "consent/consent_new.html",
        {"patient": patient, "consent_form": consent_form, "form": form},
    )


@staff_required("consent.view_consent")
def consent_detail(request: HttpRequest, pk: int) -> HttpResponse:
    consent = get_object_or_404(Consent.objects.select_related("patient", "form"), pk=pk)
    Case = _cases_model()
    return render(
        request,
        "consent/consent_detail.html",
        {
            "consent": consent,
            "events": consent.events.select_related("actor"),
            "cases": Case.objects.filter(consent=consent).select_related("treatment"),
            "public_cases": Case.objects.public().filter(consent=consent).count(),
            "patient_link": request.session.pop(f"patient-link-{consent.pk}", None),
        },
    )


@staff_required("consent.withdraw_consent")
@require_POST
def consent_withdraw(request: HttpRequest, pk: int) -> HttpResponse:
    consent = get_object_or_404(Consent.objects.select_related("patient"), pk=pk)
    channel = request.POST.get("channel") or Consent.Channel.STAFF
    if channel not in Consent.Channel.values or channel == Consent.Channel.PATIENT_PAGE:
        channel = Consent.Channel.STAFF
    if consent.withdraw(by=request.user, channel=channel):
        _withdrawal_receipt(request, consent)
        messages.success(
            request,
            "Consent withdrawn. Every case under it has left the public gallery"
            + (
                f"; a receipt was emailed to {consent.patient.email}."
                if consent.patient.email
                else "."
            ),
        )
    else:
        messages.info(request, "This consent was already withdrawn; nothing changed.")
    return redirect("consent:detail", pk=consent.pk)


@staff_required("consent.change_consent")
@require_POST
def consent_send_link(request: HttpRequest, pk: int) -> HttpResponse:
    consent = get_object_or_404(Consent.objects.select_related("patient"), pk=pk)
    with transaction.atomic():
        token = consent.new_access_token()
        consent.save(update_fields=["access_token_hash"])
        ConsentEvent.record(
            consent,
            ConsentEvent.Kind.LINK_SENT,
            actor=request.user,
            details={"emailed": bool(consent.patient.email)},
        )
    link = request.build_absolute_uri(reverse("patient-consent", args=[token]))
    if consent.patient.email:
        send_mail(
            "Your photo consent: see where your photos appear, or withdraw",
            f"Dear {consent.patient.full_name},\n\nThis private link shows where your treatment "
            f"photos appear and lets you withdraw your consent at any time:\n\n{link}\n\n"
            "Keep it to yourself: anyone with the link can withdraw your consent.\n",
            None,
            [consent.patient.email],
        )
    # Shown once to the officer (to print or read out); only its hash is stored.
    request.session[f"patient-link-{consent.pk}"] = link
    messages.success(request, "A new private link was made; any earlier link no longer works.")
    return redirect("consent:detail", pk=consent.pk)


@staff_required("consent.change_consent")
def consent_document(request: HttpRequest, pk: int) -> HttpResponse:
    consent = get_object_or_404(Consent, pk=pk)
    if not consent.signature:
        raise Http404
    ConsentEvent.record(consent, ConsentEvent.Kind.DOCUMENT_VIEWED, actor=request.user)
    name = consent.signature.name
    ext = name.rsplit(".", 1)[-1]
    types = {
        "png": "image/png",
        "pdf": "application/pdf",
        "jpeg": "image/jpeg",
        "webp": "image/webp",
        "heic": "image/heic",
    }
    return private_file_response(
        name, types.get(ext, "application/octet-stream"), f"consent-{consent.pk}.{ext}"
    )


@staff_required("consent.export_evidence")
def consent_evidence(request: HttpRequest, pk: int) -> HttpResponse:
    consent = get_object_or_404(Consent.objects.select_related("patient", "form"), pk=pk)
    ConsentEvent.record(consent, ConsentEvent.Kind.EXPORTED, actor=request.user)
    data = evidence_bundle(consent)
    response = HttpResponse(data, content_type="application/zip")
    response["Content-Disposition"] = (
        f'attachment; filename="consent-{consent.pk}-{consent.patient.reference}-evidence.zip"'
    )
    response["Cache-Control"] = "private, no-store"
    return response


def evidence_bundle(consent: Consent) -> bytes:
    """A zip for a regulator or a complaint: the record, the document, what it covered,
    and the whole event trail, with a readable summary."""
    Case = _cases_model()
    cases = (
        Case.objects.filter(consent=consent).select_related("treatment").prefetch_related("photos")
    )
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        summary = [
            f"Consent evidence, exported {timezone.now():%Y-%m-%d %H:%M %Z}",
            "",
            f"Patient: {consent.patient.full_name} ({consent.patient.reference})",
            f"Form: {consent.form.title}, version {consent.form.version}",
            f"Signed by: {consent.signed_by_name}"
            + (
                f" ({consent.representative_authority})"
                if consent.representative_authority
                else " (the patient)"
            ),
            f"Signed at: {consent.signed_at.isoformat()}",
            f"Expires at: {consent.expires_at.isoformat()}",
            f"Recorded by: {consent.recorded_by or 'import'} at {consent.recorded_at.isoformat()}",
            f"Patient is an adult: {'yes' if consent.patient_is_adult else 'no'}",
            f"Identifiable photos allowed: {'yes' if consent.identifiable else 'no'}",
            "Scopes: " + (", ".join(consent.scopes()) or "none"),
            f"Status now: {consent.status}",
        ]
        if consent.withdrawn_at:
            summary.append(
                f"Withdrawn at: {consent.withdrawn_at.isoformat()} "
                f"({consent.get_withdrawal_channel_display()}, "
                f"by {consent.withdrawn_by or 'the patient'})"
            )
        summary += ["", f"Cases under this consent: {len(cases)}"]
        photos_csv = io.StringIO()
        writer = csv.writer(photos_csv)
        writer.writerow(
            [
                "case",
                "treatment",
                "status",
                "role",
                "view",
                "sha256",
                "captured_at",
                "width",
                "height",
            ]
        )
        for case in cases:
            summary.append(
                f"  {case.public_id}: {case.treatment.name}, {case.get_status_display()}"
            )
            for photo in case.photos.all():
                writer.writerow(
                    [
                        case.public_id,
                        case.treatment.slug,
                        case.status,
                        photo.role,
                        photo.view,
                        photo.sha256,
                        photo.taken_at.isoformat() if photo.taken_at else "",
                        photo.width,
                        photo.height,
                    ]
                )
        events_csv = io.StringIO()
        writer = csv.writer(events_csv)
        writer.writerow(["at", "event", "actor", "details"])
        for event in consent.events.select_related("actor"):
            writer.writerow(
                [
                    event.at.isoformat(),
                    event.get_kind_display(),
                    event.actor.get_username() if event.actor else event.actor_label,
                    json.dumps(event.details, sort_keys=True),
                ]
            )
        z.writestr("summary.txt", "\n".join(summary) + "\n")
        z.writestr(
            f"consent-form-{consent.form.version}.txt",
            f"{consent.form.title}\n\n{consent.form.body}",
        )
        z.writestr("photos.csv", photos_csv.getvalue())
        z.writestr("events.csv", events_csv.getvalue())
        if consent.signature:
            with default_storage.open(consent.signature.name, "rb") as f:
                z.writestr("signed-document." + consent.signature.name.rsplit(".", 1)[-1], f.read())
    return buf.getvalue()


# --- the patient's own page -------------------------------------------------------------


def _consent_for_token(token: str) -> Consent:
    if not (20 <= len(token) <= 100):
        raise Http404
    digest = hash_token(token)
    consent = (
        Consent.objects.select_related("patient", "form").filter(access_token_hash=digest).first()
    )
    # The lookup is by hash; the final comparison is constant-time all the same.
    if consent is None or not hmac.compare_digest(consent.access_token_hash, digest):
        raise Http404
    return consent


@require_http_methods(["GET"])
def patient_page(request: HttpRequest, token: str) -> HttpResponse:
    consent = _consent_for_token(token)
    Case = _cases_model()
    cases = list(Case.objects.public().filter(consent=consent).for_display())
    response = render(
        request,
        "consent/patient_page.html",
        {"consent": consent, "cases": cases, "token": token},
    )
    response["Cache-Control"] = "private, no-store"
    # The token is in the URL: never send it to another site. (Not "no-referrer": with
    # it browsers send "Origin: null" on the withdraw form, which CSRF rightly refuses.)
    response["Referrer-Policy"] = "same-origin"
    response["X-Robots-Tag"] = "noindex"
    return response


@require_http_methods(["GET", "POST"])
def patient_withdraw(request: HttpRequest, token: str) -> HttpResponse:
    consent = _consent_for_token(token)
    if request.method == "POST":
        withdrawn = consent.withdraw(
            by=None,
            channel=Consent.Channel.PATIENT_PAGE,
            details={"ip": request.META.get("REMOTE_ADDR", "")},
        )
        if withdrawn:
            _withdrawal_receipt(request, consent)
        response = render(
            request,
            "consent/patient_withdrawn.html",
            {"consent": consent, "already": not withdrawn},
        )
    else:
        Case = _cases_model()
        response = render(
            request,
            "consent/patient_withdraw_confirm.html",
            {
                "consent": consent,
                "token": token,
                "public_count": Case.objects.public().filter(consent=consent).count(),
            },
        )
    response["Cache-Control"] = "private, no-store"
    response["Referrer-Policy"] = "same-origin"
    response["X-Robots-Tag"] = "noindex"
    return response
