"""Which cases bring consultations: counted without cookies, identifiers or a database
write on the request path, flushed in batches, shown to reviewers."""

import csv
import io
from datetime import timedelta
from unittest import mock

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from analytics.counters import flush, record, store
from analytics.models import DailyCaseCount, DailyFilterCount, FlushedMinute
from gallery.models import booking_url
from tests.conftest import (
    make_case,
    make_listed_case,
    make_location,
    make_practitioner,
    make_user,
)

pytestmark = pytest.mark.django_db

FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
BEACON = "application/x-www-form-urlencoded"


def beacon(client, body: str, agent: str = FIREFOX, **headers):
    return client.post("/a/", body, content_type=BEACON, headers={"User-Agent": agent, **headers})


def click(client, public_id: str, agent: str = FIREFOX):
    return client.get(f"/book/?case={public_id}", headers={"User-Agent": agent})


def later():
    """A moment when the current minute is over and may be flushed."""
    return timezone.now() + timedelta(minutes=2)


def counts(case) -> tuple[int, int, int]:
    row = DailyCaseCount.objects.get(public_id=case.public_id)
    return row.views, row.comparisons, row.bookings


def test_a_view_a_comparison_and_a_click_are_counted_for_the_case_and_the_day(client):
    case = make_listed_case(practitioner="Dr. Ada Lee", fitzpatrick=4, skin_type="oily")
    assert beacon(client, f"k=view&c={case.public_id}").status_code == 204
    assert beacon(client, f"k=compare&c={case.public_id}").status_code == 204
    assert click(client, case.public_id).status_code == 302
    assert DailyCaseCount.objects.count() == 0  # nothing written yet
    assert flush(later()) == {"minutes": 1, "events": 3}
    row = DailyCaseCount.objects.get()
    assert (row.views, row.comparisons, row.bookings) == (1, 1, 1)
    assert row.date == timezone.localdate()
    assert (row.treatment, row.fitzpatrick, row.skin_type, row.practitioner) == (
        "Microneedling",
        4,
        "oily",
        "Dr. Ada Lee",
    )
    assert row.case == case


def test_counting_writes_nothing_to_the_database_on_the_request_path(client):
    case = make_listed_case()
    with CaptureQueriesContext(connection) as queries:
        beacon(client, f"k=view&c={case.public_id}")
        beacon(client, f"k=compare&c={case.public_id}")
        beacon(client, "k=filter&q=fitzpatrick%3D4")
        click(client, case.public_id)
    writes = [
        q["sql"]
        for q in queries.captured_queries
        if q["sql"].lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE"))
    ]
    assert writes == []
    # One read each: is the case public (the filter beacon reads nothing).
    assert len(queries.captured_queries) == 3


def test_the_case_page_itself_costs_no_query_for_counting(client):
    case = make_listed_case()
    client.get(case.get_absolute_url())  # fills the page cache
    with CaptureQueriesContext(connection) as queries:
        response = client.get(case.get_absolute_url())
    assert response["X-Cache"] == "hit"
    assert len(queries.captured_queries) == 0


def test_bots_are_not_counted(client):
    case = make_listed_case()
    for agent in (
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 HeadlessChrome/131.0 Safari/537.36",
        "Mozilla/5.0 (Linux; Android 11) Chrome-Lighthouse",
        "curl/8.5.0",
        "",
    ):
        assert beacon(client, f"k=view&c={case.public_id}", agent=agent).status_code == 204
        assert click(client, case.public_id, agent=agent).status_code == 302
    assert flush(later())["events"] == 0
    assert not DailyCaseCount.objects.exists()


def test_the_filters_people_choose_are_counted_and_nothing_else(client):
    query = (
        "fitzpatrick=4&fitzpatrick=5&concern=acne-scars&depth_min=1.50&sort=depth&page=2"
        "&fitzpatrick=9&concern=nonsense&sessions_max=abc&utm_source=mail"
    )
    assert (
        beacon(client, "k=filter&q=" + query.replace("&", "%26").replace("=", "%3D")).status_code
        == 204
    )
    beacon(client, "k=filter&q=fitzpatrick%3D4")
    flush(later())
    rows = {(r.name, r.value): r.count for r in DailyFilterCount.objects.all()}
    # A list with an invalid choice among valid ones counts none of that filter's choices:
    # the same as the page, which ignores the filter.
    assert rows == {("fitzpatrick", "4"): 1, ("depth_min", "1.5"): 1}


def test_valid_filter_choices_are_each_counted(client):
    beacon(client, "k=filter&q=fitzpatrick%3D4%26fitzpatrick%3D5%26concern%3Dacne-scars")
    flush(later())
    rows = {(r.name, r.value): r.count for r in DailyFilterCount.objects.all()}
    assert rows == {("fitzpatrick", "4"): 1, ("fitzpatrick", "5"): 1, ("concern", "acne-scars"): 1}


def test_a_minute_is_flushed_only_once_it_is_over(client):
    case = make_listed_case()
    beacon(client, f"k=view&c={case.public_id}")
    assert flush() == {"minutes": 0, "events": 0}
    assert flush(later()) == {"minutes": 1, "events": 1}


def test_flushing_twice_adds_each_minute_once(client):
    case = make_listed_case()
    now = timezone.now()
    record("view", case.public_id, at=now - timedelta(minutes=5))
    assert flush(now) == {"minutes": 1, "events": 1}
    assert flush(now) == {"minutes": 0, "events": 0}
    record("view", case.public_id, at=now - timedelta(minutes=4))
    assert flush(now) == {"minutes": 1, "events": 1}
    assert counts(case) == (2, 0, 0)


def test_a_flush_that_stopped_before_forgetting_the_counters_is_not_added_again(client):
    case = make_listed_case()
    beacon(client, f"k=view&c={case.public_id}")
    # The counts are committed, then the process dies before the cache is emptied.
    with mock.patch.object(type(store()), "delete_many", lambda self, keys, version=None: None):
        flush(later())
    assert FlushedMinute.objects.count() == 1
    assert flush(later()) == {"minutes": 0, "events": 0}
    assert counts(case) == (1, 0, 0)


def test_counts_from_several_minutes_and_days_add_up():
    case = make_listed_case()
    now = timezone.now()
    for minutes in (5, 4, 4, 3):
        record("view", case.public_id, at=now - timedelta(minutes=minutes))
    record("book", case.public_id, at=now - timedelta(minutes=3))
    record("view", case.public_id, at=now - timedelta(hours=23))
    assert flush(now)["events"] == 6
    total = sum(r.views for r in DailyCaseCount.objects.all())
    assert total == 5
    assert sum(r.bookings for r in DailyCaseCount.objects.all()) == 1


def test_the_booking_redirect_carries_the_case_id_and_keeps_the_clinics_own_query(client, settings):
    # The case's location's booking page (Case.booking_url).
    location = make_location("clinic-example")
    location.booking_url = "https://clinic.example/book?src=gallery#form"
    location.save()
    case = make_listed_case(location=location, practitioner=make_practitioner(locations=[location]))
    response = click(client, case.public_id)
    assert response.status_code == 302
    assert (
        response["Location"]
        == f"https://clinic.example/book?src=gallery&case={case.public_id}#form"
    )
    assert response["Cache-Control"] == "no-store"
    click(client, case.public_id)  # never answered from a cache: every click counts
    flush(later())
    assert counts(case) == (0, 0, 2)
    assert booking_url("https://x.example/b?case=old", "new") == "https://x.example/b?case=new"


def test_the_case_page_button_goes_through_the_counting_redirect(client):
    case = make_listed_case()
    html = client.get(case.get_absolute_url()).content.decode()
    assert f'href="/book/?case={case.public_id}"' in html
    assert f'data-case="{case.public_id}"' in html


def test_a_click_for_a_case_that_is_not_public_books_without_it_and_counts_nothing(
    client, settings
):
    settings.CLINIC_BOOKING_URL = "https://clinic.example/book"
    draft = make_case(status="draft", published_at=None)
    for query in (f"?case={draft.public_id}", "?case=", "?case=%00%ff<script>", ""):
        response = client.get(f"/book/{query}", headers={"User-Agent": FIREFOX})
        assert response.status_code == 302
        assert response["Location"] == "https://clinic.example/book"
    assert flush(later())["events"] == 0


def test_the_beacon_refuses_what_it_does_not_understand_with_a_clear_answer(client):
    case = make_listed_case()
    draft = make_case(status="draft", published_at=None)
    assert client.get("/a/").status_code == 405
    assert beacon(client, f"k=visit&c={case.public_id}").status_code == 400
    assert beacon(client, f"k=view&c={draft.public_id}").status_code == 400
    assert beacon(client, "k=view&c=../../etc").status_code == 400
    assert beacon(client, "k=view").status_code == 400
    assert beacon(client, "\x00\xff garbage %%% &&&").status_code == 400
    assert beacon(client, "k=filter&q=" + "x" * 5000).status_code == 413
    other_site = beacon(client, f"k=view&c={case.public_id}", **{"Sec-Fetch-Site": "cross-site"})
    assert other_site.status_code == 403
    response = client.post(
        "/a/",
        b"\x89PNG garbage",
        content_type="multipart/form-data; boundary=x",
        headers={"User-Agent": FIREFOX},
    )
    assert response.status_code == 400
    assert flush(later())["events"] == 0


def test_no_public_response_sets_a_cookie(client):
    case = make_listed_case()
    responses = [
        client.get(url, headers={"User-Agent": FIREFOX})
        for url in (
            "/",
            "/gallery/",
            "/gallery/?fitzpatrick=3",
            case.get_absolute_url(),
            "/treatments/microneedling/",
            f"/book/?case={case.public_id}",
            "/sitemap.xml",
            "/robots.txt",
            "/api/cases/",
            f"/api/cases/{case.public_id}/",
            "/embed/",
        )
    ]
    responses += [
        beacon(client, f"k=view&c={case.public_id}"),
        beacon(client, "k=nonsense"),
        client.get("/a/"),
    ]
    for response in responses:
        assert response.status_code < 500
        assert not response.cookies, response.request["PATH_INFO"]
        assert "Set-Cookie" not in response.headers


def test_counts_of_a_withdrawn_and_of_an_erased_case_are_kept_as_numbers_only(client):
    from consent.hooks import erase_held_records

    withdrawn = make_listed_case()
    erased = make_listed_case()
    for case in (withdrawn, erased):
        beacon(client, f"k=view&c={case.public_id}")
        click(client, case.public_id)
    flush(later())
    withdrawn.consent.withdraw()
    staff = make_user("ops", is_staff=True, is_superuser=True)
    erase_held_records(erased.patient, staff)

    assert not type(erased).objects.filter(pk=erased.pk).exists()
    kept = DailyCaseCount.objects.get(public_id=erased.public_id)
    assert (kept.case, kept.views, kept.bookings, kept.treatment) == (None, 1, 1, "Microneedling")

    client.force_login(staff)
    html = client.get("/staff/analytics/").content.decode()
    for case in (withdrawn, erased):
        assert case.public_id in html
        assert f"/gallery/{case.public_id}/" not in html  # no link to a page that is gone
    assert "<img" not in html and "/media/" not in html
    assert html.count("not public") == 2


def test_reviewers_see_the_report_with_charts_tables_and_the_period_they_chose(client):
    first = make_listed_case(practitioner="Dr. Ada Lee", fitzpatrick=2)
    second = make_listed_case(practitioner="Dr. Bo Chen", fitzpatrick=5)
    for _ in range(4):
        beacon(client, f"k=view&c={first.public_id}")
    click(client, first.public_id)
    for _ in range(2):
        beacon(client, f"k=view&c={second.public_id}")
    beacon(client, f"k=compare&c={second.public_id}")
    click(client, second.public_id)
    beacon(client, "k=filter&q=fitzpatrick%3D5")
    flush(later())

    reviewer = make_user("rev", groups=["Reviewers"], is_staff=True)
    client.force_login(reviewer)
    response = client.get("/staff/analytics/")
    assert response.status_code == 200
    html = response.content.decode()
    assert '<dd data-total="views">6</dd>' in html
    assert '<dd data-total="comparisons">1</dd>' in html
    assert '<dd data-total="bookings">2</dd>' in html
    # The second case converts better (1 in 2 against 1 in 4): it comes first.
    top = html[html.index('id="top-cases"') :]
    assert top.index(second.public_id) < top.index(first.public_id)
    assert "50.0" in top and "25.0" in top
    for heading in ("By treatment", "By Fitzpatrick skin type", "By skin type", "By practitioner"):
        assert heading in html
    assert "By location" in html  # every case is treated at a location
    assert html.count('<svg class="bars"') == 6
    assert "<title id=" in html and "<desc id=" in html
    assert "Dr. Bo Chen" in html and "Type V" in html
    assert "Fitzpatrick skin type" in html and 'id="filter-usage"' in html

    # Another period: nothing counted then.
    old = (timezone.localdate() - timedelta(days=400)).isoformat()
    older = (timezone.localdate() - timedelta(days=300)).isoformat()
    html = client.get(f"/staff/analytics/?start={old}&end={older}").content.decode()
    assert "Nothing counted in this period." in html
    # Nonsense periods are refused with a message, never a 500.
    for query in (
        "start=2026-05-01&end=2026-01-01",
        "start=yesterday&end=",
        "start=2020-01-01&end=2026-01-01",
    ):
        response = client.get(f"/staff/analytics/?{query}")
        assert response.status_code == 200
        assert 'class="errorlist' in response.content.decode()


def test_the_csv_has_one_row_per_case_and_day_with_the_counts(client):
    case = make_listed_case(practitioner="=HYPERLINK(1)")
    beacon(client, f"k=view&c={case.public_id}")
    beacon(client, f"k=compare&c={case.public_id}")
    click(client, case.public_id)
    flush(later())
    client.force_login(make_user("rev", groups=["Reviewers"], is_staff=True))
    response = client.get("/staff/analytics/counts.csv")
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="case-counts-')
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == [
        "date",
        "public_id",
        "treatment",
        "fitzpatrick",
        "skin_type",
        "practitioner",
        "location",
        "views",
        "comparisons",
        "consultation_clicks",
    ]
    assert rows[1] == [
        timezone.localdate().isoformat(),
        case.public_id,
        "Microneedling",
        "3",
        "normal",
        "'=HYPERLINK(1)",
        "Demo Skin Clinic",
        "1",
        "1",
        "1",
    ]
    assert len(rows) == 2


def test_the_report_is_for_reviewers_and_admins_only(client):
    client.force_login(make_user("photo", groups=["Photographers"], is_staff=True))
    assert client.get("/staff/analytics/").status_code == 403
    assert client.get("/staff/analytics/counts.csv").status_code == 403
    client.logout()
    assert client.get("/staff/analytics/").status_code == 302


def _count_many(public_id: str, n: int) -> None:
    # Counting reads no database: the child leaves the parent's connection alone (closing
    # it here would end the parent's PostgreSQL session on the shared socket).
    for _ in range(n):
        record("view", public_id)


def test_processes_counting_at_once_lose_no_count():
    """The file cache's increment is a read and a write: without the lock beside it, two
    processes would overwrite each other's counts."""
    import multiprocessing

    case = make_listed_case()
    fork = multiprocessing.get_context("fork")
    children = [fork.Process(target=_count_many, args=(case.public_id, 150)) for _ in range(4)]
    for child in children:
        child.start()
    for child in children:
        child.join(60)
    assert [child.exitcode for child in children] == [0, 0, 0, 0]
    flush(later())
    assert counts(case) == (600, 0, 0)
