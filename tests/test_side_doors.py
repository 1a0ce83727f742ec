"""Side doors: every way around the staff pages, tried over HTTP as the person who would
try it (the admin included). Each must either refuse with a clear answer, or go through
the same workflow, publication and consent functions, so that afterwards every public
surface (pages, API, sitemap, image files, cached pages, the listing) agrees with
``Case.objects.public()``."""

import io
import re

import pytest
from django.test import Client

from consent.models import Consent, ConsentEvent, Patient, record_consent
from gallery.models import Case, Photo, Treatment, public_name
from tests.conftest import (
    fetch,
    make_case,
    make_consent,
    make_patient,
    make_public_case,
    make_user,
    skin_jpeg,
    stored_files,
)

pytestmark = pytest.mark.django_db

SURFACES = ["/", "/gallery/", "/api/cases/", "/sitemap.xml", "/treatments/microneedling/"]


def image_urls(visitor: Client, case: Case) -> list[str]:
    data = visitor.get(f"/api/cases/{case.public_id}/").json()
    urls = set()
    for pair in data["pairs"]:
        for side in ("before", "after"):
            urls.add(pair[side]["src"])
            for srcset in pair[side]["srcset"].values():
                urls.update(part.split(" ")[0] for part in srcset.split(", "))
    return sorted(urls)


def warm(visitor: Client) -> dict[str, list[str]]:
    """Visit every surface (so the page cache holds them) and every public case's images."""
    images = {}
    for case in Case.objects.public():
        assert visitor.get(case.get_absolute_url()).status_code == 200
        images[case.public_id] = image_urls(visitor, case)
    for url in SURFACES:
        assert visitor.get(url).status_code == 200
    return images


def assert_surfaces_agree(visitor: Client, images: dict[str, list[str]] | None = None) -> None:
    public = set(Case.objects.public().values_list("public_id", flat=True))
    for case in Case.objects.all():
        want = 200 if case.public_id in public else 404
        assert visitor.get(case.get_absolute_url()).status_code == want, case.status
        assert visitor.get(f"/api/cases/{case.public_id}/").status_code == want
        for url in SURFACES:
            body = visitor.get(url).content.decode()
            assert (case.public_id in body) == (case.public_id in public), (url, case.status)
    api = visitor.get("/api/cases/").json()
    assert api["count"] == len(public)
    assert {r["id"] for r in api["results"]} == public
    assert set(Case.objects.listed().values_list("public_id", flat=True)) == public
    # Public storage holds exactly the renditions of the public cases' photos.
    expected = {
        public_name(p.public_key, r)
        for p in Photo.objects.exclude(public_key="").select_related("case")
        for r in p.renditions
    }
    assert all(
        p.case.public_id in public
        for p in Photo.objects.exclude(public_key="").select_related("case")
    )
    assert set(stored_files("public")) == expected
    # Every image a visitor was ever shown of a case no longer public answers 404; the
    # public cases' images (fresh names after a republication) answer 200.
    for public_id, urls in (images or {}).items():
        if public_id not in public:
            assert {u: fetch(visitor, u)[0] for u in urls} == {u: 404 for u in urls}
    for case in Case.objects.public():
        urls = image_urls(visitor, case)
        assert urls and {u: fetch(visitor, u)[0] for u in urls} == {u: 200 for u in urls}


def staff(client: Client, *groups: str, superuser: bool = False):
    user = make_user(groups=groups, is_staff=True, is_superuser=superuser)
    client.force_login(user)
    return user


def case_form_data(case: Case, **overrides) -> dict:
    data = {
        "patient": case.patient_id,
        "consent": case.consent_id,
        "treatment": case.treatment_id,
        "concerns": list(case.concerns.values_list("pk", flat=True)),
        "body_area": case.body_area,
        "fitzpatrick": case.fitzpatrick,
        "skin_type": case.skin_type,
        "needle_depth_mm": case.needle_depth_mm,
        "zone_depths": "",
        "session_count": case.session_count,
        "session_interval_weeks": case.session_interval_weeks,
        "last_session_on": "",
        "weeks_after_last_session": case.weeks_after_last_session,
        "location": case.location_id,
        "practitioner": case.practitioner_id,
        "device": "",
        "aftercare_notes": "",
        "side_effects_notes": "",
        "testimonial": "",
        "photos-TOTAL_FORMS": "0",
        "photos-INITIAL_FORMS": "0",
        "sessions-TOTAL_FORMS": "0",
        "sessions-INITIAL_FORMS": "0",
    }
    data.update(overrides)
    return data


def action(client, model: str, name: str, objs, **extra):
    return client.post(
        f"/admin/{model}/",
        {"action": name, "_selected_action": [o.pk for o in objs], **extra},
        follow=True,
    )


# --- cases and photos in the admin ----------------------------------------------------


def test_a_photographer_cannot_add_photos_to_a_published_case_in_the_admin(
    client, django_capture_on_commit_callbacks
):
    live = make_public_case()
    visitor = Client()
    images = warm(visitor)
    staff(client, "Photographers")
    upload = io.BytesIO(skin_jpeg(size=(400, 300)))
    upload.name = "x.jpg"
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/admin/gallery/photo/add/",
            {"case": live.pk, "role": "before", "view": "close_up", "upload": upload},
        )
    assert response.status_code == 200  # the form again, with its error
    assert "Select a valid choice" in response.content.decode()
    assert live.photos.count() == 2
    assert_surfaces_agree(visitor, images)


def test_a_photographer_adds_photos_in_the_admin_only_to_their_own_draft(
    client, django_capture_on_commit_callbacks
):
    me = staff(client, "Photographers")
    mine = make_case(photos=False, status="draft", created_by=me)
    theirs = make_case(photos=False, status="draft", created_by=make_user())
    for case, added in ((theirs, 0), (mine, 1)):
        upload = io.BytesIO(skin_jpeg(size=(400, 300)))
        upload.name = "x.jpg"
        with django_capture_on_commit_callbacks(execute=True):
            client.post(
                "/admin/gallery/photo/add/",
                {"case": case.pk, "role": "before", "view": "front", "upload": upload},
            )
        assert case.photos.count() == added
    assert mine.photos.get().rendered_at is not None  # rendered like a staff upload


def test_a_photographer_cannot_edit_another_draft_or_a_live_case_in_the_admin(client):
    me = staff(client, "Photographers")
    other_draft = make_case(status="draft", created_by=make_user(), published_at=None)
    live = make_case(created_by=me)
    for case in (other_draft, live):
        page = client.get(f"/admin/gallery/case/{case.pk}/change/")
        assert page.status_code == 200 and 'name="_save"' not in page.content.decode()
        response = client.post(
            f"/admin/gallery/case/{case.pk}/change/",
            case_form_data(case, device="Changed through the admin"),
        )
        assert response.status_code == 403
        case.refresh_from_db()
        assert case.device == ""


def test_editing_a_draft_in_the_admin_cannot_change_its_status(
    client, django_capture_on_commit_callbacks
):
    me = staff(client, "Photographers")
    mine = make_case(status="draft", created_by=me, published_at=None)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            f"/admin/gallery/case/{mine.pk}/change/",
            case_form_data(mine, status="review", reviewed_by=me.pk, device="Edited pen"),
        )
    assert response.status_code == 302, response.content.decode()[:3000]
    mine.refresh_from_db()
    assert (mine.device, mine.status, mine.reviewed_by) == ("Edited pen", "draft", None)


def test_submitting_in_the_admin_runs_the_submit_checks(client):
    me = staff(client, "Photographers")
    mine = make_case(photos=False, status="draft", created_by=me, published_at=None)
    page = action(client, "gallery/case", "submit", [mine]).content.decode()
    assert "before and after" in page.lower() or "pair" in page.lower(), page[:3000]
    mine.refresh_from_db()
    assert mine.status == "draft"


def test_publishing_an_unsubmitted_case_in_the_admin_is_refused_with_a_message(client):
    staff(client, superuser=True)
    draft = make_case(status="draft", published_at=None)
    response = action(client, "gallery/case", "publish", [draft])
    assert response.status_code == 200
    assert "Only a case in review can be published" in response.content.decode()
    draft.refresh_from_db()
    assert draft.status == "draft"
    # Posting a status on the change form does nothing either (and is no 500).
    response = client.post(
        f"/admin/gallery/case/{draft.pk}/change/",
        case_form_data(draft, status="published"),
    )
    assert response.status_code == 302
    draft.refresh_from_db()
    assert draft.status == "draft" and draft.reviewed_by is None


def test_admin_actions_publish_unpublish_archive_and_reopen_through_the_workflow(
    client, django_capture_on_commit_callbacks
):
    reviewer = staff(client, "Reviewers")
    case = make_public_case()
    other = make_public_case()
    visitor = Client()
    images = warm(visitor)
    steps = [
        ("unpublish", "review"),
        ("publish", "published"),
        ("archive", "archived"),
        ("reopen", "draft"),
    ]
    for name, status in steps:
        with django_capture_on_commit_callbacks(execute=True):
            response = action(client, "gallery/case", name, [case])
        assert response.status_code == 200
        case.refresh_from_db()
        assert case.status == status, (name, response.content.decode()[-3000:])
        assert_surfaces_agree(visitor, images)
    case.refresh_from_db()
    assert case.reviewed_by is None and other.is_public
    assert reviewer.pk  # the actions ran as a reviewer, not a superuser


def test_nobody_deletes_cases_photos_consents_or_patients_in_the_admin(
    client, django_capture_on_commit_callbacks
):
    staff(client, superuser=True)
    case = make_public_case()
    visitor = Client()
    images = warm(visitor)
    photo = case.photos.first()
    targets = [
        f"/admin/gallery/case/{case.pk}/delete/",
        f"/admin/gallery/photo/{photo.pk}/delete/",
        f"/admin/consent/consent/{case.consent_id}/delete/",
        f"/admin/consent/patient/{case.patient_id}/delete/",
    ]
    with django_capture_on_commit_callbacks(execute=True):
        for url in targets:
            assert client.post(url, {"post": "yes"}).status_code == 403, url
        for model, obj in (("gallery/case", case), ("gallery/photo", photo)):
            action(client, model, "delete_selected", [obj], post="yes")
    assert Case.objects.filter(pk=case.pk).exists() and Photo.objects.filter(pk=photo.pk).exists()
    assert_surfaces_agree(visitor, images)


def test_changing_a_treatment_in_the_admin_renews_cached_pages(client):
    make_public_case()
    visitor = Client()
    warm(visitor)
    staff(client, superuser=True)
    treatment = Treatment.objects.get(slug="microneedling")
    response = client.post(
        f"/admin/gallery/treatment/{treatment.pk}/change/",
        {
            "name": "Collagen induction",
            "slug": treatment.slug,
            "summary": treatment.summary,
            "description": treatment.description,
            "factors": "[]",
            "faq": "[]",
            "min_weeks_after": treatment.min_weeks_after,
        },
    )
    assert response.status_code == 302
    for url in ("/treatments/microneedling/", "/gallery/", "/api/cases/"):
        assert "Collagen induction" in visitor.get(url).content.decode(), url


# --- consents in the admin ---------------------------------------------------------------


def test_a_signed_consent_cannot_be_rewritten_or_added_in_the_admin(client):
    staff(client, "Consent officers")
    consent = make_consent(signature="signatures/abc.png", access_token_hash="a" * 64)
    events = ConsentEvent.objects.count()
    response = client.post(
        f"/admin/consent/consent/{consent.pk}/change/",
        {
            "signed_by_name": "Someone else",
            "allow_social": "on",
            "patient_is_adult": "",
            "signature": "signatures/other.png",
            "access_token_hash": "b" * 64,
        },
    )
    assert response.status_code == 403
    stored = Consent.objects.get(pk=consent.pk)
    assert (stored.signed_by_name, stored.allow_social, stored.patient_is_adult) == (
        consent.signed_by_name,
        False,
        True,
    )
    assert stored.signature.name == "signatures/abc.png" and stored.access_token_hash == "a" * 64
    assert ConsentEvent.objects.count() == events
    assert client.get("/admin/consent/consent/add/").status_code == 403


def test_the_consent_admin_links_the_document_only_through_the_audited_view(client):
    staff(client, "Consent officers")
    consent = make_consent(signature="signatures/secret-name.png")
    html = client.get(f"/admin/consent/consent/{consent.pk}/change/").content.decode()
    assert f"/staff/consents/{consent.pk}/document/" in html
    assert "secret-name" not in html


@pytest.mark.parametrize("role", ["Photographers", "Reviewers"])
def test_photographers_and_reviewers_do_not_see_consent_records_in_the_admin(client, role):
    staff(client, role)
    consent = make_consent()
    assert "/admin/consent/consent/" not in client.get("/admin/").content.decode()
    for url in (
        "/admin/consent/consent/",
        f"/admin/consent/consent/{consent.pk}/change/",
        "/admin/consent/consentevent/",
    ):
        assert client.get(url).status_code == 403, url


def test_withdrawing_in_the_admin_empties_every_public_surface(
    client, django_capture_on_commit_callbacks
):
    staff(client, "Consent officers")
    case = make_public_case()
    kept = make_public_case()
    visitor = Client()
    images = warm(visitor)
    with django_capture_on_commit_callbacks(execute=True):
        response = action(client, "consent/consent", "withdraw_selected", [case.consent])
    assert "1 consent(s) withdrawn" in response.content.decode()
    assert_surfaces_agree(visitor, images)
    assert kept.is_public and not Case.objects.public().filter(pk=case.pk).exists()


def test_erasing_a_patient_deletes_their_photos_everywhere_and_keeps_the_consent_trail(
    client, django_capture_on_commit_callbacks
):
    staff(client, superuser=True)
    case = make_public_case()
    kept = make_public_case()
    visitor = Client()
    images = warm(visitor)
    originals = {p.original.name for p in case.photos.all()}
    confirm = action(client, "consent/patient", "erase", [case.patient])
    assert "This cannot be undone" in confirm.content.decode()
    assert Case.objects.filter(pk=case.pk).exists()  # nothing happens before the confirmation
    with django_capture_on_commit_callbacks(execute=True):
        action(client, "consent/patient", "erase", [case.patient], confirm="yes")
    assert not Case.objects.filter(pk=case.pk).exists()
    assert not originals & set(stored_files("default"))
    assert_surfaces_agree(visitor, images)
    consent = Consent.objects.get(pk=case.consent_id)
    assert consent.withdrawn_at is not None
    kinds = list(consent.events.values_list("kind", flat=True))
    assert kinds[-2:] == ["withdrawn", "erased"]
    assert kept.is_public


def test_only_a_clinic_admin_may_erase_a_patient(client):
    staff(client, "Consent officers")
    case = make_case()
    action(client, "consent/patient", "erase", [case.patient], confirm="yes")
    assert Case.objects.filter(pk=case.pk).exists()


# --- the patient's links ----------------------------------------------------------------


def patient_link(consent: Consent) -> str:
    token = consent.new_access_token()
    consent.save(update_fields=["access_token_hash"])
    return f"/consent/{token}/"


def test_an_old_link_after_a_renewal_tells_the_truth_and_withdraws_the_consent_in_force(
    django_capture_on_commit_callbacks,
):
    first_case = make_public_case()
    patient, first = first_case.patient, first_case.consent
    second_case = make_public_case(patient=patient, consent=first)
    old_link = patient_link(first)
    visitor = Client()
    images = warm(visitor)
    # The clinic renews the consent (the staff capture page calls this same function).
    with django_capture_on_commit_callbacks(execute=True):
        renewed = record_consent(
            patient,
            first.form,
            make_user(),
            ("png", b"\x89PNG signature"),
            allow_website=True,
            identifiable=True,
            patient_is_adult=True,
            signed_by_name=patient.full_name,
            expires_at=first.expires_at,
        )
    first.refresh_from_db()
    assert first.superseded_by == renewed and not first.is_active
    assert set(renewed.cases.values_list("pk", flat=True)) == {first_case.pk, second_case.pk}
    assert_surfaces_agree(visitor, images)  # both still public, under the new consent

    patient_browser = Client()
    page = patient_browser.get(old_link).content.decode()
    assert "None of your photos is on the website" not in page
    assert first_case.get_absolute_url() in page and second_case.get_absolute_url() in page
    assert "You signed a newer consent" in page
    confirm = patient_browser.get(old_link + "withdraw/").content.decode()
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', confirm)
    assert "2 cases with your photos will leave the website" in confirm
    with django_capture_on_commit_callbacks(execute=True):
        done = patient_browser.post(
            old_link + "withdraw/", {"csrfmiddlewaretoken": csrf.group(1) if csrf else ""}
        ).content.decode()
    assert "Your photos are no longer on the clinic" in done
    renewed.refresh_from_db()
    assert renewed.withdrawn_at is not None and renewed.withdrawal_channel == "patient_page"
    assert_surfaces_agree(visitor, images)
    for case in (first_case, second_case):
        assert visitor.get(case.get_absolute_url()).status_code == 404
        assert all(fetch(visitor, u)[0] == 404 for u in images[case.public_id])
    page = patient_browser.get(old_link).content.decode()
    assert "You withdrew your consent" in page
    assert "None of your photos is on the website" in page


def test_the_case_form_offers_only_the_consent_in_force(client):
    patient = make_patient()
    old = make_consent(patient)
    new = record_consent(
        patient,
        old.form,
        None,
        None,
        allow_website=True,
        identifiable=True,
        patient_is_adult=True,
        signed_by_name=patient.full_name,
        expires_at=old.expires_at,
    )
    client.force_login(make_user(groups=["Photographers"]))
    form = client.get(f"/staff/cases/new/{patient.pk}/").context["form"]
    assert list(form.fields["consent"].queryset) == [new]


def test_a_case_left_under_a_superseded_consent_is_never_public(
    client, django_capture_on_commit_callbacks
):
    """Even if something kept a case under the old consent (a crash, a stray write), the
    rule refuses it: a superseded consent no longer speaks for the patient."""
    case = make_case()
    Consent.objects.filter(pk=case.consent_id).update(
        superseded_at=case.consent.signed_at, superseded_by=make_consent(case.patient)
    )
    assert not Case.objects.public().filter(pk=case.pk).exists()
    case.refresh_from_db()
    assert not case.is_public
    assert client.get(case.get_absolute_url()).status_code == 404


def test_a_crash_after_a_narrowing_renewal_commits_hides_the_case(
    client, monkeypatch, django_capture_on_commit_callbacks
):
    """The after-commit work (public files, listing) never runs; the case is hidden all
    the same, because the cases moved and the old consent stopped counting in the
    transaction itself."""
    case = make_public_case()
    visitor = Client()
    warm(visitor)
    monkeypatch.setattr("gallery.receivers.sync_cases", lambda ids: None)
    with django_capture_on_commit_callbacks(execute=True):
        record_consent(
            case.patient,
            case.consent.form,
            None,
            None,
            allow_website=False,
            identifiable=True,
            patient_is_adult=True,
            signed_by_name="Patient",
            expires_at=case.consent.expires_at,
        )
    assert visitor.get(case.get_absolute_url()).status_code == 404
    assert visitor.get("/api/cases/").json()["count"] == 0
    assert case.public_id not in visitor.get("/gallery/").content.decode()


def test_a_case_added_in_the_admin_is_a_draft_whatever_is_posted(
    client, django_capture_on_commit_callbacks
):
    me = staff(client, "Photographers")
    template = make_case(status="draft", published_at=None)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/admin/gallery/case/add/",
            case_form_data(template, status="published", reviewed_by=me.pk, published_at="x"),
        )
    assert response.status_code == 302, response.content.decode()[:3000]
    added = Case.objects.latest("pk")
    assert added.pk != template.pk
    assert (added.status, added.created_by, added.reviewed_by) == ("draft", me, None)
    assert not Case.objects.public().exists()


def test_a_case_cannot_be_added_in_the_admin_under_a_superseded_consent(client):
    staff(client, "Photographers")
    template = make_case(status="draft", published_at=None)
    Consent.objects.filter(pk=template.consent_id).update(
        superseded_at=template.consent.signed_at, superseded_by=make_consent(template.patient)
    )
    response = client.post("/admin/gallery/case/add/", case_form_data(template))
    assert response.status_code == 200 and "Select a valid choice" in response.content.decode()
    assert Case.objects.count() == 1


def test_alt_text_is_edited_in_the_admin_only_where_the_case_may_be_edited(
    client, django_capture_on_commit_callbacks
):
    me = staff(client, "Photographers")
    live = make_public_case(created_by=me)
    visitor = Client()
    images = warm(visitor)
    photo = live.photos.first()
    url = f"/admin/gallery/photo/{photo.pk}/change/"
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(url, {"alt_text": "Changed behind review"}).status_code == 403
    photo.refresh_from_db()
    assert photo.alt_text == ""
    Case.objects.filter(pk=live.pk).update(status="draft", reviewed_by=None, published_at=None)
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(url, {"alt_text": "Cheek, close light"}).status_code == 302
    photo.refresh_from_db()
    assert photo.alt_text == "Cheek, close light"
    assert_surfaces_agree(visitor, images)


# --- the consent officer's pages --------------------------------------------------------


def test_staff_withdrawal_asks_for_confirmation_first(client, django_capture_on_commit_callbacks):
    staff(client, "Consent officers")
    case = make_public_case()
    page = client.get(f"/staff/consents/{case.consent_id}/withdraw/")
    assert page.status_code == 200
    assert "1 public case will leave the gallery" in page.content.decode()
    case.consent.refresh_from_db()
    assert case.consent.withdrawn_at is None and case.is_public
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/staff/consents/{case.consent_id}/withdraw/", {"channel": "phone"})
    case.consent.refresh_from_db()
    assert case.consent.withdrawal_channel == "phone"
    assert not Case.objects.public().exists()


@pytest.mark.parametrize(
    "reference", ['P-1"; filename=x.exe', "P-1\r\nX-Evil: 1", "a/b", "P\u202e1"]
)
def test_a_patient_reference_with_quotes_slashes_or_line_breaks_gets_a_form_error(
    client, reference
):
    staff(client, "Consent officers")
    response = client.post(
        "/staff/consents/patients/new/", {"reference": reference, "full_name": "Ada"}
    )
    assert response.status_code == 200
    assert response.context["form"].errors["reference"]
    assert not Patient.objects.filter(full_name="Ada").exists()


def test_an_old_reference_with_quotes_still_downloads_under_a_safe_file_name(client):
    staff(client, "Consent officers")
    consent = make_consent()
    Patient.objects.filter(pk=consent.patient_id).update(reference='P"1\r\n; x/../y')
    response = client.get(f"/staff/consents/{consent.pk}/evidence.zip")
    assert response.status_code == 200
    disposition = response["Content-Disposition"]
    assert disposition == f'attachment; filename="consent-{consent.pk}-P-1-x-..-y-evidence.zip"'
