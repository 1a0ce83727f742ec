"""import_cases: a clinic moving an existing gallery, through the same validation."""

import io
import json

import pillow_heif
import pytest
from django.core.management import CommandError, call_command
from PIL import Image

from consent.models import Consent, Patient
from gallery.models import Case, Photo
from tests.conftest import make_user, skin_jpeg, stored_files

pytestmark = pytest.mark.django_db


def write_manifest(tmp_path, bad=False) -> "Path":  # noqa: F821
    (tmp_path / "img").mkdir()
    (tmp_path / "scans").mkdir()
    (tmp_path / "img/p001-before.jpg").write_bytes(skin_jpeg(11, 4, "before", (900, 600)))
    heic = io.BytesIO()
    pillow_heif.from_pillow(Image.open(io.BytesIO(skin_jpeg(11, 4, "after", (900, 600))))).save(
        heic
    )
    (tmp_path / "img/p001-after.heic").write_bytes(heic.getvalue())
    (tmp_path / "img/p002-before.jpg").write_bytes(skin_jpeg(12, 2, "before", (900, 600)))
    (tmp_path / "img/p002-after.jpg").write_bytes(
        b"II*\x00" + b"\x00" * 300 if bad else skin_jpeg(12, 2, "after", (900, 600))
    )
    (tmp_path / "scans/p001.pdf").write_bytes(b"%PDF-1.4\n1 0 obj<<>>endobj\n%%EOF\n")
    consent = {
        "form_version": "2026-1",
        "allow_website": True,
        "allow_social": False,
        "allow_print": False,
        "allow_education": False,
        "identifiable": True,
        "patient_is_adult": True,
        "signed_at": "2026-01-10T10:00:00Z",
        "expires_at": "2031-01-10T00:00:00Z",
    }
    case = {
        "treatment": "microneedling",
        "concerns": ["acne-scars"],
        "body_area": "face",
        "fitzpatrick": 4,
        "skin_type": "oily",
        "needle_depth_mm": "1.50",
        "session_count": 3,
        "session_interval_weeks": 4,
        "weeks_after_last_session": 12,
        "deidentified": False,
        "sensitive": False,
        "practitioner": "Dr. Import",
    }
    manifest = {
        "patients": [
            {"reference": "P-001", "full_name": "Ada One", "email": "ada@example.com"},
            {"reference": "P-002", "full_name": "Bo Two", "email": ""},
        ],
        "consents": [
            {
                **consent,
                "key": "c1",
                "patient": "P-001",
                "signed_by_name": "Ada One",
                "document": "scans/p001.pdf",
            },
            {**consent, "key": "c2", "patient": "P-002", "signed_by_name": "Bo Two"},
        ],
        "cases": [
            {
                **case,
                "patient": "P-001",
                "consent": "c1",
                "photos": [
                    {"role": "before", "view": "front", "file": "img/p001-before.jpg"},
                    {"role": "after", "view": "front", "file": "img/p001-after.heic"},
                ],
            },
            {
                **case,
                "patient": "P-002",
                "consent": "c2",
                "fitzpatrick": 2,
                "photos": [
                    {"role": "before", "view": "front", "file": "img/p002-before.jpg"},
                    {"role": "after", "view": "front", "file": "img/p002-after.jpg"},
                ],
            },
        ],
    }
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(manifest))
    return path


def run(*args):
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("import_cases", *args, stdout=out, stderr=err)
        code = 0
    except CommandError as error:
        err.write(str(error))
        code = 1
    return code, out.getvalue(), err.getvalue()


def test_import_creates_drafts_and_is_idempotent(tmp_path):
    manifest = write_manifest(tmp_path)
    code, out, err = run(str(manifest))
    assert code == 0, err
    assert "2 case(s) imported" in out
    assert Case.objects.filter(status="draft").count() == 2 and not Case.objects.public().exists()
    assert Consent.objects.get(patient__reference="P-001").signature.name.endswith(".pdf")
    assert Photo.objects.filter(original_format="heic").count() == 1
    # The typed facts became one record per session that derive the same facts.
    for case in Case.objects.all():
        assert case.sessions.count() == case.session_count == 3
        assert case.weeks_after_last_session == 12 and case.session_interval_weeks == 4
        assert {str(z.needle_depth_mm) for s in case.sessions.all() for z in s.zones.all()} == {
            "1.50"
        }
    files_before = stored_files()
    code, out, err = run(str(manifest))
    assert code == 0 and "0 case(s) imported, 2 already there" in out
    assert (
        Case.objects.count() == 2 and Consent.objects.count() == 2 and Patient.objects.count() == 2
    )
    assert stored_files() == files_before


def test_a_bad_file_is_reported_and_its_case_not_imported_at_all(tmp_path):
    manifest = write_manifest(tmp_path, bad=True)
    code, out, err = run(str(manifest))
    assert code == 1
    assert "img/p002-after.jpg: This file is a TIFF image named .jpg." in err
    assert "case 2: not imported" in err
    assert Case.objects.count() == 1
    assert not Case.objects.filter(patient__reference="P-002").exists()
    assert len([f for f in stored_files() if f.startswith("originals/")]) == 2


def test_publish_with_a_reviewer_publishes_what_the_rule_allows(
    tmp_path, django_capture_on_commit_callbacks
):
    manifest = write_manifest(tmp_path)
    make_user("rev", groups=["Reviewers"])
    make_user("nobody")
    assert (
        "is not a user who may publish"
        in run(str(manifest), "--publish", "--reviewer", "nobody")[2]
    )
    with django_capture_on_commit_callbacks(execute=True):
        code, out, err = run(str(manifest), "--publish", "--reviewer", "rev")
    assert code == 0, err
    assert "2 case(s) published" in out
    assert Case.objects.public().count() == 2
