"""The patient's own page, from any private link they were ever given.

Every link leads to the patient's *current* standing: the consent in force now (a link made
for a consent that a renewal superseded keeps working) and the cases of theirs that are
public now. Withdrawing through any link withdraws the consent in force, so every case of
theirs leaves every public surface.

A renewal reminder's link (``consent.reminders``) opens the same address, but only the
renewal of the consent it was sent for: not the cases, not withdrawal.
"""

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from clinic.forwarded import client_address
from consent.models import (
    Consent,
    consent_for_renewal_token,
    consent_for_token,
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


def _standing(token: str) -> tuple[Consent, Consent | None]:
    linked = consent_for_token(token)
    if linked is None:
        raise Http404
    return linked, linked.patient.consent_in_force()


@require_http_methods(["GET", "HEAD"])
def patient_page(request: HttpRequest, token: str) -> HttpResponse:
    linked = consent_for_token(token)
    if linked is None:
        return _renewal_step(request, token)
    in_force = linked.patient.consent_in_force()
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
            },
        )
    )


def _renewal_step(request: HttpRequest, token: str) -> HttpResponse:
    consent = consent_for_renewal_token(token)
    if consent is None:
        raise Http404
    return _private(
        render(
            request,
            "gallery/patient_renew.html",
            {"patient": consent.patient, "consent": consent, "token": token},
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
