"""Collect every public URL of a case, withdraw its consent through a second client over
HTTP, and check that on the next request every one of them answers 404 and the case is
counted nowhere. The consent row and its withdrawal event remain."""

import http.cookiejar
import json
import re
import urllib.error
import urllib.parse
import urllib.request
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from consent.models import ConsentEvent
from tests.conftest import make_public_case

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("reference_data")]


class Browser:
    """A real HTTP client with its own cookies: another person at another machine."""

    def __init__(self, base: str):
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def get(self, url: str) -> tuple[int, bytes]:
        try:
            with self.opener.open(urllib.parse.urljoin(self.base, url), timeout=20) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def post(self, url: str, data: dict) -> tuple[int, bytes]:
        request = urllib.request.Request(
            urllib.parse.urljoin(self.base, url),
            data=urllib.parse.urlencode(data).encode(),
            headers={"Referer": urllib.parse.urljoin(self.base, url)},
        )
        try:
            with self.opener.open(request, timeout=20) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()


def public_urls(browser: Browser, case) -> list[str]:
    status, body = browser.get(f"/api/cases/{case.public_id}/")
    assert status == 200
    data = json.loads(body)
    images = set()
    for pair in data["pairs"]:
        for side in ("before", "after"):
            images.add(pair[side]["src"])
            for srcset in pair[side]["srcset"].values():
                images.update(part.split(" ")[0] for part in srcset.split(", "))
    status, sitemap = browser.get("/sitemap.xml")
    entry = next(
        u for u in re.findall(r"<loc>([^<]+)</loc>", sitemap.decode()) if case.public_id in u
    )
    return [case.get_absolute_url(), f"/api/cases/{case.public_id}/", entry, *sorted(images)]


def counted_anywhere(browser: Browser, case) -> list[str]:
    """The places that would still count or list the case."""
    found = []
    for url in [
        "/",
        "/gallery/",
        f"/gallery/?fitzpatrick={case.fitzpatrick}",
        "/treatments/microneedling/",
        "/api/cases/",
        "/sitemap.xml",
    ]:
        status, body = browser.get(url)
        assert status == 200, url
        if case.public_id.encode() in body:
            found.append(url)
    api = json.loads(browser.get("/api/cases/")[1])
    if (
        api["count"]
        or any(api["facets"]["fitzpatrick"].values())
        or any(api["facets"]["treatment"].values())
    ):
        found.append("API counts")
    return found


def test_withdrawal_by_a_second_client_empties_every_public_surface(live_server):
    case = make_public_case(fitzpatrick=5)
    consent = case.consent
    token = consent.new_access_token()
    consent.save()
    visitor, patient = Browser(live_server.url), Browser(live_server.url)

    urls = public_urls(visitor, case)
    assert len(urls) >= 3 + 2 * 3 * 2  # pages + before/after × 3 formats × ≥2 widths
    assert all(visitor.get(u)[0] == 200 for u in urls)  # and now they are cached too
    assert counted_anywhere(visitor, case)

    status, page = patient.get(f"/consent/{token}/withdraw/")
    csrf = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1).decode()
    status, body = patient.post(f"/consent/{token}/withdraw/", {"csrfmiddlewaretoken": csrf})
    assert status == 200 and b"Your consent is withdrawn" in body

    still = {u: visitor.get(u)[0] for u in urls}
    assert still == {u: 404 for u in urls}
    assert counted_anywhere(visitor, case) == []
    consent.refresh_from_db()
    assert consent.withdrawn_at is not None
    assert ConsentEvent.objects.filter(consent=consent, kind="withdrawn").exists()


def test_expiry_hides_pages_at_once_and_images_go_with_sync_publication(live_server):
    import time

    from tests.conftest import make_consent, make_patient

    patient = make_patient()
    ends = timezone.now() + timedelta(seconds=6)
    case = make_public_case(patient=patient, consent=make_consent(patient, expires_at=ends))
    visitor = Browser(live_server.url)
    urls = public_urls(visitor, case)
    pages, images = urls[:3], urls[3:]
    assert all(visitor.get(u)[0] == 200 for u in urls)  # cached from here on
    assert timezone.now() < ends, "the setup took too long to see the case before expiry"
    # Cross the boundary with nobody doing anything: the clock alone.
    time.sleep((ends - timezone.now()).total_seconds() + 0.2)
    assert {u: visitor.get(u)[0] for u in pages} == {u: 404 for u in pages}
    assert counted_anywhere(visitor, case) == []
    call_command("sync_publication", stdout=open("/dev/null", "w"))
    assert {u: visitor.get(u)[0] for u in images} == {u: 404 for u in images}
    assert ConsentEvent.objects.filter(consent_id=case.consent_id, kind="expired").exists()
