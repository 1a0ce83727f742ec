"""On a tablet: a photographer adds a case with a JPEG and a HEIC (and one bad file),
sees the progress and the pair in the slider, submits; a reviewer approves; the case
appears in the public gallery."""

import io
import re
import time
from datetime import date, timedelta

import pillow_heif
import pytest
from PIL import Image
from playwright.sync_api import expect

from gallery.models import Case
from tests.browser import log_in
from tests.conftest import make_consent, make_patient, make_practitioner, make_user, skin_jpeg

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("reference_data"),
]


def test_photographer_to_reviewer_to_public_gallery(live_server, new_page, tmp_path):
    patient = make_patient()
    make_consent(patient)
    make_user("photographer", groups=["Photographers"])
    make_user("reviewer", groups=["Reviewers"])
    make_practitioner()
    before = tmp_path / "IMG_0001.JPG"
    before.write_bytes(skin_jpeg(21, 3, "before", (1600, 1200)))
    after = tmp_path / "IMG_0002.HEIC"
    heic = io.BytesIO()
    pillow_heif.from_pillow(Image.open(io.BytesIO(skin_jpeg(21, 3, "after", (1600, 1200))))).save(
        heic
    )
    after.write_bytes(heic.getvalue())
    bad = tmp_path / "notes.jpg"
    bad.write_bytes(b"<!DOCTYPE html><html>not a photo</html>")

    page = new_page()
    started = time.monotonic()
    log_in(page, live_server.url, "photographer")
    page.click("text=Add a case")
    page.click(f"text={patient.reference}")
    page.check("input[name=treatment] >> nth=0")
    page.check("input[name=concerns] >> nth=0")
    page.check("input[name=fitzpatrick][value='3']")
    page.check("input[name=skin_type][value=combination]")
    # Two sessions, the first on two zones, added with the page's own buttons.
    page.fill("#id_sessions-0-performed_on", str(date.today() - timedelta(weeks=20)))
    page.select_option("#id_sessions-0-zones-0-zone", "cheeks")
    page.fill("#id_sessions-0-zones-0-needle_depth_mm", "1.5")
    page.click(".session >> nth=0 >> [data-add-zone]")
    page.select_option("#id_sessions-0-zones-1-zone", "forehead")
    page.fill("#id_sessions-0-zones-1-needle_depth_mm", "0.75")
    page.click("[data-add-session]")
    page.fill("#id_sessions-1-performed_on", str(date.today() - timedelta(weeks=16)))
    page.select_option("#id_sessions-1-zones-0-zone", "cheeks")
    page.fill("#id_sessions-1-zones-0-needle_depth_mm", "1.5")
    page.fill("#id_weeks_after_entered", "12")
    page.select_option("#id_practitioner", label="Dr. Test (Demo Skin Clinic)")
    page.click("text=Create the case and add photos")
    page.wait_for_url(re.compile(r"/staff/cases/\d+/$"))

    page.set_input_files("#pick-files", [str(before), str(after), str(bad)])
    rows = page.locator(".upload-row")
    assert rows.count() == 3
    assert rows.nth(0).locator("select[name=role]").input_value() == "before"
    assert rows.nth(1).locator("select[name=role]").input_value() == "after"
    page.click("#upload-start")
    expect(page.locator(".upload-row.ok, .upload-row.error")).to_have_count(3, timeout=60000)
    assert rows.nth(0).locator(".upload-status").inner_text() == "Uploaded"
    assert rows.nth(1).locator(".upload-status").inner_text() == "Uploaded"
    assert rows.nth(0).locator("progress").get_attribute("value") == "100"
    assert (
        "This file is an HTML page named .jpg."
        in rows.nth(2).locator(".upload-status").inner_text()
    )
    page.reload()
    slider = page.get_by_role("slider").first
    slider.focus()
    page.keyboard.press("ArrowLeft")
    assert slider.get_attribute("aria-valuetext") == "49 percent before, 51 percent after"
    assert page.locator(".compare-frame img").count() == 2
    page.click("text=Submit for review")
    assert page.get_by_text("Sent for review.").is_visible()
    elapsed = time.monotonic() - started

    reviewer = new_page()
    log_in(reviewer, live_server.url, "reviewer")
    reviewer.click("#queue-h + ul a")
    reviewer.click("text=Approve and publish")
    assert reviewer.get_by_text("Approved and published").is_visible()

    visitor = new_page()
    case = Case.objects.get()
    assert (case.session_count, case.session_interval_weeks) == (2, 4)
    assert str(case.needle_depth_mm) == "1.50"
    assert sorted(z.zone for s in case.sessions.all() for z in s.zones.all()) == [
        "cheeks",
        "cheeks",
        "forehead",
    ]
    visitor.goto(f"{live_server.url}/gallery/")
    assert visitor.locator(f"a[href='{case.get_absolute_url()}']").count() >= 1
    visitor.goto(f"{live_server.url}{case.get_absolute_url()}")
    assert visitor.locator(".compare-frame img").count() == 2
    print(f"\nphotographer flow (log in, facts, 3 files, submit): {elapsed:.1f} s")
