"""Staff pages, the admin and patients' private links are never stored by a browser or
a cache: every one of them answers Cache-Control: no-store, private."""

import pytest
from django.urls import get_resolver

from tests.conftest import make_consent, make_listed_case, make_user
from tests.test_access_matrix import fill, walk, world  # noqa: F401 (world is a fixture)

pytestmark = pytest.mark.django_db


def assert_not_stored(response, path):
    directives = {d.strip() for d in response.get("Cache-Control", "").split(",")}
    assert {"no-store", "private"} <= directives, f"{path}: {response.get('Cache-Control')}"


def test_every_staff_and_admin_page_is_not_stored(client, world):  # noqa: F811
    client.force_login(make_user("root", is_staff=True, is_superuser=True))
    walked = 0
    for pattern, name, _ in walk(get_resolver()):
        path = fill(pattern, name, world)
        if path.startswith(("/staff/", "/admin/")) and name not in ("staff:logout", "admin:logout"):
            assert_not_stored(client.get(path), path)
            walked += 1
    assert walked > 40


@pytest.mark.parametrize("path", ["/staff/login/", "/admin/login/", "/staff/", "/consent/x/"])
def test_log_in_pages_and_redirects_to_them_are_not_stored(client, path):
    assert_not_stored(client.get(path), path)


def test_a_patients_private_link_is_not_stored(client):
    consent = make_consent()
    token = consent.new_access_token()
    consent.save()
    page = client.get(f"/consent/{token}/")
    assert page.status_code == 200
    assert_not_stored(page, "/consent/<token>/")
    assert_not_stored(client.get(f"/consent/{token}/withdraw/"), "/consent/<token>/withdraw/")


def test_public_pages_stay_cacheable(client):
    make_listed_case()
    assert "no-store" not in client.get("/gallery/").get("Cache-Control", "")
