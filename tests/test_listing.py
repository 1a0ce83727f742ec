"""Pages that pick their cases from the listing (gallery/listing.py) show only what the
rule allows, in the order they promise, even when the listing has gone wrong."""

from datetime import timedelta

import pytest
from django.utils import timezone

from gallery.models import Case, Treatment
from gallery.views import similar_cases
from tests.conftest import make_case, make_listed_case

pytestmark = pytest.mark.django_db


def wrongly_listed(**kw) -> Case:
    """A case the rule refuses, listed anyway (a listing changed behind the app's back)."""
    case = make_case(**kw)
    Case.objects.filter(pk=case.pk).update(listed_until=timezone.now() + timedelta(days=365))
    return case


def test_similar_cases_share_a_concern_first_then_nearest_skin_type():
    case = make_listed_case(fitzpatrick=3, concerns=("acne-scars",))
    near = make_listed_case(fitzpatrick=4, concerns=("acne-scars",))
    far = make_listed_case(fitzpatrick=6, concerns=("acne-scars", "pigmentation"))
    same_treatment = make_listed_case(fitzpatrick=3, concerns=("pigmentation",))
    other = make_listed_case(
        fitzpatrick=3,
        concerns=("pigmentation",),
        treatment=Treatment.objects.get(slug="rf-microneedling"),
    )
    draft = wrongly_listed(fitzpatrick=3, concerns=("acne-scars",), status="draft")
    similar = similar_cases(case)
    assert similar == [near, far, same_treatment]
    assert other not in similar and draft not in similar


def test_treatment_page_and_home_show_only_public_cases(client):
    shown = make_listed_case()
    hidden = wrongly_listed(status="archived", published_at=None)
    for url in ("/treatments/microneedling/", "/"):
        html = client.get(url).content.decode()
        assert shown.get_absolute_url() in html, url
        assert hidden.get_absolute_url() not in html, url


def test_a_large_sitemap_becomes_an_index_of_files(client, monkeypatch):
    import re

    from gallery.sitemaps import CasesSitemap

    monkeypatch.setattr(CasesSitemap, "limit", 4)  # two cases a file, each in two languages
    public = [make_listed_case() for _ in range(5)]
    hidden = wrongly_listed(status="draft", published_at=None)
    index = client.get("/sitemap.xml")
    assert index["Content-Type"] == "application/xml"
    files = re.findall(r"<sitemap><loc>([^<]+)</loc></sitemap>", index.content.decode())
    assert [f.removeprefix("http://testserver") for f in files] == [
        "/sitemap-pages.xml",
        "/sitemap-cases.xml",
        "/sitemap-cases.xml?p=2",
        "/sitemap-cases.xml?p=3",
    ]
    seen = []
    for url in files:
        body = client.get(url.replace("http://testserver", "")).content.decode()
        seen += re.findall(r"<loc>http://testserver/gallery/([A-Za-z0-9]{10})/</loc>", body)
        assert ("/treatments/microneedling/" in body) == url.endswith("pages.xml")
    # Every public case once, in some file; the draft nowhere (its row was listed).
    assert sorted(seen) == sorted(c.public_id for c in public)
    assert hidden.public_id not in seen
    assert client.get("/sitemap-cases.xml?p=4").status_code == 404
    assert client.get("/sitemap-cases.xml?p=x").status_code == 404
    assert client.get("/sitemap-other.xml").status_code == 404


def test_a_small_sitemap_is_one_file(client):
    case = make_listed_case()
    body = client.get("/sitemap.xml").content.decode()
    assert "<urlset" in body and case.public_id in body and "<sitemapindex" not in body
