"""The staff workflow: a case from facts to photos to review to the public gallery."""

import io

import pillow_heif
import pytest
from PIL import Image, ImageEnhance

from gallery.models import Case, Concern, Treatment
from tests.conftest import (
    make_consent,
    make_location,
    make_patient,
    make_practitioner,
    make_user,
    sessions_form_data,
    skin_jpeg,
    weeks_ago,
)

pytestmark = pytest.mark.django_db


def case_facts(consent, **overrides) -> dict:
    data = {
        "consent": consent.pk,
        "treatment": Treatment.objects.get(slug="rf-microneedling").pk,
        "concerns": [Concern.objects.get(slug="acne-scars").pk],
        "body_area": "cheeks",
        "fitzpatrick": "4",
        "skin_type": "oily",
        "zone_depths": "",
        "weeks_after_entered": "12",
        "location": make_location().pk,
        "practitioner": make_practitioner(
            "amara-okafor", name="Dr. Amara Okafor", credentials="Dermatologist"
        ).pk,
        "device": "",
        "aftercare_notes": "",
        "side_effects_notes": "",
        "testimonial": "",
    }
    # Three sessions six weeks apart, the deepest setting 2.25 mm on the cheeks.
    data |= sessions_form_data(
        [
            (
                weeks_ago(12 + 6 * n),
                "RF system",
                [("cheeks", "2.25", 30, 2), ("nose", "1.5", 25, 1)],
            )
            for n in (2, 1, 0)
        ]
    )
    data.update(overrides)
    return data


def heic_bytes(seed=1, role="after", size=(900, 600)) -> bytes:
    im = Image.open(io.BytesIO(skin_jpeg(seed, 4, role, size)))
    buf = io.BytesIO()
    pillow_heif.from_pillow(im).save(buf, quality=85)
    return buf.getvalue()


def upload(client, case, data: bytes, name: str, role: str, view="front"):
    f = io.BytesIO(data)
    f.name = name
    return client.post(f"/staff/cases/{case.pk}/photos/", {"file": f, "role": role, "view": view})


@pytest.fixture
def photographer(client):
    user = make_user("photographer", groups=["Photographers"])
    client.force_login(user)
    return user


@pytest.fixture
def patient_with_consent():
    patient = make_patient()
    return patient, make_consent(patient)


def create_case(client, patient, consent, **overrides) -> Case:
    response = client.post(f"/staff/cases/new/{patient.pk}/", case_facts(consent, **overrides))
    assert response.status_code == 302, response.content.decode()[:2000]
    return Case.objects.latest("pk")


def test_a_photographer_adds_a_case_with_a_heic_and_a_jpeg_then_a_reviewer_publishes(
    client, photographer, patient_with_consent, django_capture_on_commit_callbacks
):
    patient, consent = patient_with_consent
    case = create_case(client, patient, consent)
    assert case.status == "draft" and case.created_by == photographer and case.fitzpatrick == 4
    before = upload(client, case, skin_jpeg(3, 4, "before", (900, 600)), "IMG_1.JPG", "before")
    after = upload(client, case, heic_bytes(3), "IMG_2.HEIC", "after")
    assert before.status_code == 201 and after.status_code == 201, after.json()
    assert after.json()["photo"]["rendered"] is True
    # Staff previews first: a draft's photos have their JPEGs only.
    assert {r["format"] for p in case.photos.all() for r in p.renditions} == {"jpeg"}
    page = client.get(f"/staff/cases/{case.pk}/").content.decode()
    assert "data-compare" in page and "/staff/photos/" in page and "/media/public/" not in page
    assert "Caption the public will see" in page and case.disclosure() in page
    assert client.post(f"/staff/cases/{case.pk}/submit/").status_code == 302
    case.refresh_from_db()
    assert case.status == "review"
    assert not Case.objects.public().exists()  # only through review

    client.force_login(make_user(groups=["Reviewers"]))
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/staff/cases/{case.pk}/publish/", follow=True)
    assert "Approved and published" in response.content.decode()
    assert list(Case.objects.public()) == [case]
    assert client.get(case.get_absolute_url()).status_code == 200
    assert case.photos.exclude(public_key="").count() == 2
    # The public set was rendered on publication, and the public page offers it.
    for photo in case.photos.all():
        assert {r["format"] for r in photo.renditions} == {"avif", "webp", "jpeg"}
    page = client.get(case.get_absolute_url()).content.decode()
    assert 'type="image/avif"' in page and 'type="image/webp"' in page

    # A change to a published case renders its whole set at once (it is public already).
    from gallery.publication import build_renditions

    with django_capture_on_commit_callbacks(execute=True):
        build_renditions(case, "front")
    assert all(len(p.renditions) % 3 == 0 for p in case.photos.all())
    assert case.photos.exclude(public_key="").count() == 2


def test_a_bad_file_gets_its_own_clear_error_and_nothing_is_kept(
    client, photographer, patient_with_consent
):
    from tests.conftest import stored_files

    case = create_case(client, *patient_with_consent)
    response = upload(client, case, b"%PDF-1.4 not a photo", "scan.jpg", "before")
    assert response.status_code == 400
    assert response.json()["error"] == (
        "This file is a PDF document named .jpg. Upload a JPEG, PNG, WebP or HEIC photo."
    )
    assert case.photos.count() == 0 and stored_files() == []
    assert (
        upload(client, case, skin_jpeg(1, 4, "before", (600, 400)), "ok.jpg", "before").status_code
        == 201
    )


def test_missing_facts_and_pairs_block_submission(client, photographer, patient_with_consent):
    case = create_case(client, *patient_with_consent)
    upload(client, case, skin_jpeg(1, 4, "before", (600, 400)), "b.jpg", "before")
    response = client.post(f"/staff/cases/{case.pk}/submit/", follow=True)
    assert "Missing: a before and an after photo of the same view." in response.content.decode()
    case.refresh_from_db()
    assert case.status == "draft"


def test_the_minimum_interval_guard_blocks_an_early_after_photo(
    client, photographer, patient_with_consent
):
    # RF microneedling is judged at 6 weeks or later.
    case = create_case(client, *patient_with_consent, weeks_after_entered="2")
    upload(client, case, skin_jpeg(2, 4, "before", (600, 400)), "b.jpg", "before")
    upload(client, case, skin_jpeg(2, 4, "after", (600, 400)), "a.jpg", "after")
    response = client.post(f"/staff/cases/{case.pk}/submit/", follow=True)
    assert "results are judged at 6 weeks or later" in response.content.decode()
    # With a capture date, the after photo's own date counts, whatever was entered: the
    # last session was 12 weeks ago and the photo taken 8 weeks later, so 4 weeks after.
    client.post(f"/staff/cases/{case.pk}/edit/", case_facts(case.consent, weeks_after_entered="12"))
    case.refresh_from_db()
    assert case.weeks_after_last_session == 12
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9003] = weeks_ago(8).strftime("%Y:%m:%d 10:00:00")
    buf = io.BytesIO()
    Image.open(io.BytesIO(skin_jpeg(2, 4, "after", (600, 400)))).save(buf, "JPEG", exif=exif)
    client.post(f"/staff/cases/{case.pk}/photos/{case.photos.get(role='after').pk}/delete/")
    upload(client, case, buf.getvalue(), "a2.jpg", "after")
    case.refresh_from_db()
    assert case.weeks_after_last_session == 4
    response = client.post(f"/staff/cases/{case.pk}/submit/", follow=True)
    assert "The after photo is 4 weeks after the last session" in response.content.decode()


def test_publishing_is_refused_with_the_exact_failing_condition(client, patient_with_consent):
    patient, _ = patient_with_consent
    narrow = make_consent(patient, allow_website=False)
    photographer = make_user(groups=["Photographers"])
    client.force_login(photographer)
    case = create_case(client, patient, narrow)
    upload(client, case, skin_jpeg(4, 4, "before", (600, 400)), "b.jpg", "before")
    upload(client, case, skin_jpeg(4, 4, "after", (600, 400)), "a.jpg", "after")
    client.post(f"/staff/cases/{case.pk}/submit/")
    client.force_login(make_user(groups=["Reviewers"]))
    response = client.post(f"/staff/cases/{case.pk}/publish/", follow=True)
    html = response.content.decode()
    assert "Not published" in html and "Its consent does not allow the website." in html
    case.refresh_from_db()
    assert case.status == "review" and case.reviewed_by is None


def test_comparability_warnings_need_a_written_override(
    client, photographer, patient_with_consent, django_capture_on_commit_callbacks
):
    case = create_case(client, *patient_with_consent)
    upload(client, case, skin_jpeg(5, 4, "before", (600, 400)), "b.jpg", "before")
    dark = ImageEnhance.Brightness(
        Image.open(io.BytesIO(skin_jpeg(5, 4, "after", (600, 400))))
    ).enhance(0.45)
    buf = io.BytesIO()
    dark.save(buf, "JPEG")
    upload(client, case, buf.getvalue(), "a.jpg", "after")
    page = client.get(f"/staff/cases/{case.pk}/").content.decode()
    assert "Exposure: the after photo is" in page and "darker" in page
    client.post(f"/staff/cases/{case.pk}/submit/")
    client.force_login(make_user(groups=["Reviewers"]))
    refused = client.post(f"/staff/cases/{case.pk}/publish/", follow=True).content.decode()
    assert "write why the photos may be published anyway" in refused
    assert not Case.objects.public().exists()
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            f"/staff/cases/{case.pk}/publish/",
            {"override": "Lighting differs; the scars are clear."},
        )
    case.refresh_from_db()
    assert case.is_public and case.check_override == "Lighting differs; the scars are clear."


def test_send_back_shows_the_comment_and_unpublish_takes_it_down(
    client, photographer, patient_with_consent, django_capture_on_commit_callbacks
):
    case = create_case(client, *patient_with_consent)
    upload(client, case, skin_jpeg(6, 4, "before", (600, 400)), "b.jpg", "before")
    upload(client, case, skin_jpeg(6, 4, "after", (600, 400)), "a.jpg", "after")
    client.post(f"/staff/cases/{case.pk}/submit/")
    reviewer = make_user(groups=["Reviewers"])
    client.force_login(reviewer)
    assert (
        "Write what the photographer"
        in client.post(
            f"/staff/cases/{case.pk}/send-back/", {"comment": ""}, follow=True
        ).content.decode()
    )
    client.post(f"/staff/cases/{case.pk}/send-back/", {"comment": "Crop out the ear."})
    client.force_login(photographer)
    assert "Crop out the ear." in client.get("/staff/").content.decode()
    assert "Sent back by the reviewer" in client.get(f"/staff/cases/{case.pk}/").content.decode()
    client.post(f"/staff/cases/{case.pk}/submit/")
    client.force_login(reviewer)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/staff/cases/{case.pk}/publish/")
    assert Case.objects.public().count() == 1
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/staff/cases/{case.pk}/unpublish/", {"archive": "1"})
    case.refresh_from_db()
    assert case.status == "archived" and not Case.objects.public().exists()
    assert client.get(case.get_absolute_url()).status_code == 404
    assert not case.photos.exclude(public_key="").exists()


def test_photographers_edit_only_their_own_drafts(client, patient_with_consent):
    patient, consent = patient_with_consent
    owner = make_user(groups=["Photographers"])
    client.force_login(owner)
    case = create_case(client, patient, consent)
    client.force_login(make_user(groups=["Photographers"]))
    assert client.get(f"/staff/cases/{case.pk}/edit/").status_code == 403
    assert upload(client, case, skin_jpeg(), "x.jpg", "before").status_code == 403
    assert client.post(f"/staff/cases/{case.pk}/publish/").status_code == 403
    client.force_login(owner)
    assert client.get(f"/staff/cases/{case.pk}/edit/").status_code == 200


def test_a_case_needs_one_of_the_patients_active_consents(client, photographer):
    patient = make_patient()
    response = client.get(f"/staff/cases/new/{patient.pk}/")
    assert (
        response.status_code == 302 and response["Location"] == f"/staff/consents/new/{patient.pk}/"
    )
    consent = make_consent(patient)
    someone_elses = make_consent()
    response = client.post(f"/staff/cases/new/{patient.pk}/", case_facts(someone_elses))
    assert "Select a valid choice" in response.content.decode()
    deid_only = make_consent(patient, identifiable=False)
    response = client.post(f"/staff/cases/new/{patient.pk}/", case_facts(deid_only))
    assert "only de-identified photos" in response.content.decode()
    assert Case.objects.count() == 0
    del consent


def test_cropping_realigns_the_pair_and_keeps_the_original(
    client, photographer, patient_with_consent
):
    case = create_case(client, *patient_with_consent)
    upload(client, case, skin_jpeg(7, 4, "before", (1200, 900)), "b.jpg", "before")
    upload(client, case, skin_jpeg(7, 4, "after", (1200, 900)), "a.jpg", "after")
    after = case.photos.get(role="after")
    original = after.original.name
    response = client.post(
        f"/staff/cases/{case.pk}/photos/{after.pk}/crop/",
        {"zoom": "2", "centre_x": "0.25", "centre_y": "0.5"},
    )
    assert response.status_code == 302
    after.refresh_from_db()
    assert after.original.name == original
    assert (round(after.crop_width, 3), round(after.crop_left, 3)) == (0.5, 0.0)
    before = case.photos.get(role="before")
    sizes = lambda p: sorted((r["width"], r["height"]) for r in p.renditions)  # noqa: E731
    assert sizes(before) == sizes(after) and max(sizes(after))[0] == 600


def test_an_upload_renders_only_its_own_view(client, photographer, patient_with_consent):
    case = create_case(client, *patient_with_consent)
    upload(client, case, skin_jpeg(8, 4, "before", (600, 400)), "b.jpg", "before")
    upload(client, case, skin_jpeg(8, 4, "after", (600, 400)), "a.jpg", "after")
    front = {p.pk: [r["name"] for r in p.renditions] for p in case.photos.all()}
    upload(client, case, skin_jpeg(9, 4, "before", (600, 400)), "c.jpg", "before", view="close_up")
    assert {
        p.pk: [r["name"] for r in p.renditions] for p in case.photos.filter(view="front")
    } == front
    assert case.photos.get(view="close_up").rendered_at is not None


def test_a_published_pair_with_only_its_jpegs_gets_its_public_set_from_the_sync(
    django_capture_on_commit_callbacks,
):
    """A crop saved while the case was being published leaves a published pair with its
    JPEGs only: the next sync renders the public set before putting the pair up."""
    from django.utils import timezone

    from gallery.publication import add_photo, build_renditions, sync_publication
    from tests.conftest import make_case

    case = make_case(photos=False, status=Case.Status.REVIEW, published_at=None)
    for role in ("before", "after"):
        add_photo(case, role, "front", io.BytesIO(skin_jpeg(4, 3, role, (600, 400))), "p.jpg")
    build_renditions(case)
    assert {r["format"] for p in case.photos.all() for r in p.renditions} == {"jpeg"}
    reviewer = make_user(groups=["Reviewers"])
    Case.objects.filter(pk=case.pk).update(
        status=Case.Status.PUBLISHED, reviewed_by=reviewer, published_at=timezone.now()
    )
    assert not case.photos.exclude(public_key="").exists()
    with django_capture_on_commit_callbacks(execute=True):
        sync_publication()
    for photo in case.photos.all():
        assert {r["format"] for r in photo.renditions} == {"avif", "webp", "jpeg"}
        assert photo.public_key
    assert list(Case.objects.public()) == [case]
