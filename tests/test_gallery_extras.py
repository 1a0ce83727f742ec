"""OpenAPI, the embed page, the coverage report, SEO tags, the slider's size."""

import json
from pathlib import Path

import pytest
from django.conf import settings

from tests.conftest import make_listed_case, make_public_case, make_user

pytestmark = pytest.mark.django_db


def rf():
    from gallery.models import Treatment

    return Treatment.objects.get(slug="rf-microneedling")


def test_openapi_describes_the_api_and_matches_a_real_answer(client):
    case = make_public_case()
    doc = client.get("/api/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    listing = doc["paths"]["/api/cases/"]["get"]
    names = {p["name"] for p in listing["parameters"]}
    assert names == {
        "treatment",
        "concern",
        "area",
        "fitzpatrick",
        "skin_type",
        "location",
        "practitioner",
        "depth_min",
        "depth_max",
        "sessions_min",
        "sessions_max",
        "sort",
        "page",
    }
    schema = listing["responses"]["200"]["content"]["application/json"]["schema"]
    answer = client.get("/api/cases/").json()
    assert set(schema["required"]) <= set(answer)
    case_schema = schema["properties"]["results"]["items"]
    assert set(case_schema["required"]) <= set(answer["results"][0])
    assert set(answer["results"][0]) <= set(case_schema["properties"])
    assert answer["results"][0]["id"] == case.public_id


def test_embed_page_may_be_framed_and_opens_cases_in_the_top_window(client):
    case = make_listed_case(fitzpatrick=4)
    other = make_listed_case(fitzpatrick=2)
    response = client.get("/embed/?fitzpatrick=4")
    assert response.status_code == 200
    assert "X-Frame-Options" not in response
    html = response.content.decode()
    assert case.get_absolute_url() in html and other.get_absolute_url() not in html
    assert '<base target="_top">' in html
    assert client.get("/gallery/")["X-Frame-Options"] == "DENY"


def test_coverage_report_shows_the_gaps(client):
    make_listed_case(fitzpatrick=1)
    make_listed_case(fitzpatrick=1, treatment=rf())
    assert client.get("/staff/coverage/").status_code == 302
    client.force_login(make_user(groups=["Photographers"]))
    assert client.get("/staff/coverage/").status_code == 403
    client.force_login(make_user(groups=["Reviewers"]))
    html = client.get("/staff/coverage/").content.decode()
    assert "10 gaps" in html
    assert html.count('class="zero"') == 10


def test_case_page_has_canonical_open_graph_and_a_description(client):
    case = make_public_case()
    html = client.get(case.get_absolute_url()).content.decode()
    assert f'<link rel="canonical" href="http://testserver{case.get_absolute_url()}">' in html
    from django.core.files.storage import storages

    public_root = storages["public"].url("r/")
    if public_root.startswith("/"):
        public_root = "http://testserver" + public_root
    assert f'<meta property="og:image" content="{public_root}' in html
    assert f'<meta name="description" content="{case.disclosure()}">' in html


def test_sensitive_cases_are_blurred_and_never_shared_as_an_image(client):
    case = make_public_case(sensitive=True)
    html = client.get(case.get_absolute_url()).content.decode()
    from django.core.files.storage import storages

    head = html.split("</head>")[0]
    assert storages["public"].url("r/") not in head  # the clinic's own picture instead
    assert "gallery/share" in head
    assert 'class="comparison sensitive"' in html and "Show the photos" in html
    assert '<article class="card sensitive">' in client.get("/gallery/").content.decode()


def test_treatment_page_carries_faq_structured_data(client):
    html = client.get("/treatments/rf-microneedling/").content.decode()
    data = json.loads(html.split('<script type="application/ld+json">')[1].split("</script>")[0])
    assert data["@type"] == "FAQPage"
    questions = [q["name"] for q in data["mainEntity"]]
    assert "Does it hurt?" in questions and any("radiofrequency" in q for q in questions)


def test_the_slider_script_is_under_ten_kilobytes():
    assert Path(settings.BASE_DIR, "static/gallery/compare.js").stat().st_size <= 10 * 1024
