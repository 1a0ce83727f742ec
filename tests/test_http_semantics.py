"""HTTP as clients expect it on the public site: HEAD wherever GET is allowed, ETags and
304 answers that follow what is public, no gzip over photos, a charset on text and
Cache-Control on the cached pages."""

import pytest

from gallery.cache import BROWSER_TTL, PAGE_TTL
from gallery.models import Case
from gallery.publication import sync_public_files
from tests.conftest import make_public_case

pytestmark = pytest.mark.django_db

COMPARED = ("Content-Type", "Content-Length", "ETag", "Cache-Control", "Last-Modified")


def public_urls(case: Case) -> list[str]:
    return [
        "/",
        "/gallery/",
        f"/gallery/?fitzpatrick={case.fitzpatrick}",
        case.get_absolute_url(),
        f"/treatments/{case.treatment.slug}/",
        f"/practitioners/{case.practitioner.slug}/",
        f"/locations/{case.location.slug}/",
        f"/gallery/?location={case.location.slug}&practitioner={case.practitioner.slug}",
        "/api/cases/",
        f"/api/cases/{case.public_id}/",
        "/api/openapi.json",
        "/embed/",
        "/sitemap.xml",
        "/robots.txt",
    ]


def image_urls(case: Case) -> list[str]:
    photo = case.photos.exclude(public_key="").first()
    return [sources[0]["url"] for sources in photo.public_sources().values()]


def body(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


@pytest.fixture
def case(local_storage):
    return make_public_case()


def test_head_answers_like_get_without_a_body(client, case):
    for url in [*public_urls(case), "/healthz", *image_urls(case)]:
        get = client.get(url)
        head = client.head(url)
        assert get.status_code == head.status_code == 200, url
        assert body(get), url
        assert body(head) == b"", url
        for name in COMPARED:
            assert get.get(name) == head.get(name), (url, name)


def test_head_is_answered_from_the_page_cache_and_never_stored(client, case):
    url = case.get_absolute_url()
    assert "X-Cache" not in client.head(url)  # a HEAD miss stores nothing...
    get = client.get(url)
    assert "X-Cache" not in get and get.content  # ...so the GET still renders the page
    assert client.head(url)["X-Cache"] == "hit"
    assert client.get(url).content == get.content


def test_a_matching_etag_gets_304_without_a_body(client, case):
    for url in [*public_urls(case), *image_urls(case)]:
        etag = client.get(url)["ETag"]
        for method in (client.get, client.head):
            response = method(url, headers={"If-None-Match": etag})
            assert response.status_code == 304, url
            assert body(response) == b"", url
            assert response["ETag"] == etag, url
        assert client.get(url, headers={"If-None-Match": '"other"'}).status_code == 200, url


def test_the_cached_304_renders_nothing(client, case, django_assert_num_queries):
    url = "/gallery/"
    etag = client.get(url)["ETag"]
    with django_assert_num_queries(0):
        assert client.get(url, headers={"If-None-Match": etag}).status_code == 304


def test_a_compressed_page_keeps_its_etag_valid(client, case):
    gzip = {"Accept-Encoding": "gzip"}
    response = client.get("/gallery/", headers=gzip)
    assert response["Content-Encoding"] == "gzip"
    again = client.get("/gallery/", headers={**gzip, "If-None-Match": response["ETag"]})
    assert again.status_code == 304


def test_no_304_once_the_case_is_no_longer_public(client, case):
    list_etag = client.get("/gallery/")["ETag"]
    api_etag = client.get("/api/cases/")["ETag"]
    case_etag = client.get(case.get_absolute_url())["ETag"]
    Case.objects.filter(pk=case.pk).update(status=Case.Status.ARCHIVED)
    sync_public_files(case.pk)
    listed = client.get("/gallery/", headers={"If-None-Match": list_etag})
    assert listed.status_code == 200
    assert case.public_id not in listed.content.decode()
    assert listed["ETag"] != list_etag
    api = client.get("/api/cases/", headers={"If-None-Match": api_etag})
    assert api.status_code == 200 and api.json()["count"] == 0
    gone = client.get(case.get_absolute_url(), headers={"If-None-Match": case_etag})
    assert gone.status_code == 404
    assert "ETag" not in gone


def test_a_withdrawn_photo_gets_no_304(client, case):
    url = image_urls(case)[0]
    etag = client.get(url)["ETag"]
    Case.objects.filter(pk=case.pk).update(status=Case.Status.ARCHIVED)
    sync_public_files(case.pk)
    assert client.get(url, headers={"If-None-Match": etag}).status_code == 404


def test_photos_are_not_gzipped_text_is(client, case):
    for url in image_urls(case):
        response = client.get(url, headers={"Accept-Encoding": "gzip"})
        assert response.status_code == 200, url
        assert response["Content-Type"].startswith("image/"), url
        assert "Content-Encoding" not in response, url
    for url in ["/gallery/", "/api/cases/", "/sitemap.xml"]:
        assert client.get(url, headers={"Accept-Encoding": "gzip"})["Content-Encoding"] == "gzip"


def test_text_responses_carry_a_charset(client, case):
    for url in ["/robots.txt", "/healthz"]:
        assert client.get(url)["Content-Type"] == "text/plain; charset=utf-8", url


def test_public_pages_may_be_kept_briefly_private_pages_never(client, case, admin_client):
    assert BROWSER_TTL <= PAGE_TTL
    for url in public_urls(case):
        for response in (client.get(url), client.get(url)):  # a miss, then a hit
            assert response["Cache-Control"] == f"public, max-age={BROWSER_TTL}", url
    assert "public" not in client.get("/gallery/nothing-here/").get("Cache-Control", "")
    for url in ["/staff/", "/admin/"]:
        assert admin_client.get(url)["Cache-Control"] == "no-store, private", url
    # A signed-in visitor's public page is never marked for shared caches.
    assert "public" not in admin_client.get("/gallery/").get("Cache-Control", "")


def test_other_methods_still_405(client, case):
    for url in public_urls(case):
        response = client.post(url)
        assert response.status_code in (403, 405), url
        if response.status_code == 405:
            assert response["Allow"] == "GET, HEAD", url
