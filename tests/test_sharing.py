"""A shared link shows a picture and a summary; each treatment answers its own questions;
structured data only where it describes the page."""

import json
import re

import pytest
from django.contrib.staticfiles import finders

from gallery.models import Treatment
from tests.conftest import make_public_case

pytestmark = pytest.mark.django_db


def meta(html: str, key: str) -> str | None:
    found = re.search(rf'<meta (?:property|name)="{re.escape(key)}" content="([^"]*)"', html)
    return found.group(1) if found else None


def test_every_public_page_has_a_large_share_image_with_its_size_and_alt(client):
    case = make_public_case()
    after = case.photos.get(role="after")
    largest = after.public_sources()["jpeg"][-1]["url"]
    for url in ("/", "/gallery/", case.get_absolute_url(), "/treatments/microneedling/"):
        html = client.get(url).content.decode()
        image = meta(html, "og:image")
        assert image and image.startswith("http"), url
        assert image.endswith(largest), url  # the public case's rendition (local or S3)
        assert int(meta(html, "og:image:width")) > 0
        assert int(meta(html, "og:image:height")) > 0
        assert meta(html, "og:image:alt"), url
        assert meta(html, "twitter:card") == "summary_large_image"


def test_with_no_case_to_show_the_clinic_image_is_shared(client):
    make_public_case(sensitive=True)  # blurred until asked: never a share picture
    html = client.get("/").content.decode()
    assert meta(html, "og:image").endswith(".png")
    assert "gallery/share" in meta(html, "og:image")
    assert (meta(html, "og:image:width"), meta(html, "og:image:height")) == ("1200", "630")
    assert finders.find("gallery/share.png")


def test_each_treatment_has_its_own_questions():
    faqs = {t.slug: [item["q"] for item in t.faq] for t in Treatment.objects.all()}
    assert faqs["microneedling"] and faqs["rf-microneedling"]
    assert faqs["microneedling"] != faqs["rf-microneedling"]
    answers = [item["a"] for t in Treatment.objects.all() for item in t.faq]
    assert len(answers) == len(set(answers))


def test_faq_structured_data_is_on_treatment_pages_only_and_matches_what_they_show(client):
    case = make_public_case()
    html = client.get("/treatments/rf-microneedling/").content.decode()
    blocks = re.findall(r'<script type="application/ld\+json">(.*?)</script>', html, re.S)
    assert len(blocks) == 1
    data = json.loads(blocks[0])
    assert data["@type"] == "FAQPage"
    for question in data["mainEntity"]:
        assert question["name"] in html
    for url in ("/", "/gallery/", case.get_absolute_url()):
        assert "application/ld+json" not in client.get(url).content.decode()


def test_a_treatment_without_questions_has_no_faq_structured_data(client):
    Treatment.objects.filter(slug="microneedling").update(faq=[])
    html = client.get("/treatments/microneedling/").content.decode()
    assert "application/ld+json" not in html


def test_the_embed_links_to_the_whole_list_under_the_same_filters(client):
    make_public_case(fitzpatrick=4)
    html = client.get("/embed/?fitzpatrick=4&treatment=microneedling&utm_source=x").content
    link = re.search(r'<a href="([^"]+)">All 1 case at', html.decode()).group(1)
    assert link == "http://testserver/gallery/?fitzpatrick=4&amp;treatment=microneedling"
