"""What a stranger writes into a URL, and what staff write into a public page, stays
where it was written: no script break-out, no foreign parameters in shared cached pages,
no 500 for a malformed media path."""

import json
import re
from urllib.parse import parse_qs, urlsplit

import pytest

from gallery import views
from gallery.models import Treatment
from tests.conftest import make_listed_case, make_public_case

pytestmark = pytest.mark.django_db

HOSTILE = '</script><meta http-equiv=refresh content="0;url=https://evil.example">'


def test_a_treatment_faq_cannot_break_out_of_its_structured_data(client):
    faq = [{"q": f"Is it safe?{HOSTILE}", "a": f"<!-- {HOSTILE} & more"}]
    Treatment.objects.filter(slug="microneedling").update(faq=faq)
    html = client.get("/treatments/microneedling/").content.decode()
    assert "</script><meta" not in html and "<!--" not in html
    block = re.search(r'<script type="application/ld\+json">(.*?)</script>', html, re.S)
    data = json.loads(block.group(1))
    assert data["mainEntity"][0]["name"] == faq[0]["q"]
    assert data["mainEntity"][0]["acceptedAnswer"]["text"] == faq[0]["a"]


@pytest.fixture
def two_pages(monkeypatch):
    monkeypatch.setattr(views, "PER_PAGE", 1)
    make_listed_case(fitzpatrick=4)
    make_listed_case(fitzpatrick=4)


def link_params(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


QUERY = "fitzpatrick=4&junk=1&utm_source=x&foo=%3Cbar%3E"


def test_the_list_pages_link_with_the_filters_only(client, two_pages):
    html = client.get(f"/gallery/?{QUERY}").content.decode()
    href = re.search(r'<a rel="next" href="([^"]+)"', html).group(1).replace("&amp;", "&")
    assert link_params(href) == {"fitzpatrick": ["4"], "page": ["2"]}
    html = client.get(f"/gallery/?{QUERY}&page=2").content.decode()
    href = re.search(r'<a rel="prev" href="([^"]+)"', html).group(1).replace("&amp;", "&")
    assert link_params(href) == {"fitzpatrick": ["4"], "page": ["1"]}
    assert "junk" not in html and "utm_source" not in html and "bar" not in html


def test_the_api_pages_link_with_the_filters_only(client, two_pages):
    first = client.get(f"/api/cases/?{QUERY}").json()
    assert link_params(first["next"]) == {"fitzpatrick": ["4"], "page": ["2"]}
    second = client.get(f"/api/cases/?{QUERY}&page=2").json()
    assert link_params(second["previous"]) == {"fitzpatrick": ["4"], "page": ["1"]}


@pytest.mark.parametrize(
    "path",
    [
        "r/abc%00def/480.jpg",
        "r/abc/480.jpg%00.png",
        "r/../../../etc/passwd",
        "r/%2e%2e/%2e%2e/x.jpg",
        "r\\..\\x.jpg",
        "r/abc%5c480.jpg",
        "r//480.jpg",
        "r/" + "a" * 5000 + ".jpg",
        "a/" * 3000 + "b.jpg",
        "r/nothing/480.jpg",
    ],
)
def test_a_malformed_or_missing_media_path_is_a_plain_404(client, path):
    assert client.get(f"/media/public/{path}").status_code == 404


@pytest.mark.usefixtures("local_storage")  # the app serves the public folder itself
def test_a_real_rendition_is_still_served(client):
    case = make_public_case()
    url = case.photos.first().public_sources()["jpeg"][0]["url"]
    response = client.get(url)
    assert response.status_code == 200 and response["Content-Type"].startswith("image/")
