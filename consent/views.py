"""Consent officers' pages. The patient's own page (it shows their cases) is the
gallery's: ``gallery/patient_link.py``. What is held under a consent comes through
``consent/hooks.py``: the consent app never imports or looks up the gallery."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import authenticate, logout
from django.contrib.auth.views import redirect_to_login
from django.core.mail import send_mail
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.http import content_disposition_header
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from clinic.access import private_file_response, staff_required
from consent import kiosk
from consent.evidence import evidence_bundle, evidence_filename
from consent.fhir import consent_json, fhir_filename
from consent.forms import ConsentCaptureForm, KioskConsentForm, PatientForm, consent_kwargs
from consent.hooks import held_records, patient_page_path
from consent.models import (
    Consent,
    ConsentEvent,
    ConsentForm,
    ConsentSuperseded,
    Patient,
    record_consent,
)
from consent.receipts import send_withdrawal_receipt

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
            .prefetch_related("reminders")
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
            "records": held_records(patient=patient),
            "in_force": patient.consent_in_force(),
        },
    )


@staff_required("consent.add_consent")
@require_http_methods(["GET", "POST"])
def consent_new(request: HttpRequest, patient: int) -> HttpResponse:
    patient = get_object_or_404(Patient, pk=patient)
    consent_form = ConsentForm.current()
    # The language the patient reads the form in (the links above the text, then a hidden
    # field of the form): the consent keeps it and the exact text shown.
    languages = consent_form.languages if consent_form else [settings.LANGUAGE_CODE]
    language = request.POST.get("language") or request.GET.get("language")
    if language not in languages:
        language = languages[0]
    with translation.override(language):
        form = ConsentCaptureForm(request.POST or None, request.FILES or None)
        valid = request.method == "POST" and form.is_valid()
    if valid:
        document = form.cleaned_data["document"]
        if form.cleaned_data["signature_data"]:
            document = ("png", form.cleaned_data["signature_data"])
        consent = record_consent(
            patient,
            consent_form,
            request.user,
            document,
            language=language,
            **consent_kwargs(form),
        )
        messages.success(
            request,
            f"Consent recorded for {patient.reference}. It ends on {consent.expires_at:%d %B %Y}.",
        )
        return redirect("consent:detail", pk=consent.pk)
    names = dict(settings.LANGUAGES)
    with translation.override(language):
        return render(
            request,
            "consent/consent_new.html",
            {
                "patient": patient,
                "consent_form": consent_form,
                "form": form,
                "language": language,
                "consent_title": consent_form.text(language)[0] if consent_form else "",
                "consent_body": consent_form.text(language)[1] if consent_form else "",
                "reading_languages": [(code, names.get(code, code)) for code in languages],
            },
        )


@staff_required("consent.view_consent")
def consent_detail(request: HttpRequest, pk: int) -> HttpResponse:
    consent = get_object_or_404(Consent.objects.select_related("patient", "form"), pk=pk)
    records = held_records(consent=consent)
    return render(
        request,
        "consent/consent_detail.html",
        {
            "consent": consent,
            "events": consent.events.select_related("actor"),
            "records": records,
            "public_records": sum(r.public for r in records),
            "patient_link": request.session.pop(f"patient-link-{consent.pk}", None),
        },
    )


STAFF_CHANNELS = [
    (Consent.Channel.STAFF, "In person"),
    (Consent.Channel.EMAIL, "By email"),
    (Consent.Channel.PHONE, "By phone"),
    (Consent.Channel.PAPER, "In writing"),
]


@staff_required("consent.withdraw_consent")
@require_http_methods(["GET", "POST"])
def consent_withdraw(request: HttpRequest, pk: int) -> HttpResponse:
    """Withdrawal asks once more (as the patient's page does): GET shows what will
    happen, POST does it."""
    consent = get_object_or_404(Consent.objects.select_related("patient"), pk=pk)
    if consent.superseded_at is not None:
        messages.info(
            request,
            "This consent was replaced by a newer one. Withdraw the consent in force instead.",
        )
        return redirect("consent:detail", pk=consent.superseded_by_id)
    if request.method == "GET":
        records = held_records(consent=consent)
        return render(
            request,
            "consent/consent_withdraw_confirm.html",
            {
                "consent": consent,
                "channels": STAFF_CHANNELS,
                "public_records": sum(r.public for r in records),
            },
        )
    channel = request.POST.get("channel", "")
    if channel not in dict(STAFF_CHANNELS):
        channel = Consent.Channel.STAFF
    try:
        withdrawn = consent.withdraw(by=request.user, channel=channel)
    except ConsentSuperseded:
        messages.info(request, "This consent was replaced by a newer one just now.")
        return redirect("consent:detail", pk=consent.pk)
    if withdrawn:
        send_withdrawal_receipt(consent)
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
    link = request.build_absolute_uri(patient_page_path(token))
    if consent.patient.email:
        # In the language the patient signed in; the link opens their page in it too.
        with translation.override(consent.language):
            send_mail(
                _("Your photo consent: see where your photos appear, or withdraw"),
                _(
                    "Dear %(name)s,\n\nThis private link shows where your treatment photos "
                    "appear and lets you withdraw your consent at any time:\n\n%(link)s\n\n"
                    "Keep it to yourself: anyone with the link can withdraw your consent.\n"
                )
                % {
                    "name": consent.patient.full_name,
                    "link": request.build_absolute_uri(patient_page_path(token, consent.language)),
                },
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
    return private_file_response(
        name, consent.signature_content_type, f"consent-{consent.pk}.{ext}"
    )


@staff_required("consent.export_evidence")
def consent_evidence(request: HttpRequest, pk: int) -> HttpResponse:
    consent = get_object_or_404(Consent.objects.select_related("patient", "form"), pk=pk)
    ConsentEvent.record(consent, ConsentEvent.Kind.EXPORTED, actor=request.user)
    response = HttpResponse(evidence_bundle(consent), content_type="application/zip")
    response["Content-Disposition"] = content_disposition_header(True, evidence_filename(consent))
    return response


@staff_required("consent.export_evidence")
def consent_fhir(request: HttpRequest, pk: int) -> HttpResponse:
    """The consent as an HL7 FHIR R5 Consent resource (consent/fhir.py), audited like the
    evidence bundle it is also part of."""
    consent = get_object_or_404(Consent.objects.select_related("patient", "form"), pk=pk)
    body = consent_json(consent)
    ConsentEvent.record(
        consent, ConsentEvent.Kind.EXPORTED, actor=request.user, details={"format": "fhir-r5"}
    )
    response = HttpResponse(body, content_type="application/fhir+json")
    response["Content-Disposition"] = content_disposition_header(True, fhir_filename(consent))
    return response


# --- patient mode (the tablet in the patient's hands; see consent/kiosk.py) --------------


@staff_required("consent.add_consent")
@require_POST
def kiosk_start(request: HttpRequest, patient: int) -> HttpResponse:
    patient = get_object_or_404(Patient, pk=patient)
    consent_form = ConsentForm.current()
    if consent_form is None:
        raise Http404("No consent form has been written yet.")
    # The language of the text chosen on the capture page (a hidden field of its hand-over
    # button); the patient may switch it on the kiosk page.
    language = request.POST.get("language")
    if language not in consent_form.languages:
        language = consent_form.languages[0]
    kiosk.start(request, patient, consent_form, language)
    return redirect("consent:kiosk")


def _reading_languages(consent_form: ConsentForm) -> list[tuple[str, str]]:
    names = dict(settings.LANGUAGES)
    return [(code, names.get(code, code)) for code in consent_form.languages]


@staff_required("consent.add_consent")
@require_http_methods(["GET", "POST"])
def kiosk_page(request: HttpRequest) -> HttpResponse:
    """What the patient sees: the form text, the choices and the signature pad, in the
    language chosen (by staff at hand-over, or by the patient with the switch on the page);
    once signed, a thank-you. The consent is recorded as on the staff page, by the staff
    member whose session this is, with the language and the exact text shown."""
    mode = kiosk.state(request)
    if mode is None:
        return redirect("consent:list")
    patient = get_object_or_404(Patient, pk=mode["patient"])
    consent_form = get_object_or_404(ConsentForm, pk=mode["form"])
    if request.method == "GET" and "language" in request.GET:
        # The switch: the same page in another language of this form. It only changes the
        # patient mode's language and comes back here; nothing else can be reached.
        if mode["consent"] is None and request.GET["language"] in consent_form.languages:
            kiosk.choose_language(request, request.GET["language"])
        return redirect("consent:kiosk")
    language = kiosk.language(mode, consent_form)
    if mode["consent"] is not None:
        if request.method == "POST":
            return redirect("consent:kiosk")
        with translation.override(language):
            response = render(request, "consent/kiosk_thanks.html", {"patient": patient})
        response["Content-Language"] = language
        return response
    # The language of the text the patient read: the page's hidden field, so what is
    # recorded is what was shown even if the language changed meanwhile in another tab.
    if request.POST.get("language") in consent_form.languages:
        language = request.POST["language"]
    with translation.override(language):
        form = KioskConsentForm(request.POST or None, initial={"signed_by_name": patient.full_name})
        valid = request.method == "POST" and form.is_valid()
    if valid:
        consent = record_consent(
            patient,
            consent_form,
            request.user,
            ("png", form.cleaned_data["signature_data"]),
            language=language,
            **consent_kwargs(form),
        )
        kiosk.signed(request, consent)
        return redirect("consent:kiosk")
    title, body = consent_form.text(language)
    languages = _reading_languages(consent_form)
    with translation.override(language):
        response = render(
            request,
            "consent/kiosk.html",
            {
                "patient": patient,
                "consent_form": consent_form,
                "consent_title": title,
                "consent_body": body,
                "form": form,
                "language": language,
                "reading_languages": languages if len(languages) > 1 else [],
            },
        )
    response["Content-Language"] = language
    return response


@staff_required()
@require_http_methods(["GET", "POST"])
def kiosk_unlock(request: HttpRequest) -> HttpResponse:
    """Patient mode ends only with the password of the staff member whose session it is.

    A wrong password goes through ``authenticate``, so django-axes counts it as it counts
    a failed log-in. After as many wrong passwords as a log-in lock-out allows, the staff
    member is logged out: the tablet then shows nothing but the log-in (or lock-out) page,
    and further guesses meet the log-in lock-out."""
    mode = kiosk.state(request)
    if mode is None:
        return redirect("consent:list")
    error = ""
    if request.method == "POST":
        user = authenticate(
            request,
            username=request.user.get_username(),
            password=request.POST.get("password", ""),
        )
        if user is not None and user.pk == request.user.pk:
            kiosk.end(request)
            if mode["consent"] is not None:
                messages.success(request, "Patient mode ended. The patient's consent is recorded.")
                return redirect("consent:detail", pk=mode["consent"])
            messages.info(request, "Patient mode ended. Nothing was signed.")
            return redirect("consent:new", patient=mode["patient"])
        failures = kiosk.failed_unlock(request)
        if getattr(request, "axes_locked_out", False) or failures >= settings.AXES_FAILURE_LIMIT:
            logout(request)
            return redirect_to_login(reverse("consent:list"))
        error = _("That password is not right. Patient mode stays on.")
    return render(
        request,
        "consent/kiosk_unlock.html",
        {"error": error},
    )
