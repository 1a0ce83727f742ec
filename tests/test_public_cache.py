"""Anonymous public pages are cached, and every change to what is public invalidates them."""

from datetime import timedelta

import pytest
from django.utils import timezone

from consent.models import Consent
from gallery.models import Case
from gallery.publication import sync_public_files
from tests.conftest import make_public_case

pytestmark = pytest.mark.django_db

URLS = ["/", "/gallery/", "/api/cases/", "/sitemap.xml", "/treatments/microneedling/"]


def test_second_anonymous_request_is_served_from_the_cache(client, django_assert_num_queries):
    case = make_public_case()
    for url in [*URLS, case.get_absolute_url()]:
        first = client.get(url)
        assert first.status_code == 200 and "X-Cache" not in first
        with django_assert_num_queries(0):
            second = client.get(url)
        assert second["X-Cache"] == "hit" and second.content == first.content


def test_unpublishing_invalidates_every_cached_page(client):
    case = make_public_case()
    for url in [*URLS, case.get_absolute_url()]:
        client.get(url)
    Case.objects.filter(pk=case.pk).update(status=Case.Status.ARCHIVED)
    sync_public_files(case.pk)
    assert client.get(case.get_absolute_url()).status_code == 404
    for url in URLS:
        assert case.public_id not in client.get(url).content.decode(), url


def test_withdrawal_invalidates_every_cached_page(client, django_capture_on_commit_callbacks):
    case = make_public_case()
    for url in [*URLS, case.get_absolute_url()]:
        client.get(url)
    with django_capture_on_commit_callbacks(execute=True):
        case.consent.withdraw(channel=Consent.Channel.STAFF)
    assert client.get(case.get_absolute_url()).status_code == 404
    for url in URLS:
        assert case.public_id not in client.get(url).content.decode(), url


def test_a_cached_page_never_outlives_the_consent_expiry(client):
    case = make_public_case()
    soon = timezone.now() + timedelta(seconds=2)
    Consent.objects.filter(pk=case.consent_id).update(expires_at=soon)
    sync_public_files(case.pk)  # a new generation that knows the next expiry
    assert client.get(case.get_absolute_url()).status_code == 200
    assert client.get(case.get_absolute_url())["X-Cache"] == "hit"
    # Move past the expiry without any event: the very next request must hide the case.
    from unittest import mock

    with mock.patch("django.utils.timezone.now", return_value=soon + timedelta(seconds=1)):
        assert client.get(case.get_absolute_url()).status_code == 404
        assert case.public_id not in client.get("/gallery/").content.decode()


def test_unknown_parameters_neither_split_nor_bypass_the_cache(client):
    make_public_case()
    client.get("/gallery/?fitzpatrick=3")
    for url in [
        "/gallery/?fitzpatrick=3&utm_source=x",
        "/gallery/?fbclid=1&fitzpatrick=3",
        "/gallery/?_=123&fitzpatrick=3",
    ]:
        assert client.get(url)["X-Cache"] == "hit", url
    assert "X-Cache" not in client.get("/gallery/?fitzpatrick=4")


def test_html_and_json_are_compressed(client):
    make_public_case()
    for url in ["/gallery/", "/api/cases/"]:
        response = client.get(url, headers={"Accept-Encoding": "gzip"})
        assert response["Content-Encoding"] == "gzip", url
