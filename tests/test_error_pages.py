"""Branded error pages with debug off: a mistyped or withdrawn case link gives the 404 with
a way back into the gallery; a crash gives the 500 without touching the database."""

from importlib import import_module

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import path

from consent.models import Consent
from gallery.views import server_error
from tests.conftest import make_public_case

pytestmark = pytest.mark.django_db


def broken(request):
    raise RuntimeError("the view broke")


# The project's own patterns, spread (they hold i18n_patterns, which include() refuses).
urlpatterns = [path("broken/", broken), *import_module("clinic.urls").urlpatterns]
handler500 = "gallery.views.server_error"


def test_a_mistyped_case_link_shows_the_branded_404(client, settings):
    settings.DEBUG = False
    response = client.get("/gallery/NoSuchCase1/")
    assert response.status_code == 404
    html = response.content.decode()
    assert settings.CLINIC_NAME in html
    assert "This page isn't in the gallery" in html
    assert 'href="/gallery/"' in html
    assert '<meta name="robots" content="noindex">' in html


def test_a_withdrawn_case_link_shows_the_branded_404(
    client, settings, django_capture_on_commit_callbacks
):
    settings.DEBUG = False
    case = make_public_case()
    assert client.get(case.get_absolute_url()).status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        case.consent.withdraw(channel=Consent.Channel.PATIENT_PAGE)
    response = client.get(case.get_absolute_url())
    assert response.status_code == 404
    assert "no longer shown" in response.content.decode()


def test_a_crash_shows_the_branded_500(settings):
    settings.DEBUG = False
    settings.ROOT_URLCONF = __name__
    response = Client(raise_request_exception=False).get("/broken/")
    assert response.status_code == 500
    html = response.content.decode()
    assert settings.CLINIC_NAME in html
    assert "We couldn't show this page just now" in html
    assert "--brand:" in html


def test_the_500_page_needs_no_database(rf):
    with CaptureQueriesContext(connection) as queries:
        response = server_error(rf.get("/gallery/"))
    assert response.status_code == 500
    assert len(queries) == 0
    assert 'href="/gallery/"' in response.content.decode()
