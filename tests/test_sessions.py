"""Treatment records per session: what staff enter, what is derived from it, and what the
public sees (weeks from the first session, never a date)."""

import io
import json
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.utils import timezone
from PIL import Image

from gallery.models import (
    Case,
    Concern,
    Photo,
    SessionRecord,
    SessionZone,
    Treatment,
    ZoneRecord,
    derive_facts,
    record_facts,
)
from tests.conftest import (
    make_consent,
    make_location,
    make_photo_row,
    make_practitioner,
    make_public_case,
    make_user,
    sessions_form_data,
    skin_jpeg,
    weeks_ago,
)

pytestmark = pytest.mark.django_db


def record(day: date, *zones) -> SessionRecord:
    return SessionRecord(day, "", tuple(ZoneRecord(z, Decimal(d), e, p) for z, d, e, p in zones))


def test_facts_are_derived_from_the_sessions():
    facts = derive_facts(
        [
            record(date(2026, 3, 2), ("cheeks", "1.00", 30, 2), ("nose", "2.00", 25, 2)),
            record(date(2026, 1, 5), ("cheeks", "1.00", 28, 2)),
            record(date(2026, 2, 2), ("forehead", "1.50", 20, 1)),
        ],
        None,
        12,
    )
    assert facts["session_count"] == 3
    assert facts["session_interval_weeks"] == 4  # 8 weeks over two gaps
    assert facts["needle_depth_mm"] == Decimal("2.00")  # the deepest of any zone
    assert facts["last_session_on"] == date(2026, 3, 2)
    assert facts["weeks_after_last_session"] == 12  # as entered: no photo date
    assert [s["week"] for s in facts["protocol"]] == [0, 4, 8]
    # Zones in the face's order, whatever order they were entered in.
    assert [z["zone"] for z in facts["protocol"][2]["zones"]] == ["nose", "cheeks"]
    assert "2026" not in json.dumps(facts["protocol"])


def test_the_after_photos_capture_date_wins_over_the_entered_weeks():
    sessions = [record(date(2026, 1, 5), ("cheeks", "1.00", None, None))]
    facts = derive_facts(sessions, date(2026, 4, 1), 2)
    assert facts["weeks_after_last_session"] == 12  # 86 days
    # A photo dated before the last session claims no weeks at all.
    assert derive_facts(sessions, date(2026, 1, 1), 2)["weeks_after_last_session"] == 0


def test_a_photo_with_a_capture_date_changes_the_derived_weeks_and_the_caption():
    case = make_public_case(weeks_after_last_session=12)
    assert "after photo 12 weeks after" in case.disclosure()
    last = case.last_session_on
    Photo.objects.filter(case=case, role="after").update(
        taken_at=timezone.make_aware(
            datetime.combine(last + timedelta(weeks=20), datetime.min.time())
        )
    )
    record_facts(case)
    case.refresh_from_db()
    assert case.weeks_after_last_session == 20
    assert "after photo 20 weeks after" in case.disclosure()


# --- the staff form ---------------------------------------------------------------------


@pytest.fixture
def photographer(client):
    user = make_user(groups=["Photographers"])
    client.force_login(user)
    return user


def form_data(consent, treatment="rf-microneedling", sessions=None, **overrides) -> dict:
    data = {
        "consent": consent.pk,
        "treatment": Treatment.objects.get(slug=treatment).pk,
        "concerns": [Concern.objects.get(slug="acne-scars").pk],
        "body_area": "face",
        "fitzpatrick": "3",
        "skin_type": "normal",
        "weeks_after_entered": "10",
        "zone_depths": "",
        "location": make_location().pk,
        "practitioner": make_practitioner().pk,
        "device": "",
        "aftercare_notes": "",
        "side_effects_notes": "",
        "testimonial": "",
    }
    if sessions is None:
        sessions = [
            (weeks_ago(18), "RF system", [("forehead", "1.5", 20, 2), ("cheeks", "1.0", 30, 2)]),
            (weeks_ago(14), "RF system", [("forehead", "1.5", 22, 2), ("nose", "2.0", 25, 2)]),
            (weeks_ago(10), "RF system", [("around_mouth", "0.5", 15, 1)]),
        ]
    data |= sessions_form_data(sessions)
    data.update(overrides)
    return data


def test_staff_enter_sessions_by_zone_and_the_facts_follow(client, photographer):
    consent = make_consent()
    response = client.post(f"/staff/cases/new/{consent.patient.pk}/", form_data(consent))
    assert response.status_code == 302, response.content.decode()[:3000]
    case = Case.objects.get()
    assert (case.session_count, case.session_interval_weeks) == (3, 4)
    assert case.needle_depth_mm == Decimal("2.00")
    assert case.weeks_after_last_session == 10
    assert case.last_session_on == weeks_ago(10)
    zones = [(z.zone, z.rf_energy) for s in case.sessions.all() for z in s.zones.all()]
    assert ("nose", 25) in zones and len(zones) == 5
    # The form shows them again, each in its own row.
    html = client.get(f"/staff/cases/{case.pk}/edit/").content.decode()
    assert 'name="sessions-2-zones-0-needle_depth_mm" value="0.50"' in html
    assert 'name="sessions-TOTAL_FORMS" value="4"' in html  # one more, blank


def test_editing_replaces_the_records_and_a_blank_session_is_none(client, photographer):
    consent = make_consent()
    client.post(f"/staff/cases/new/{consent.patient.pk}/", form_data(consent))
    case = Case.objects.get()
    data = form_data(
        consent,
        sessions=[
            (weeks_ago(12), "", [("cheeks", "1.25", 30, 2)]),
            (weeks_ago(6), "", [("cheeks", "1.25", 32, 2)]),
        ],
    )
    # The blank fourth session the page offered, posted as it stands.
    data |= {
        "sessions-TOTAL_FORMS": "3",
        "sessions-2-performed_on": "",
        "sessions-2-device": "",
        "sessions-2-zones-TOTAL_FORMS": "1",
        "sessions-2-zones-INITIAL_FORMS": "0",
        "sessions-2-zones-0-zone": "",
        "sessions-2-zones-0-needle_depth_mm": "",
    }
    response = client.post(f"/staff/cases/{case.pk}/edit/", data)
    assert response.status_code == 302, response.content.decode()[:3000]
    case.refresh_from_db()
    assert (case.session_count, case.session_interval_weeks) == (2, 6)
    assert case.needle_depth_mm == Decimal("1.25")
    assert case.sessions.count() == 2


BAD_SESSIONS = {
    "a session in the future": (
        [(date.today() + timedelta(days=3), "", [("cheeks", "1.0", 30, 2)])],
        "A session cannot be in the future.",
    ),
    "too deep": (
        [(weeks_ago(10), "", [("cheeks", "4.5", 30, 2)])],
        "Needle depth must be at most 4.0 mm.",
    ),
    "too shallow": (
        [(weeks_ago(10), "", [("cheeks", "0.05", 30, 2)])],
        "Needle depth must be at least 0.1 mm.",
    ),
    "two sessions on one day": (
        [
            (weeks_ago(10), "", [("cheeks", "1.0", 30, 2)]),
            (weeks_ago(10), "", [("nose", "1.0", 30, 2)]),
        ],
        "Two sessions on the same day",
    ),
    "one zone twice": (
        [(weeks_ago(10), "", [("cheeks", "1.0", 30, 2), ("cheeks", "1.5", 30, 2)])],
        "Each zone once per session",
    ),
    "no zone": ([(weeks_ago(10), "", [])], "Record at least one zone with its needle depth."),
    "no session": ([], "Record at least one session."),
}


@pytest.mark.parametrize("name", BAD_SESSIONS)
def test_bad_sessions_get_a_clear_message_and_nothing_is_saved(client, photographer, name):
    sessions, message = BAD_SESSIONS[name]
    consent = make_consent()
    response = client.post(
        f"/staff/cases/new/{consent.patient.pk}/", form_data(consent, sessions=sessions)
    )
    assert response.status_code == 200
    assert message in response.content.decode()
    assert "Some answers need a fix" in response.content.decode()
    assert not Case.objects.exists()


@pytest.mark.parametrize(
    "tamper",
    [
        {"sessions-TOTAL_FORMS": None, "sessions-INITIAL_FORMS": None},
        {"sessions-TOTAL_FORMS": "x"},
        {"sessions-TOTAL_FORMS": "100000"},
        {"sessions-0-zones-TOTAL_FORMS": None},
        {"sessions-0-performed_on": "31/02/2026"},
        {"sessions-0-zones-0-zone": "elbow"},
        {"sessions-0-zones-0-rf_energy": "-3"},
    ],
)
def test_a_tampered_sessions_form_is_a_clear_refusal_never_a_500(client, photographer, tamper):
    consent = make_consent()
    data = form_data(consent)
    for key, value in tamper.items():
        if value is None:
            data.pop(key)
        else:
            data[key] = value
    response = client.post(f"/staff/cases/new/{consent.patient.pk}/", data)
    assert response.status_code == 200
    assert "Some answers need a fix" in response.content.decode()
    assert not Case.objects.exists()


def test_rf_settings_are_refused_for_plain_microneedling(client, photographer):
    consent = make_consent()
    response = client.post(
        f"/staff/cases/new/{consent.patient.pk}/", form_data(consent, treatment="microneedling")
    )
    assert response.status_code == 200
    assert "Only RF microneedling records this." in response.content.decode()
    assert not Case.objects.exists()
    plain = [(weeks_ago(10), "Pen", [("cheeks", "1.0", None, None)])]
    response = client.post(
        f"/staff/cases/new/{consent.patient.pk}/",
        form_data(consent, treatment="microneedling", sessions=plain),
    )
    assert response.status_code == 302


def test_weeks_after_are_needed_only_without_a_dated_after_photo(client, photographer):
    consent = make_consent()
    response = client.post(
        f"/staff/cases/new/{consent.patient.pk}/", form_data(consent, weeks_after_entered="")
    )
    assert "the after photo has no capture date" in response.content.decode()
    assert not Case.objects.exists()


def test_a_session_after_the_after_photo_is_refused(client, photographer):
    consent = make_consent()
    client.post(f"/staff/cases/new/{consent.patient.pk}/", form_data(consent))
    case = Case.objects.get()
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9003] = weeks_ago(2).strftime("%Y:%m:%d 10:00:00")
    buf = io.BytesIO()
    Image.open(io.BytesIO(skin_jpeg(1, 3, "after", (600, 400)))).save(buf, "JPEG", exif=exif)
    buf.seek(0)
    buf.name = "after.jpg"
    response = client.post(
        f"/staff/cases/{case.pk}/photos/", {"file": buf, "role": "after", "view": "front"}
    )
    assert response.status_code == 201, response.content
    case.refresh_from_db()
    assert case.weeks_after_last_session == 8  # from the photo's date, not the 10 entered
    late = [(weeks_ago(1), "", [("cheeks", "1.0", 30, 2)])]
    response = client.post(f"/staff/cases/{case.pk}/edit/", form_data(consent, sessions=late))
    assert response.status_code == 200
    assert "a session after it cannot be part of this result" in response.content.decode()
    assert case.sessions.count() == 3


def test_sessions_of_a_published_case_cannot_be_edited(client):
    case = make_public_case()
    client.force_login(make_user(groups=["Photographers", "Reviewers"]))
    before = list(case.sessions.values_list("performed_on", flat=True))
    response = client.post(
        f"/staff/cases/{case.pk}/edit/",
        form_data(case.consent, treatment="microneedling", sessions=[]),
    )
    assert response.status_code == 403
    assert list(case.sessions.values_list("performed_on", flat=True)) == before


# --- what the public sees ----------------------------------------------------------------


def test_the_case_page_and_the_api_show_the_protocol_in_weeks_without_dates(client):
    case = make_public_case(session_count=3, session_interval_weeks=6, weeks_after_last_session=8)
    html = client.get(case.get_absolute_url()).content.decode()
    assert "Session 2 · week 6" in html and "Session 3 · week 12" in html
    assert "After photo: week 20, 8 weeks after the last session." in html
    api = client.get(f"/api/cases/{case.public_id}/").json()
    assert [s["week"] for s in api["sessions"]] == [0, 6, 12]
    assert api["sessions"][0]["zones"] == [
        {
            "zone": "whole_area",
            "name": "Whole treated area",
            "needle_depth_mm": "1.50",
            "rf_energy": None,
            "rf_passes": None,
        }
    ]
    for day in case.sessions.values_list("performed_on", flat=True):
        for text in (day.isoformat(), day.strftime("%d %b %Y"), day.strftime("%-d %b %Y")):
            assert text not in html
            assert text not in json.dumps(api)
    spanish = client.get("/es" + case.get_absolute_url()).content.decode()
    assert "Sesión 2 · semana 6" in spanish and "Toda la zona tratada" in spanish
    assert "Foto de después: semana 20, 8 semanas después de la última sesión." in spanish


def test_the_rf_columns_show_only_for_rf_microneedling(client):
    plain = make_public_case()
    assert "RF energy level" not in client.get(plain.get_absolute_url()).content.decode()
    rf = make_public_case(treatment=Treatment.objects.get(slug="rf-microneedling"))
    assert "RF energy level" in client.get(rf.get_absolute_url()).content.decode()


def test_the_demo_records_rf_sessions_zone_by_zone(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        call_command("seed_demo", count=8, stdout=open("/dev/null", "w"))
    rf = Case.objects.filter(treatment__slug="rf-microneedling", body_area="face").first()
    assert rf is not None
    first = rf.sessions.first()
    depths = {z.zone: (str(z.needle_depth_mm), z.rf_passes) for z in first.zones.all()}
    assert depths["forehead"] == ("1.50", 2)
    assert depths["cheeks"] == ("1.00", 2)
    assert depths["nose"] == ("2.00", 2)
    assert depths["around_mouth"] == ("0.50", 1)
    assert rf.needle_depth_mm == Decimal("2.00")
    assert all(z.rf_energy for s in rf.sessions.all() for z in s.zones.all())


def test_an_imported_case_dates_its_sessions_back_from_the_after_photo(tmp_path):
    from gallery.models import sessions_from_facts

    case = make_public_case(sessions=False)
    taken = timezone.make_aware(datetime(2026, 6, 1, 10, 0))
    make_photo_row(case, "after", "close_up", taken_at=taken)
    sessions_from_facts(
        case,
        needle_depth_mm=Decimal("2.25"),
        session_count=4,
        session_interval_weeks=5,
        weeks_after_last_session=9,
    )
    case.refresh_from_db()
    assert case.last_session_on == date(2026, 6, 1) - timedelta(weeks=9)
    assert (case.session_count, case.session_interval_weeks, case.weeks_after_last_session) == (
        4,
        5,
        9,
    )
    assert case.needle_depth_mm == Decimal("2.25")


def test_a_huge_form_count_builds_no_more_forms_than_a_case_may_hold():
    from gallery.forms import SessionEntries

    data = {
        "sessions-TOTAL_FORMS": "100000",
        "sessions-INITIAL_FORMS": "0",
        **{f"sessions-{n}-zones-TOTAL_FORMS": "100000" for n in range(40)},
        **{f"sessions-{n}-zones-INITIAL_FORMS": "0" for n in range(40)},
    }
    entries = SessionEntries(data)
    assert len(entries.sessions.forms) == 30
    assert max(len(zones.forms) for zones in entries.zones) == len(SessionZone.Zone.choices)
