"""The patient's own page, from any private link they were ever given.

Every link leads to the patient's *current* standing: the consent in force now (a link made
for a consent that a renewal superseded keeps working) and the cases of theirs that are
public now. Withdrawing through any link withdraws the consent in force, so every case of
theirs leaves every public surface.

Through the same link the patient narrows the consent in force (stops some uses, or
allows only photos in which they cannot be recognised) or renews it by signing the
current consent text on their phone. Either records a new consent with ``record_consent``,
which supersedes the old one in its transaction: the cases move under the new consent
and follow its scope from the commit on (``gallery/receivers.py``).

A renewal reminder's link (``consent.reminders``) opens the same address, but only the
renewal of the consent it was sent for: not the cases, not narrowing, not withdrawal.
Once renewed, it shows a thank-you and stops working.
"""

from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone, translation
from django.views.decorators.http import require_http_methods

from clinic.forwarded import client_address
from consent.forms import PatientChoicesForm, PatientNarrowForm, PatientRenewalForm
from consent.models import (
    Consent,
    ConsentForm,
    ConsentStandingChanged,
    consent_for_renewal_token,
    consent_for_token,
    record_consent,
    renewal_expiry,
    withdraw_patient_consent,
)
from consent.receipts import send_withdrawal_receipt
from gallery.models import Case


def _private(response: HttpResponse) -> HttpResponse:
    response["Cache-Control"] = "no-store, private"
    # The token is in the URL: never send it to another site. (Not "no-referrer": with
    # it browsers send "Origin: null" on the withdraw form, which CSRF rightly refuses.)
    response["Referrer-Policy"] = "same-origin"
    response["X-Robots-Tag"] = "noindex"
    return response


def _standing(token: str, reminder: bool = False) -> tuple[Consent, Consent | None]:
    """The consent a link was made for, and the patient's consent in force. With
    ``reminder``, the link is a renewal reminder's, good only for the consent it was sent
    for while that one may still be renewed."""
    if reminder:
        linked = consent_for_renewal_token(token)
        if linked is None:
            raise Http404
        return linked, linked
    linked = consent_for_token(token)
    if linked is None:
        raise Http404
    return linked, linked.patient.consent_in_force()


@require_http_methods(["GET", "HEAD", "POST"])
def patient_page(request: HttpRequest, token: str) -> HttpResponse:
    if consent_for_token(token) is None:
        # Perhaps a renewal reminder's link: its page is the renewal, and only that.
        return _change(request, token, PatientRenewalForm, "renewed", reminder=True)
    if request.method == "POST":
        return HttpResponse(status=405, headers={"Allow": "GET, HEAD"})
    linked, in_force = _standing(token)
    cases = list(Case.objects.public().filter(patient=linked.patient_id).for_display())
    return _private(
        render(
            request,
            "gallery/patient_page.html",
            {
                "patient": linked.patient,
                "consent": in_force,
                "renewed": in_force is not None and in_force.pk != linked.pk,
                "cases": cases,
                "token": token,
                "changed": request.GET.get("changed", ""),
            },
        )
    )


@require_http_methods(["GET", "HEAD", "POST"])
def patient_withdraw(request: HttpRequest, token: str) -> HttpResponse:
    linked, in_force = _standing(token)
    patient = linked.patient
    if request.method == "POST":
        withdrawn = withdraw_patient_consent(
            patient,
            channel=Consent.Channel.PATIENT_PAGE,
            details={"link_of_consent": linked.pk, "ip": client_address(request) or ""},
        )
        if withdrawn is not None:
            send_withdrawal_receipt(withdrawn)
        # Said only after checking: the rule decides, as on every public page.
        still_public = Case.objects.public().filter(patient=patient).count()
        return _private(
            render(
                request,
                "gallery/patient_withdrawn.html",
                {
                    "patient": patient,
                    "consent": withdrawn or patient.consent_in_force(),
                    "already": withdrawn is None,
                    "still_public": still_public,
                    "emailed": withdrawn is not None and bool(patient.email),
                },
            )
        )
    return _private(
        render(
            request,
            "gallery/patient_withdraw_confirm.html",
            {
                "consent": in_force,
                "token": token,
                "public_count": Case.objects.public().filter(patient=patient).count(),
            },
        )
    )


def _what_may_change(action: str, in_force: Consent | None) -> ConsentForm | None:
    """The consent text a change is signed under, or None when the standing allows no
    change from the link: narrowing needs a consent in force (it keeps its text and end
    date); renewal needs one not withdrawn, in force or ended, and takes the current text.
    After a withdrawal, consent is given again with the clinic."""
    if in_force is None or in_force.withdrawn_at is not None:
        return None
    if action == "narrowed":
        return in_force.form if in_force.is_active else None
    return ConsentForm.current()


def _language(action: str, text: ConsentForm, in_force: Consent) -> str:
    """The language of the text a change is signed under: for a renewal the page's, in
    which the patient reads the text; for a narrowing (no text shown, the same version
    kept) the language the consent in force was signed in."""
    wanted = translation.get_language() if action == "renewed" else in_force.language
    return wanted if wanted in text.languages else text.languages[0]


def _change(
    request: HttpRequest,
    token: str,
    form_class: type[PatientChoicesForm],
    action: str,
    reminder: bool = False,
) -> HttpResponse:
    """The narrowing and renewal pages: GET shows the choices, POST records the new
    consent and sends the patient back to their page, which shows the new standing (a
    reminder's link, which opens no page of cases, says thank you instead)."""
    linked, in_force = _standing(token, reminder)
    patient = linked.patient
    text = _what_may_change(action, in_force)
    bound = request.POST if request.method == "POST" else None
    form = form_class(bound, consent=in_force) if text else None
    conflict = False
    if form is not None and request.method == "POST" and form.is_valid():
        document, end = None, in_force.expires_at
        if action == "renewed":
            document = ("png", form.cleaned_data["signature_data"])
            end = renewal_expiry(in_force, timezone.now())
        try:
            record_consent(
                patient,
                text,
                None,
                document,
                language=_language(action, text, in_force),
                channel=Consent.Channel.PATIENT_PAGE,
                details={
                    "action": action,
                    "link_of_consent": linked.pk,
                    "ip": client_address(request) or "",
                },
                replaces=in_force,
                actor_label=f"{form.cleaned_data['signed_by_name']} (patient link)",
                expires_at=end,
                **form.consent_fields(),
            )
        except (ConsentStandingChanged, ValidationError):
            # Replaced, withdrawn or ended between the page and the click: nothing was
            # recorded. Show the choices again, for the standing now.
            conflict = True
            in_force = patient.consent_in_force()
            text = _what_may_change(action, in_force)
            form = form_class(consent=in_force) if text else None
        else:
            if reminder:
                renewed = patient.consent_in_force()
                return _private(
                    render(request, "gallery/patient_renewed.html", {"consent": renewed})
                )
            page = reverse("patient-consent", args=[token])
            return _private(redirect(f"{page}?changed={action}"))
    return _private(
        render(
            request,
            f"gallery/patient_{'narrow' if action == 'narrowed' else 'renew'}.html",
            {
                "patient": patient,
                "consent": in_force,
                "form": form,
                "consent_form": text,
                "consent_text": text.text(_language(action, text, in_force)) if text else None,
                "conflict": conflict,
                "token": token,
                "reminder": reminder,
                "new_end": renewal_expiry(in_force, timezone.now()) if text else None,
                "public_count": Case.objects.public().filter(patient=patient).count(),
            },
        )
    )


@require_http_methods(["GET", "HEAD", "POST"])
def patient_narrow(request: HttpRequest, token: str) -> HttpResponse:
    return _change(request, token, PatientNarrowForm, "narrowed")


@require_http_methods(["GET", "HEAD", "POST"])
def patient_renew(request: HttpRequest, token: str) -> HttpResponse:
    return _change(request, token, PatientRenewalForm, "renewed")
