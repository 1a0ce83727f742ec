"""The clinic's colours: unreadable choices are refused at start-up, readable ones reach
every page through one inline style the CSP allows by its hash."""

import re

import pytest
from django.core.checks.registry import registry

from clinic.branding import brand_css, contrast_ratio, csp_hash
from clinic.checks import brand_colours_are_readable


def test_contrast_ratio_follows_wcag():
    assert contrast_ratio("#000000", "#ffffff") == pytest.approx(21)
    assert contrast_ratio("#ffffff", "#ffffff") == pytest.approx(1)
    assert contrast_ratio("#767676", "#fff") == pytest.approx(4.54, abs=0.01)


def test_the_default_colours_pass_the_check():
    assert brand_colours_are_readable() == []


def test_a_pale_brand_colour_is_refused_at_start_up(settings):
    settings.CLINIC_BRAND_COLOUR = "#7fd3e0"  # light turquoise: white text unreadable
    errors = brand_colours_are_readable()
    assert [e.id for e in errors] == ["clinic.E002"]
    assert "CLINIC_BRAND_COLOUR" in errors[0].msg and "4.5:1" in errors[0].msg
    # Registered, so runserver, migrate and `manage.py check --deploy` stop on it.
    assert brand_colours_are_readable in registry.get_checks()


def test_a_pale_accent_and_a_colour_that_is_not_one_are_refused(settings):
    settings.CLINIC_ACCENT_COLOUR = "#f0c040"
    settings.CLINIC_BRAND_COLOUR = "teal;}body{display:none"
    ids = sorted(e.id for e in brand_colours_are_readable())
    assert ids == ["clinic.E001", "clinic.E002"]


def test_only_a_hex_colour_reaches_the_stylesheet():
    css = brand_css("red}body{display:none", "#ABC")
    assert "display" not in css
    assert "--brand:#0b5d66" in css and "--accent:#aabbcc" in css


@pytest.mark.django_db
def test_every_public_page_carries_the_brand_style_its_csp_allows(client):
    for url in ("/", "/treatments/microneedling/", "/embed/", "/no-such-page/"):
        response = client.get(url)
        style = re.search(r"<style>(.*?)</style>", response.content.decode()).group(1)
        assert "--brand:" in style
        assert csp_hash(style) in response["Content-Security-Policy"], url
