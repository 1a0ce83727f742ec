"""A consent as an HL7 FHIR R5 ``Consent`` resource (https://hl7.org/fhir/R5/consent.html),
for a clinic system, a regulator or another provider that reads FHIR and not this
application.

The mapping is written out by hand, as plain dicts; the tests check every resource it
makes against the R5 models of ``fhir.resources``.

- ``decision`` is ``deny``: in R5 each level of ``provision`` reverses the level above it,
  so a base of *deny* with one provision per use the patient allowed permits exactly those
  uses and nothing else, not even a use the form will ask about in the future.
- Each allowed use is a provision to *disclose* the photos for that purpose, over the term
  the patient signed for (signed..expires). When identifiable photos were not allowed, a
  nested provision (so a *deny* again) takes recognisable photos back out of each use.
- R5 statuses have no *expired*, *withdrawn* or *superseded*: all three are a consent that
  was terminated, ``inactive``, and ``period.end`` says when it stopped (the expiry, the
  withdrawal or the superseding). A withdrawal also carries its time and channel, and a
  superseded consent the consent that replaced it, in two extensions of the clinic. A
  consent signed for a date still to come is ``active`` with a period not yet begun.
- ``sourceAttachment`` describes the signed document (type, size, SHA-1 as the R5
  Attachment asks) without its bytes or any address of it.
- The patient is named by the clinic's chart reference only, never by name; the narrative
  repeats what the coded elements say.
"""

import base64
import hashlib
import json
import logging
from datetime import UTC, datetime

from django.conf import settings
from django.core.files.storage import default_storage
from django.utils import timezone
from django.utils.html import escape

from consent.models import Consent

LOINC = "http://loinc.org"
CONSENT_ACTION = "http://terminology.hl7.org/CodeSystem/consentaction"
ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
XHTML = "http://www.w3.org/1999/xhtml"

# (scope field, code in the clinic's code system, a marketing use) in the form's order.
USES = [
    ("allow_website", "website", True),
    ("allow_social", "social-media", True),
    ("allow_print", "print", True),
    ("allow_education", "education", False),
]
IDENTIFIABLE = "identifiable"
IDENTIFIABLE_DISPLAY = "Photos in which the patient can be recognised"


log = logging.getLogger(__name__)


def clinic_uri(name: str) -> str:
    """A name in the clinic's namespace: identifier systems, code systems, extensions."""
    return f"{settings.CLINIC_FHIR_BASE.rstrip('/')}/{name}"


def fhir_filename(consent: Consent) -> str:
    return f"consent-{consent.pk}-{consent.patient.reference_for_files}.fhir.json"


def read_signed_document(consent: Consent) -> bytes | None:
    """The signed document's bytes; None when there is none, or when storage has lost it
    (logged: the export still goes out, and says the document is missing)."""
    if not consent.signature:
        return None
    try:
        with default_storage.open(consent.signature.name, "rb") as f:
            return f.read()
    except OSError:
        log.error("Consent %s: the signed document is missing from storage", consent.pk)
        return None


def consent_resource(
    consent: Consent, document: bytes | None = None, at: datetime | None = None
) -> dict:
    """The R5 ``Consent`` resource of ``consent`` as it stands at ``at`` (default: now).

    ``document`` is the signed document's content when the caller has already read it;
    otherwise it is read from private storage here.
    """
    at = at or timezone.now()
    if document is None:
        document = read_signed_document(consent)
    uses_system = clinic_uri("CodeSystem/photo-consent")
    term = {"start": _instant(consent.signed_at), "end": _instant(consent.expires_at)}
    ended = min(t for t in (consent.expires_at, consent.withdrawn_at, consent.superseded_at) if t)
    patient = {
        "type": "Patient",
        "identifier": {
            "system": clinic_uri("patient-reference"),
            "value": consent.patient.reference,
        },
    }
    clinic = {"type": "Organization", "display": settings.CLINIC_NAME}

    provisions = []
    for field, code, marketing in USES:
        if not getattr(consent, field):
            continue
        purpose = [{"system": uses_system, "code": code, "display": _label(field)}]
        if marketing:
            purpose.append(
                {"system": ACT_REASON, "code": "HMARKT", "display": "healthcare marketing"}
            )
        provision = {
            "period": term,
            "action": [
                {"coding": [{"system": CONSENT_ACTION, "code": "disclose", "display": "Disclose"}]}
            ],
            "purpose": purpose,
        }
        if not consent.identifiable:
            provision["provision"] = [
                {
                    "code": [
                        {
                            "coding": [
                                {
                                    "system": uses_system,
                                    "code": IDENTIFIABLE,
                                    "display": IDENTIFIABLE_DISPLAY,
                                }
                            ]
                        }
                    ]
                }
            ]
        provisions.append(provision)

    resource = {
        "resourceType": "Consent",
        "id": str(consent.pk),
        "text": {"status": "generated", "div": _narrative(consent, at)},
        "identifier": [{"system": clinic_uri("consent"), "value": str(consent.pk)}],
        "status": _status(consent, at),
        "category": [
            {
                "coding": [
                    {
                        "system": LOINC,
                        "code": "64292-6",
                        "display": "Release of information consent Document",
                    }
                ],
                "text": "Consent to the use of treatment photographs",
            }
        ],
        "subject": patient,
        "date": timezone.localdate(consent.signed_at).isoformat(),
        "period": {"start": term["start"], "end": _instant(ended)},
        "grantor": [
            {
                "type": "RelatedPerson",
                "display": f"{consent.signed_by_name} ({consent.representative_authority})",
            }
            if consent.representative_authority
            else patient
        ],
        "grantee": [clinic],
        "controller": [clinic],
        "policyText": [
            {
                "type": "DocumentReference",
                "identifier": {
                    "system": clinic_uri("consent-form"),
                    "value": consent.form.version,
                },
                "display": f"{consent.form.title}, version {consent.form.version}",
            }
        ],
        "decision": "deny",
        "provision": provisions,
    }
    if document is not None:
        resource["sourceAttachment"] = [
            {
                "contentType": consent.signature_content_type,
                "title": "Signed consent document",
                "creation": _instant(consent.signed_at),
                # integer64 is a JSON string in R5.
                "size": str(len(document)),
                "hash": base64.b64encode(hashlib.sha1(document).digest()).decode("ascii"),
            }
        ]
    extensions = []
    if consent.withdrawn_at:
        extensions.append(
            {
                "url": clinic_uri("StructureDefinition/consent-withdrawal"),
                "extension": [
                    {"url": "at", "valueDateTime": _instant(consent.withdrawn_at)},
                    {"url": "channel", "valueCode": consent.withdrawal_channel},
                ],
            }
        )
    if consent.superseded_by_id:
        extensions.append(
            {
                "url": clinic_uri("StructureDefinition/superseded-by"),
                "valueReference": {
                    "reference": f"Consent/{consent.superseded_by_id}",
                    "type": "Consent",
                    "identifier": {
                        "system": clinic_uri("consent"),
                        "value": str(consent.superseded_by_id),
                    },
                },
            }
        )
    if extensions:
        resource["extension"] = extensions
    if not provisions:
        del resource["provision"]
    return resource


def consent_json(consent: Consent, document: bytes | None = None) -> bytes:
    return json.dumps(consent_resource(consent, document), indent=2, ensure_ascii=False).encode()


def _status(consent: Consent, at: datetime) -> str:
    if consent.withdrawn_at or consent.superseded_at or consent.expires_at <= at:
        return "inactive"
    return "active"


def _instant(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _label(field: str) -> str:
    return str(Consent._meta.get_field(field).verbose_name)


def _narrative(consent: Consent, at: datetime) -> str:
    def line(text: str) -> str:
        return f"<li>{escape(text)}</li>"

    uses = [
        line(
            f"{_label(field).capitalize()}: {'permitted' if getattr(consent, field) else 'denied'}"
        )
        for field, _code, _marketing in USES
    ]
    uses.append(
        line(
            "Identifiable photos: "
            + ("permitted" if consent.identifiable else "denied (de-identified crops only)")
        )
    )
    # The patient is named by their chart reference only; a representative by the name
    # and authority they signed with, as the grantor.
    signer = (
        f"{consent.signed_by_name} ({consent.representative_authority})"
        if consent.representative_authority
        else "the patient"
    )
    lines = [
        f"Photo consent {consent.pk} of patient {consent.patient.reference}: "
        f"{consent.status_at(at)}.",
        f"Signed {_readable(consent.signed_at)} by {signer}, on {consent.form.title}, "
        f"version {consent.form.version}; agreed until {_readable(consent.expires_at)}.",
        f"Patient is an adult: {'yes' if consent.patient_is_adult else 'no'}.",
    ]
    if consent.withdrawn_at:
        lines.append(
            f"Withdrawn {_readable(consent.withdrawn_at)} "
            f"({consent.get_withdrawal_channel_display().lower()})."
        )
    if consent.superseded_at:
        lines.append(
            f"Superseded {_readable(consent.superseded_at)} by consent {consent.superseded_by_id}."
        )
    paragraphs = "".join(f"<p>{escape(text)}</p>" for text in lines)
    return f'<div xmlns="{XHTML}">{paragraphs}<ul>{"".join(uses)}</ul></div>'


def _readable(moment: datetime) -> str:
    return f"{timezone.localtime(moment):%d %B %Y %H:%M %Z}"
