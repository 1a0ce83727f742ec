"""Bulk import of an existing gallery from a JSON manifest (DESIGN's format).

Every photo goes through the same validation as a web upload. A case with any refused
file is not imported at all; running the same manifest twice creates nothing twice
(patients by reference, consents by patient + form + signing time, cases by the SHA-256
of their photos).
"""

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils.dateparse import parse_datetime
from django.utils.text import slugify

from consent.models import Consent, ConsentForm, Patient, record_consent
from gallery import images
from gallery.models import (
    Case,
    Concern,
    Location,
    Photo,
    Practitioner,
    Treatment,
    sessions_from_facts,
)
from gallery.publication import add_photo, build_renditions, remove_photo


@dataclass
class ImportReport:
    created_patients: int = 0
    created_consents: int = 0
    created_cases: list[int] = field(default_factory=list)
    skipped_cases: int = 0
    published: list[int] = field(default_factory=list)
    not_published: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # "path: reason" or "case N: reason"

    @property
    def ok(self) -> bool:
        return not self.refused


class ManifestError(ValueError):
    pass


def _file(base: Path, relative: str) -> Path:
    path = (base / relative).resolve()
    if not path.is_relative_to(base.resolve()):
        raise ManifestError(f"{relative}: the path leaves the manifest's folder.")
    return path


def _when(value, what: str) -> datetime:
    parsed = parse_datetime(value) if isinstance(value, str) else None
    if parsed is None or parsed.tzinfo is None:
        raise ManifestError(f"{what}: {value!r} is not a date-time with a time zone.")
    return parsed


def _validate(path: Path) -> images.PhotoFacts:
    with path.open("rb") as fp:
        return images.validate_photo(
            fp, path.name, settings.PHOTO_MAX_BYTES, settings.PHOTO_MAX_PIXELS
        )


def load(manifest_path: Path) -> dict:
    try:
        data = json.loads(manifest_path.read_text())
    except (OSError, ValueError) as error:
        raise ManifestError(f"{manifest_path}: cannot read the manifest ({error}).") from None
    if not isinstance(data, dict):
        raise ManifestError(f"{manifest_path}: the manifest must be a JSON object.")
    for key in ("patients", "consents", "cases"):
        if not isinstance(data.get(key, []), list):
            raise ManifestError(f"{manifest_path}: '{key}' must be a list.")
    return data


def import_manifest(manifest_path: Path, publish_as=None, progress=None) -> ImportReport:
    base = manifest_path.parent
    data = load(manifest_path)
    report = ImportReport()
    patients: dict[str, Patient] = {}
    for row in data.get("patients", []):
        reference = str(row.get("reference", "")).strip()
        if not reference or not row.get("full_name"):
            report.refused.append(f"patient {row!r}: a reference and a full name are needed.")
            continue
        patient, made = Patient.objects.get_or_create(
            reference=reference,
            defaults={"full_name": row["full_name"], "email": row.get("email", "")},
        )
        report.created_patients += made
        patients[reference] = patient

    consents: dict[str, Consent] = {}
    for row in sorted(data.get("consents", []), key=lambda r: str(r.get("signed_at", ""))):
        key = row.get("key", "?")
        try:
            consents[key] = _import_consent(base, row, patients, report)
        except (ManifestError, images.PhotoRejected) as error:
            report.refused.append(f"consent {key}: {getattr(error, 'message', str(error))}")

    cases = data.get("cases", [])
    for number, row in enumerate(cases, start=1):
        if progress:
            progress(number, len(cases))
        try:
            case = _import_case(
                base, number, row, patients, consents, report, public=publish_as is not None
            )
        except ManifestError as error:
            report.refused.append(f"case {number}: {error}")
            continue
        if case is not None and publish_as is not None:
            _publish(case, publish_as, report)
    return report


def _import_consent(base, row, patients, report) -> Consent:
    patient = patients.get(row.get("patient"))
    if patient is None:
        raise ManifestError(f"unknown patient {row.get('patient')!r}.")
    form = ConsentForm.objects.filter(version=row.get("form_version")).first()
    if form is None:
        raise ManifestError(f"unknown consent form version {row.get('form_version')!r}.")
    signed_at = _when(row.get("signed_at"), "signed_at")
    existing = Consent.objects.filter(patient=patient, form=form, signed_at=signed_at).first()
    if existing is not None:
        return existing
    document = None
    if row.get("document"):
        path = _file(base, row["document"])
        if not path.is_file():
            raise ManifestError(f"{row['document']}: no such file.")
        raw = path.read_bytes()
        if raw.startswith(b"%PDF-"):
            document = ("pdf", raw)
        else:
            try:
                facts = _validate(path)
            except images.PhotoRejected as refusal:
                raise ManifestError(f"{row['document']}: {refusal.message}") from None
            document = (facts.format, raw)
    flags = {
        name: bool(row.get(name, False))
        for name in (
            "allow_website",
            "allow_social",
            "allow_print",
            "allow_education",
            "identifiable",
            "patient_is_adult",
        )
    }
    from django.core.exceptions import ValidationError

    try:
        consent = record_consent(
            patient,
            form,
            recorded_by=None,
            document=document,
            signed_at=signed_at,
            signed_by_name=row.get("signed_by_name", ""),
            representative_authority=row.get("representative_authority", ""),
            expires_at=_when(row.get("expires_at"), "expires_at"),
            **flags,
        )
    except ValidationError as error:
        raise ManifestError("; ".join(error.messages)) from None
    report.created_consents += 1
    return consent


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fp:
        for chunk in iter(lambda: fp.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _import_case(base, number, row, patients, consents, report, public=False) -> Case | None:
    patient = patients.get(row.get("patient"))
    consent = consents.get(row.get("consent"))
    if patient is None:
        raise ManifestError(f"unknown patient {row.get('patient')!r}.")
    if consent is None:
        raise ManifestError(f"consent {row.get('consent')!r} was not imported.")
    consent.refresh_from_db(fields=["superseded_at", "superseded_by"])
    if consent.superseded_at is not None:
        # A later consent of the manifest replaced it: the case goes under the consent
        # in force, as a renewal moves existing cases.
        consent = consent.patient.consent_in_force()
    photos = row.get("photos") or []
    if not photos:
        raise ManifestError("no photos.")
    # Every file is checked before anything is created: a case imports whole or not at all.
    checked = []
    refused = False
    for item in photos:
        try:
            path = _file(base, str(item.get("file", "")))
            if not path.is_file():
                raise ManifestError(f"{item.get('file')}: no such file.")
            _validate(path)
            if (
                item.get("role") not in Photo.Role.values
                or item.get("view") not in Photo.View.values
            ):
                raise ManifestError(f"{item.get('file')}: role or view is not one we know.")
            checked.append((path, item["role"], item["view"]))
        except images.PhotoRejected as refusal:
            report.refused.append(f"{item.get('file')}: {refusal.message}")
            refused = True
        except ManifestError as error:
            report.refused.append(str(error))
            refused = True
    if refused:
        report.refused.append(f"case {number}: not imported, because of the files above.")
        return None
    hashes = {_sha256(path) for path, _, _ in checked}
    if Photo.objects.filter(case__patient=patient, sha256__in=hashes).exists():
        report.skipped_cases += 1  # imported before
        return None
    treatment = Treatment.objects.filter(slug=row.get("treatment")).first()
    if treatment is None:
        raise ManifestError(f"unknown treatment {row.get('treatment')!r}.")
    concerns = list(Concern.objects.filter(slug__in=row.get("concerns", [])))
    if len(concerns) != len(set(row.get("concerns", []))):
        raise ManifestError(f"unknown concern in {row.get('concerns')!r}.")
    try:
        depth = Decimal(str(row.get("needle_depth_mm")))
    except InvalidOperation:
        raise ManifestError(
            f"needle_depth_mm {row.get('needle_depth_mm')!r} is not a number."
        ) from None
    location, practitioner = _treated_by(row)
    case = Case(
        patient=patient,
        consent=consent,
        treatment=treatment,
        location=location,
        body_area=row.get("body_area", "face"),
        fitzpatrick=row.get("fitzpatrick"),
        skin_type=row.get("skin_type", ""),
        needle_depth_mm=depth,
        session_count=row.get("session_count"),
        session_interval_weeks=row.get("session_interval_weeks", 4),
        weeks_after_last_session=row.get("weeks_after_last_session"),
        deidentified=bool(row.get("deidentified", False)),
        sensitive=bool(row.get("sensitive", False)),
    )
    from django.core.exceptions import ValidationError

    try:
        case.full_clean(exclude=["practitioner"])
    except ValidationError as error:
        raise ManifestError(
            "; ".join(f"{k}: {' '.join(v)}" for k, v in error.message_dict.items())
        ) from None
    with transaction.atomic():
        _save_treated_by(case, location, practitioner)
        case.save()
        case.concerns.set(concerns)
    added = []
    try:
        for path, role, view in checked:
            with path.open("rb") as fp:
                added.append(add_photo(case, role, view, fp, path.name))
        # The typed facts become session records, dated back from the after photo's
        # capture date when it has one, so that they derive the same facts.
        sessions_from_facts(
            case,
            needle_depth_mm=case.needle_depth_mm,
            session_count=case.session_count,
            session_interval_weeks=case.session_interval_weeks,
            weeks_after_last_session=case.weeks_after_last_session,
        )
    except BaseException as error:
        for photo in added:
            remove_photo(photo)
        case.delete()
        raise ManifestError(
            f"a photo could not be stored ({error}); the case was not imported."
        ) from None
    build_renditions(case, public=public)  # the public set at once when it is to be published
    report.created_cases.append(case.pk)
    return case


def _treated_by(row: dict) -> tuple[Location, Practitioner]:
    """The row's location (its slug; may be left out where the clinic has one location)
    and practitioner (a slug or a name; a name not known yet becomes a practitioner at
    that location, as the cases of the time named them)."""
    slug = row.get("location")
    if slug:
        location = Location.objects.filter(slug=slug).first()
        if location is None:
            raise ManifestError(f"unknown location {slug!r}.")
    else:
        locations = list(Location.objects.all()[:2])
        if len(locations) != 1:
            raise ManifestError("location: give the slug of the location that treated the case.")
        location = locations[0]
    name = str(row.get("practitioner", "") or "Not recorded").strip()[:200]
    practitioner = (
        Practitioner.objects.filter(slug=name).first()
        or Practitioner.objects.filter(name=name).order_by("pk").first()
    )
    if practitioner is None:
        # Saved with the case (``_save_treated_by``), never without it.
        base = slugify(name)[:40] or "practitioner"
        slug, n = base, 2
        while Practitioner.objects.filter(slug=slug).exists():
            slug, n = f"{base}-{n}", n + 1
        practitioner = Practitioner(
            name=name, slug=slug, credentials=str(row.get("practitioner_credentials", ""))[:200]
        )
    return location, practitioner


def _save_treated_by(case: Case, location: Location, practitioner: Practitioner) -> None:
    if practitioner.pk is None:
        practitioner.save()
    practitioner.locations.add(location)
    case.practitioner = practitioner


def _publish(case: Case, reviewer, report: ImportReport) -> None:
    from gallery.workflow import WorkflowError, publish, submit_for_review

    try:
        # The same two steps as on the staff pages: a draft goes to review, then out.
        submit_for_review(case, reviewer)
        publish(case, reviewer)
    except WorkflowError as error:
        report.not_published.append(f"case {case.pk}: " + " ".join(error.problems))
    else:
        report.published.append(case.pk)
