"""Locations and practitioners: the filters and their facets, their own pages, the
consultation link, and who may treat where."""

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from consent.models import Consent
from gallery.models import Case, booking_url
from tests.conftest import (
    make_case,
    make_consent,
    make_listed_case,
    make_location,
    make_patient,
    make_practitioner,
    make_user,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def group():
    """Two locations, three practitioners (one works at both), seven public cases."""
    north = make_location("north", country="US", booking_url="https://north.example/book?src=g")
    south = make_location("south", country="AU")
    ana = make_practitioner("ana", name="Dr. Ana", credentials="Dermatologist", locations=[north])
    ben = make_practitioner("ben", name="Ben", locations=[south])
    cai = make_practitioner("cai", name="Cai", locations=[north, south])
    reviewer = make_user()
    cases = []
    for location, practitioner, fitz in [
        (north, ana, 1),
        (north, ana, 2),
        (north, cai, 3),
        (south, cai, 3),
        (south, ben, 4),
        (south, ben, 5),
        (south, ben, 6),
    ]:
        cases.append(
            make_listed_case(
                location=location, practitioner=practitioner, fitzpatrick=fitz, reviewed_by=reviewer
            )
        )
    return {"north": north, "south": south, "ana": ana, "ben": ben, "cai": cai, "cases": cases}


def api(client, query=""):
    response = client.get(f"/api/cases/?{query}")
    assert response.status_code == 200, response.content
    return response.json()


def test_filters_by_location_and_practitioner_agree_with_the_facets(client, group):
    everything = api(client)
    assert everything["count"] == 7
    facets = everything["facets"]
    # The clinic's first location (made by the migration) has no case here.
    assert facets["location"] == {"demo-skin-clinic": 0, "north": 3, "south": 4}
    assert facets["practitioner"] == {"ana": 2, "ben": 3, "cai": 2}
    for dim in ("location", "practitioner"):
        for slug, count in facets[dim].items():
            answer = api(client, f"{dim}={slug}")
            assert answer["count"] == count == len(answer["results"]), (dim, slug)
            field = "treated_by" if dim == "practitioner" else "location"
            assert {c[field]["slug"] for c in answer["results"]} == ({slug} if count else set())
    # Under a location, each practitioner's count is what choosing them too gives.
    south = api(client, "location=south")
    assert south["facets"]["practitioner"] == {"ana": 0, "ben": 3, "cai": 1}
    for slug, count in south["facets"]["practitioner"].items():
        assert api(client, f"location=south&practitioner={slug}")["count"] == count
    # Repeatable, and the location facet counts under the practitioner filter.
    both = api(client, "practitioner=ana&practitioner=cai")
    assert both["count"] == 4
    assert both["facets"]["location"] == {"demo-skin-clinic": 0, "north": 3, "south": 1}
    # The list page says the same.
    html = client.get("/gallery/?location=south&practitioner=ben").content.decode()
    assert html.count('<article class="card') == 3


def test_unknown_slugs_are_a_clear_400_in_the_api_and_ignored_by_the_page(client, group):
    response = client.get("/api/cases/?practitioner=nobody")
    assert response.status_code == 400
    assert "practitioner" in response.json()["fields"]
    assert client.get("/gallery/?location=nowhere").status_code == 200


def test_the_openapi_document_states_the_new_filters(client, group):
    parameters = {
        p["name"]: p
        for p in client.get("/api/openapi.json").json()["paths"]["/api/cases/"]["get"]["parameters"]
    }
    assert parameters["location"]["schema"] == {
        "type": "array",
        "items": {"type": "string", "enum": ["demo-skin-clinic", "north", "south"]},
    }
    # In the order of their names: Ben, Cai, Dr. Ana.
    assert parameters["practitioner"]["schema"]["items"]["enum"] == ["ben", "cai", "ana"]
    assert parameters["practitioner"]["explode"] is True


def test_practitioner_page_shows_only_public_cases(client, group):
    ana = group["ana"]
    hidden = [
        make_case(practitioner=ana, location=group["north"], status="draft", published_at=None),
        make_case(practitioner=ana, location=group["north"], photos=False),
    ]
    withdrawn_patient = make_patient()
    consent = make_consent(withdrawn_patient)
    withdrawn = make_listed_case(
        patient=withdrawn_patient, consent=consent, practitioner=ana, location=group["north"]
    )
    # Withdrawn behind the app's back: the listing still holds it, the rule does not.
    Consent.objects.filter(pk=consent.pk).update(
        withdrawn_at=timezone.now(), withdrawal_channel="staff"
    )
    hidden.append(withdrawn)
    response = client.get("/practitioners/ana/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Dr. Ana" in html and "Dermatologist" in html
    shown = {c.public_id for c in group["cases"][:2]}
    for case in Case.objects.filter(practitioner=ana):
        assert (case.public_id in html) == (case.public_id in shown), case.public_id
    assert all(case.public_id not in html for case in hidden)
    # Booking at each location they work at, and links to the list under their filter.
    assert 'href="https://north.example/book?src=g"' in html
    assert "/gallery/?practitioner=ana" in html
    assert client.get("/practitioners/nobody/").status_code == 404


def test_location_page_lists_its_practitioners_and_public_cases(client, group):
    html = client.get("/locations/south/").content.decode()
    assert "Ben" in html and "Cai" in html and "Dr. Ana" not in html
    south_ids = {c.public_id for c in group["cases"] if c.location_id == group["south"].pk}
    north_ids = {c.public_id for c in group["cases"]} - south_ids
    assert all(i in html for i in south_ids) and not any(i in html for i in north_ids)
    assert client.get("/locations/nowhere/").status_code == 404


def test_the_consultation_button_goes_to_the_location_with_the_case(client, group):
    case = group["cases"][0]
    assert case.booking_url == f"https://north.example/book?src=g&case={case.public_id}"
    html = client.get(case.get_absolute_url()).content.decode()
    # Through the counting redirect (analytics), on to the location's page with the case.
    assert f'class="cta" href="/book/?case={case.public_id}"' in html
    assert "Book a consultation at North" in html
    response = client.get(f"/book/?case={case.public_id}")
    assert response.status_code == 302 and response["Location"] == case.booking_url
    api_case = client.get(f"/api/cases/{case.public_id}/").json()
    assert api_case["booking_url"] == case.booking_url
    # One function makes the link: an existing ?case= is replaced, not repeated.
    assert booking_url("https://x.example/b?case=old", "new") == "https://x.example/b?case=new"
    assert booking_url("https://x.example/b", None) == "https://x.example/b"


def test_the_disclosure_names_the_practitioner_and_location(client, group):
    case = group["cases"][0]
    assert "Treated at North by Dr. Ana, Dermatologist." in case.disclosure()
    html = client.get(case.get_absolute_url()).content.decode()
    assert 'href="/practitioners/ana/"' in html and 'href="/locations/north/"' in html


def test_a_practitioner_must_work_at_the_case_location(group):
    case = group["cases"][0]
    case.practitioner = group["ben"]  # works only at south
    with pytest.raises(ValidationError) as error:
        case.full_clean()
    assert "Ben does not work at North" in str(error.value)


def test_locations_and_practitioners_in_use_are_not_deleted(client, group):
    admin = make_user(is_superuser=True, is_staff=True)
    client.force_login(admin)
    ana = group["ana"]
    response = client.get(f"/admin/gallery/practitioner/{ana.pk}/delete/")
    assert response.status_code == 403
    assert client.get(f"/admin/gallery/location/{group['north'].pk}/delete/").status_code == 403
    unused = make_practitioner("unused", name="Unused")
    assert client.get(f"/admin/gallery/practitioner/{unused.pk}/delete/").status_code == 200


def test_renaming_a_practitioner_renews_cached_pages(client, group):
    case = group["cases"][0]
    assert "Dr. Ana" in client.get(case.get_absolute_url()).content.decode()
    ana = group["ana"]
    ana.name = "Dr. Ana Renamed"
    ana.save()
    assert "Dr. Ana Renamed" in client.get(case.get_absolute_url()).content.decode()
    assert "Dr. Ana Renamed" in client.get("/gallery/?practitioner=ana").content.decode()


def test_a_practitioners_photo_is_stored_upright_small_and_without_camera_metadata(group):
    import io

    from django.core.files.uploadedfile import SimpleUploadedFile
    from PIL import Image

    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: turn right to show upright
    exif[0x010F] = "PhoneMaker"
    exif[0x8825] = {1: "N", 2: (51.0, 30.0, 0.0)}  # GPS
    buf = io.BytesIO()
    Image.new("RGB", (2400, 1600), (180, 140, 120)).save(buf, format="JPEG", exif=exif)
    ana = group["ana"]
    ana.photo = SimpleUploadedFile("IMG_0001.JPG", buf.getvalue(), content_type="image/jpeg")
    ana.save()
    with ana.photo.storage.open(ana.photo.name, "rb") as f:
        stored = f.read()
    ana.photo.storage.delete(ana.photo.name)
    with Image.open(io.BytesIO(stored)) as im:
        assert im.size == (533, 800)  # turned upright, at most 800 px
        assert not im.getexif() and "exif" not in im.info
    assert b"PhoneMaker" not in stored and ana.photo.name.startswith("practitioners/ana")
