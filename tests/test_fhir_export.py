"""Each consent exports as an HL7 FHIR R5 Consent resource: valid against the R5 models of
fhir.resources whatever became of the consent, saying what the patient allowed and
refused, pointing at the signed document by its hash alone; downloadable by consent
officers (audited) and part of the evidence bundle."""

import base64
import hashlib
import io
import json
import zipfile
from datetime import UTC, datetime, timedelta

import pytest
from django.core.files.storage import default_storage
from django.utils import timezone
from fhir.resources import __fhir_version__
from fhir.resources.consent import Consent as FhirConsent

from consent.fhir import CONSENT_ACTION, consent_json, consent_resource
from consent.models import Consent, ConsentEvent, ConsentForm, record_consent
from tests.conftest import jpeg_bytes, make_patient, make_user, now

pytestmark = pytest.mark.django_db

R5_STATUSES = {"draft", "active", "inactive", "not-done", "entered-in-error", "unknown"}
DOCUMENT = jpeg_bytes(size=(300, 200))


def instant(moment) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def record(patient=None, officer=None, signed_days_ago=30, term_days=365, **kw) -> Consent:
    fields = {
        "allow_website": True,
        "allow_social": False,
        "allow_print": True,
        "allow_education": False,
        "identifiable": False,
        "patient_is_adult": True,
        "signed_by_name": "Ada Example",
        **kw,
    }
    signed_at = now() - timedelta(days=signed_days_ago)
    return record_consent(
        patient or make_patient(),
        ConsentForm.objects.get(version="2026-1"),
        officer,
        ("jpg", DOCUMENT),
        signed_at=signed_at,
        expires_at=signed_at + timedelta(days=term_days),
        **fields,
    )


def active():
    return record()


def expired():
    return record(signed_days_ago=400, term_days=365)


def superseded():
    old = record(signed_days_ago=60)
    record(patient=old.patient, signed_days_ago=1, allow_social=True)
    return Consent.objects.get(pk=old.pk)


def withdrawn():
    consent = record()
    consent.withdraw(by=make_user(groups=["Consent officers"]), channel="phone")
    return Consent.objects.get(pk=consent.pk)


STATES = {"active": active, "expired": expired, "superseded": superseded, "withdrawn": withdrawn}


def validated(data: bytes) -> dict:
    """The export parsed by fhir.resources' R5 models (which raise on any element R5 does
    not have, a wrong type or a missing required element) and the codes it does not check."""
    assert __fhir_version__ == "5.0.0"
    parsed = FhirConsent.model_validate_json(data)
    resource = json.loads(data)
    assert parsed.status == resource["status"] in R5_STATUSES
    assert parsed.decision == resource["decision"] in {"deny", "permit"}
    for period in [resource["period"], *(p["period"] for p in resource.get("provision", []))]:
        # per-1: a period never ends before it starts.
        assert datetime.fromisoformat(period["start"]) <= datetime.fromisoformat(period["end"])
    return resource


def permitted_uses(resource: dict) -> set[str]:
    return {
        coding["code"]
        for provision in resource.get("provision", [])
        for coding in provision["purpose"]
        if coding["system"].endswith("/CodeSystem/photo-consent")
    }


@pytest.mark.parametrize("state", STATES)
def test_every_kind_of_consent_exports_a_valid_r5_consent(state):
    consent = STATES[state]()
    resource = validated(consent_json(consent))

    assert resource["resourceType"] == "Consent" and resource["id"] == str(consent.pk)
    assert resource["status"] == ("active" if state == "active" else "inactive")
    ended = {
        "active": consent.expires_at,
        "expired": consent.expires_at,
        "superseded": consent.superseded_at,
        "withdrawn": consent.withdrawn_at,
    }[state]
    assert resource["period"] == {"start": instant(consent.signed_at), "end": instant(ended)}
    assert resource["date"] == timezone.localdate(consent.signed_at).isoformat()
    # What the patient agreed to stays as signed, whatever became of the consent.
    assert resource["decision"] == "deny"
    assert permitted_uses(resource) == {"website", "print"}
    term = {"start": instant(consent.signed_at), "end": instant(consent.expires_at)}
    assert [p["period"] for p in resource["provision"]] == [term, term]
    assert {a["coding"][0]["code"] for p in resource["provision"] for a in p["action"]} == {
        "disclose"
    }
    assert {a["coding"][0]["system"] for p in resource["provision"] for a in p["action"]} == {
        CONSENT_ACTION
    }
    narrative = resource["text"]["div"]
    assert "Social media: denied" in narrative and "Print: permitted" in narrative
    assert f"patient {consent.patient.reference}: {state}." in narrative


def test_the_status_of_a_consent_whose_term_has_not_begun_is_active():
    consent = record(signed_days_ago=-10)
    resource = validated(consent_json(consent))
    assert resource["status"] == "active"
    assert resource["period"]["start"] > instant(now())


def test_a_withdrawal_says_when_and_how_and_a_renewal_names_the_consent_in_force():
    gone = withdrawn()
    resource = validated(consent_json(gone))
    (withdrawal,) = resource["extension"]
    assert withdrawal["url"].endswith("/StructureDefinition/consent-withdrawal")
    assert withdrawal["extension"] == [
        {"url": "at", "valueDateTime": instant(gone.withdrawn_at)},
        {"url": "channel", "valueCode": "phone"},
    ]
    assert "Withdrawn" in resource["text"]["div"] and "(by phone)" in resource["text"]["div"]

    old = superseded()
    resource = validated(consent_json(old))
    (replaced,) = resource["extension"]
    assert replaced["url"].endswith("/StructureDefinition/superseded-by")
    assert replaced["valueReference"]["reference"] == f"Consent/{old.superseded_by_id}"
    assert replaced["valueReference"]["identifier"]["value"] == str(old.superseded_by_id)
    # The consent in force is itself active, with the newer choices.
    newer = validated(consent_json(old.superseded_by))
    assert newer["status"] == "active" and "extension" not in newer
    assert permitted_uses(newer) == {"website", "social-media", "print"}


def test_every_use_is_denied_unless_allowed_and_recognisable_photos_unless_allowed():
    nothing = record(allow_website=False, allow_print=False)
    resource = validated(consent_json(nothing))
    assert resource["decision"] == "deny" and "provision" not in resource

    everything = record(allow_social=True, allow_education=True, identifiable=True)
    resource = validated(consent_json(everything))
    assert permitted_uses(resource) == {"website", "social-media", "print", "education"}
    assert all("provision" not in p for p in resource["provision"])
    marketing = {
        p["purpose"][0]["code"]
        for p in resource["provision"]
        if {"code": "HMARKT"}.items() <= p["purpose"][-1].items()
    }
    assert marketing == {"website", "social-media", "print"}

    # Without identifiable photos each permitted use takes them back out (R5 nesting: the
    # level under a permit is a deny).
    crops_only = record()
    resource = validated(consent_json(crops_only))
    for provision in resource["provision"]:
        (inner,) = provision["provision"]
        assert inner["code"][0]["coding"][0]["code"] == "identifiable"


def test_the_signed_document_is_named_by_its_hash_never_by_its_bytes_or_address():
    consent = record()
    stored = default_storage.open(consent.signature.name, "rb").read()
    assert stored == DOCUMENT
    data = consent_json(consent)
    (attachment,) = validated(data)["sourceAttachment"]
    assert attachment == {
        "contentType": "image/jpeg",
        "title": "Signed consent document",
        "creation": instant(consent.signed_at),
        "size": str(len(DOCUMENT)),
        "hash": base64.b64encode(hashlib.sha1(DOCUMENT).digest()).decode(),
    }
    text = data.decode()
    assert consent.signature.name not in text and "signatures/" not in text
    assert base64.b64encode(DOCUMENT[:60]).decode()[:40] not in text


def test_the_patient_is_named_by_the_chart_reference_alone():
    patient = make_patient(full_name="Imogen Privatename")
    consent = record(patient=patient, signed_by_name="Imogen Privatename")
    resource = validated(consent_json(consent))
    assert resource["subject"]["identifier"]["value"] == patient.reference
    assert resource["grantor"] == [resource["subject"]]
    assert "by the patient" in resource["text"]["div"]
    assert "Privatename" not in json.dumps(resource)


def test_a_representative_signs_as_such():
    patient = make_patient(full_name="Imogen Privatename")
    consent = record(
        patient=patient, signed_by_name="Ruth Parent", representative_authority="parent"
    )
    resource = validated(consent_json(consent))
    assert resource["subject"]["identifier"]["value"] == patient.reference
    assert resource["grantor"] == [{"type": "RelatedPerson", "display": "Ruth Parent (parent)"}]
    assert resource["controller"][0]["type"] == "Organization"
    assert "Privatename" not in json.dumps(resource)


def test_a_consent_without_a_document_exports_without_an_attachment():
    patient = make_patient()
    consent = Consent.objects.create(
        patient=patient,
        form=ConsentForm.objects.get(version="2026-1"),
        allow_website=True,
        signed_at=now() - timedelta(days=3),
        signed_by_name="Paper Import",
        expires_at=now() + timedelta(days=30),
    )
    resource = validated(consent_json(consent))
    assert "sourceAttachment" not in resource and resource["status"] == "active"


def test_the_export_is_as_of_the_time_asked():
    consent = record()
    later = consent_resource(consent, at=consent.expires_at + timedelta(seconds=1))
    assert later["status"] == "inactive" and ": expired." in later["text"]["div"]
    FhirConsent.model_validate(later)


# --- the download --------------------------------------------------------------------


def test_consent_officers_download_it_and_the_download_is_recorded(
    client, django_assert_num_queries
):
    officer = make_user(groups=["Consent officers"])
    client.force_login(officer)
    consent = record(patient=make_patient(reference="P-7/x"))
    before = ConsentEvent.objects.filter(consent=consent, kind="exported").count()
    # Session, user, two permission reads, the consent with its patient and form, the event.
    with django_assert_num_queries(6):
        response = client.get(f"/staff/consents/{consent.pk}/consent.fhir.json")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/fhir+json"
    assert response["Content-Disposition"] == (
        f'attachment; filename="consent-{consent.pk}-P-7-x.fhir.json"'
    )
    assert {"no-store", "private"} <= {d.strip() for d in response["Cache-Control"].split(",")}
    assert validated(response.content)["id"] == str(consent.pk)
    events = ConsentEvent.objects.filter(consent=consent, kind="exported")
    assert events.count() == before + 1
    event = events.latest("pk")
    assert event.actor == officer and event.details == {"format": "fhir-r5"}
    history = client.get(f"/staff/consents/{consent.pk}/").content.decode()
    assert "Evidence exported (FHIR Consent record)" in history


@pytest.mark.parametrize("role", ["Photographers", "Reviewers"])
def test_other_staff_are_refused_and_nothing_is_recorded(client, role):
    consent = record()
    client.force_login(make_user(groups=[role]))
    assert client.get(f"/staff/consents/{consent.pk}/consent.fhir.json").status_code == 403
    client.logout()
    response = client.get(f"/staff/consents/{consent.pk}/consent.fhir.json")
    assert response.status_code == 302 and "login" in response["Location"]
    assert not ConsentEvent.objects.filter(consent=consent, kind="exported").exists()


def test_an_unknown_consent_is_not_found(client):
    client.force_login(make_user(groups=["Consent officers"]))
    assert client.get("/staff/consents/999999/consent.fhir.json").status_code == 404


def test_the_consent_page_links_to_it_for_officers_only(client):
    consent = record()
    link = f'href="/staff/consents/{consent.pk}/consent.fhir.json"'
    client.force_login(make_user(groups=["Consent officers"]))
    assert link in client.get(f"/staff/consents/{consent.pk}/").content.decode()
    client.force_login(make_user(groups=["Photographers"]))
    page = client.get(f"/staff/consents/{consent.pk}/")
    assert page.status_code == 200 and link not in page.content.decode()


def test_the_evidence_bundle_holds_the_same_record(client):
    client.force_login(make_user(groups=["Consent officers"]))
    consent = withdrawn()
    response = client.get(f"/staff/consents/{consent.pk}/evidence.zip")
    z = zipfile.ZipFile(io.BytesIO(response.content))
    resource = validated(z.read("consent.fhir.json"))
    assert resource["status"] == "inactive"
    (attachment,) = resource["sourceAttachment"]
    document = z.read("signed-document.jpg")
    assert attachment["hash"] == base64.b64encode(hashlib.sha1(document).digest()).decode()
    assert attachment["size"] == str(len(document)) == str(len(DOCUMENT))


def test_a_document_lost_from_storage_still_exports_and_says_so(client):
    client.force_login(make_user(groups=["Consent officers"]))
    consent = active()
    default_storage.delete(consent.signature.name)
    response = client.get(f"/staff/consents/{consent.pk}/consent.fhir.json")
    assert response.status_code == 200
    assert "sourceAttachment" not in validated(response.content)
    bundle = client.get(f"/staff/consents/{consent.pk}/evidence.zip")
    assert bundle.status_code == 200
    z = zipfile.ZipFile(io.BytesIO(bundle.content))
    assert "Signed document: MISSING from storage" in z.read("summary.txt").decode()
    assert not [n for n in z.namelist() if n.startswith("signed-document")]
