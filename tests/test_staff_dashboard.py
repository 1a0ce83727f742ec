"""The dashboard shows each case's patient, thumbnail and next step in a bounded number of
queries; the case form is grouped, with help text tied to its field."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from gallery.forms import CaseForm
from gallery.models import Case
from tests.conftest import make_case, make_consent, make_photo_row, make_user

pytestmark = pytest.mark.django_db


def dashboard_queries(client) -> tuple[int, str]:
    with CaptureQueriesContext(connection) as queries:
        response = client.get("/staff/")
    assert response.status_code == 200
    return len(queries), response.content.decode()


def add_cases(user, n):
    for _ in range(n):
        make_case(status=Case.Status.DRAFT, created_by=user)
        make_case(status=Case.Status.REVIEW, created_by=user)
        make_case(created_by=user)


def test_dashboard_queries_do_not_grow_with_the_cases(client):
    admin = make_user(is_superuser=True, is_staff=True)
    client.force_login(admin)
    add_cases(admin, 1)
    few, _ = dashboard_queries(client)
    add_cases(admin, 6)
    many, html = dashboard_queries(client)
    assert many == few
    assert html.count('class="case-card"') == 7 + 7 + 7


def test_dashboard_card_shows_patient_thumbnail_and_next_action(client):
    photographer = make_user(groups=["Photographers"])
    client.force_login(photographer)
    ready = make_case(status=Case.Status.DRAFT, created_by=photographer)
    half = make_case(status=Case.Status.DRAFT, created_by=photographer, photos=False)
    make_photo_row(half, "before")
    sent_back = make_case(
        status=Case.Status.DRAFT, created_by=photographer, review_comment="Retake the after."
    )
    empty = make_case(status=Case.Status.DRAFT, created_by=photographer, photos=False)
    _, html = dashboard_queries(client)
    cards = {
        case: re.search(
            rf'<a href="/staff/cases/{case.pk}/">(.*?)</a>', html, flags=re.DOTALL
        ).group(1)
        for case in (ready, half, sent_back, empty)
    }
    assert ready.patient.reference in cards[ready]
    assert "Microneedling" in cards[ready]
    assert "Next: <strong>Submit for review</strong>" in cards[ready]
    previews = re.findall(r'src="(/staff/photos/\d+/preview/480\.jpeg)"', cards[ready])
    assert len(previews) == 2
    assert "/media/" not in html
    assert "Next: <strong>Add the after photo</strong>" in cards[half]
    assert "No after photo yet" in cards[half]
    assert "Next: <strong>Fix what the reviewer asked</strong>" in cards[sent_back]
    assert "Next: <strong>Add the before photo</strong>" in cards[empty]
    assert ready.public_id not in html


def test_reviewer_sees_review_and_publish(client):
    reviewer = make_user(groups=["Reviewers"])
    client.force_login(reviewer)
    case = make_case(status=Case.Status.REVIEW)
    _, html = dashboard_queries(client)
    card = re.search(rf'<a href="/staff/cases/{case.pk}/">(.*?)</a>', html, re.DOTALL).group(1)
    assert "Next: <strong>Review and publish</strong>" in card
    assert case.patient.reference in card


def test_case_form_sections_cover_every_field():
    named = [name for _, names in CaseForm.SECTIONS for name in names]
    assert sorted(named) == sorted(CaseForm.Meta.fields)
    assert len(named) == len(set(named))


def test_case_form_groups_and_help_text(client):
    photographer = make_user(groups=["Photographers"])
    client.force_login(photographer)
    consent = make_consent()
    html = client.get(f"/staff/cases/new/{consent.patient.pk}/").content.decode()
    assert "Select an option" not in html
    assert "---------" not in html
    for legend in ("Treatment", "Concerns", "Fitzpatrick skin type", "Skin type"):
        assert f"<legend>{legend}</legend>" in html
    assert re.search(r'<fieldset[^>]*role="radiogroup"[^>]*>\s*<legend>Fitzpatrick', html)
    # Help text sits under its label, and the field points to it.
    assert 'id="id_zone_depths_helptext"' in html
    assert re.search(r'<input[^>]*aria-describedby="id_zone_depths_helptext"', html)
    assert re.search(r'<input[^>]*aria-describedby="id_deidentified_helptext"', html)
    assert html.index(">Other notes on depth</label>") < html.index('id="id_zone_depths_helptext"')
    assert html.index('id="id_zone_depths_helptext"') < html.index('name="zone_depths"')
