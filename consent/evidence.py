"""The evidence bundle: one zip for a regulator or a complaint."""

import csv
import io
import json
import zipfile

from django.utils import timezone

from consent.fhir import consent_json, read_signed_document
from consent.hooks import EVIDENCE_COLUMNS, held_records
from consent.models import Consent


def evidence_filename(consent: Consent) -> str:
    return f"consent-{consent.pk}-{consent.patient.reference_for_files}-evidence.zip"


def evidence_bundle(consent: Consent) -> bytes:
    """The record, the text signed, the document, what it covered and the whole event
    trail, with a readable summary and the record as a FHIR R5 Consent resource."""
    records = held_records(consent=consent)
    document = read_signed_document(consent)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        summary = [
            f"Consent evidence, exported {timezone.now():%Y-%m-%d %H:%M %Z}",
            "",
            f"Patient: {consent.patient.full_name} ({consent.patient.reference})",
            f"Form: {consent.form.title}, version {consent.form.version}",
            f"Language of the text signed: {consent.language}",
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
            "Signed document: "
            + (
                "included"
                if document is not None
                else "MISSING from storage"
                if consent.signature
                else "none (recorded without one)"
            ),
        ]
        if consent.superseded_at:
            summary.append(
                f"Superseded at: {consent.superseded_at.isoformat()} "
                f"by consent {consent.superseded_by_id}"
            )
        if consent.withdrawn_at:
            summary.append(
                f"Withdrawn at: {consent.withdrawn_at.isoformat()} "
                f"({consent.get_withdrawal_channel_display()}, "
                f"by {consent.withdrawn_by or 'the patient'})"
            )
        summary += ["", f"Cases under this consent: {len(records)}"]
        photos_csv = io.StringIO()
        writer = csv.DictWriter(photos_csv, fieldnames=EVIDENCE_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for record in records:
            summary.append(f"  {record.label}, {record.status}")
            writer.writerows(record.files)
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
        # The exact text the patient read and signed, in their language (kept on the
        # consent when it was recorded).
        z.writestr(
            f"consent-form-{consent.form.version}.txt",
            consent.signed_text or consent.form.signed_text(consent.language),
        )
        z.writestr("photos.csv", photos_csv.getvalue())
        z.writestr("events.csv", events_csv.getvalue())
        z.writestr("consent.fhir.json", consent_json(consent, document))
        if document is not None:
            z.writestr("signed-document." + consent.signature.name.rsplit(".", 1)[-1], document)
    return buf.getvalue()
