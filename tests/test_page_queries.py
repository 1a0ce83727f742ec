"""Every public page runs a constant number of queries and never touches storage or opens
an image, whatever the page size, the page number and the filters."""

import itertools

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from gallery import views
from gallery.cache import new_generation
from gallery.filters import CaseFilter
from gallery.models import Case, Treatment, reference_data
from tests.conftest import make_listed_case, make_practitioner, make_user

pytestmark = pytest.mark.django_db

CASES = 60


@pytest.fixture
def many_cases():
    reviewer = make_user()
    rf = Treatment.objects.get(slug="rf-microneedling")
    concerns = itertools.cycle(["acne-scars", "pigmentation", "texture-pores"])
    # Two practitioners at one location, so the list's practitioner group is shown.
    other = make_practitioner("dr-other", name="Dr. Other")
    cases = []
    for n in range(CASES):
        kw = {"treatment": rf} if n % 2 else {}
        if n % 3 == 0:
            kw["practitioner"] = other
        cases.append(
            make_listed_case(
                fitzpatrick=n % 6 + 1, reviewed_by=reviewer, concerns=(next(concerns),), **kw
            )
        )
    return cases


@pytest.fixture
def no_storage_no_images(monkeypatch):
    """Any storage I/O or image decoding during a request fails the test."""
    from django.core.files.storage import FileSystemStorage
    from PIL import Image

    def forbidden(*args, **kwargs):
        raise AssertionError("a public page touched storage or opened an image")

    for name in ("open", "exists", "save", "delete", "listdir", "size", "get_modified_time"):
        monkeypatch.setattr(FileSystemStorage, name, forbidden)
    monkeypatch.setattr(Image, "open", forbidden)


def queries_for(client, url) -> tuple[int, object]:
    """Queries of one request in a fresh publication generation: it misses the page cache
    and the facet counts' cache (the shared reference data are already there, as on a
    running site)."""
    client.get("/healthz")
    client.get("/gallery/")
    new_generation()  # a fresh generation: the page cache misses, the lookup does not
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200, url
    assert "X-Cache" not in response
    return len(ctx.captured_queries), response


@pytest.mark.parametrize("per_page", [24, 48])
@pytest.mark.parametrize(
    "query",
    [
        "",
        "fitzpatrick=3&fitzpatrick=4",
        "treatment=rf-microneedling&concern=acne-scars&sort=depth",
        "depth_min=0.5&depth_max=3&sessions_min=1&sessions_max=9&skin_type=normal&area=face",
        # No case: the page offers the nearest matches, counted within the same queries.
        "fitzpatrick=1&concern=pigmentation",
        "location=demo-skin-clinic&practitioner=dr-test&practitioner=dr-other&fitzpatrick=2",
    ],
)
def test_list_and_api_run_at_most_three_queries(
    client, many_cases, no_storage_no_images, monkeypatch, per_page, query
):
    monkeypatch.setattr(views, "PER_PAGE", per_page)
    last_page = client.get(f"/api/cases/?{query}").json()["pages"]
    for base in ("/gallery/", "/api/cases/"):
        counts = [
            queries_for(client, f"{base}?{query}&page={page}")[0] for page in sorted({1, last_page})
        ]
        assert max(counts) <= 3, (base, query, counts)
        assert len(set(counts)) == 1, (base, query, counts)  # constant: first page = last page


def test_the_list_shows_a_full_page(client, many_cases, monkeypatch):
    monkeypatch.setattr(views, "PER_PAGE", 48)
    html = client.get("/gallery/").content.decode()
    assert html.count('<article class="card') == 48
    assert client.get("/api/cases/?page=2").json()["results"].__len__() == CASES - 48


def test_case_treatment_and_home_pages_run_at_most_three_queries(
    client, many_cases, no_storage_no_images
):
    case = many_cases[7]
    for url in [
        case.get_absolute_url(),
        f"/api/cases/{case.public_id}/",
        "/treatments/microneedling/",
        f"/practitioners/{case.practitioner.slug}/",
        f"/locations/{case.location.slug}/",
        "/",
        "/sitemap.xml",
        "/sitemap-pages.xml",
        "/sitemap-cases.xml",
    ]:
        count, response = queries_for(client, url)
        assert count <= 3, (url, count)
    # The similar cases are shown, with their photos, within those queries.
    count, response = queries_for(client, case.get_absolute_url())
    assert response.content.decode().count('<article class="card') == 4


def test_a_split_sitemap_runs_at_most_three_queries_per_file(
    client, many_cases, no_storage_no_images, monkeypatch
):
    from gallery.sitemaps import CasesSitemap

    monkeypatch.setattr(CasesSitemap, "limit", 25)
    # Each case once per language (English and Spanish): 120 entries, the fifth file's 20.
    for url in ["/sitemap.xml", "/sitemap-cases.xml", "/sitemap-cases.xml?p=5"]:
        count, response = queries_for(client, url)
        assert count <= 3, (url, count)
    assert response.content.decode().count("<url>") == 2 * CASES - 100
    # A file's window may start between a case's two languages (the second file's first
    # entry is the 13th case in Spanish): together the files list each case once in each.
    files = [client.get(f"/sitemap-cases.xml?p={p}").content.decode() for p in range(1, 6)]
    assert files[1].split("<loc>")[1].startswith("http://testserver/es/gallery/")
    locations = [loc.split("</loc>")[0] for f in files for loc in f.split("<loc>")[1:]]
    english = {loc for loc in locations if "/es/" not in loc}
    assert len(locations) == len(set(locations)) == 2 * CASES and len(english) == CASES
    assert {loc.replace("/es/", "/") for loc in set(locations) - english} == english


def test_facet_counts_are_taken_once_per_generation_and_count_like_the_rule(
    client, many_cases, no_storage_no_images
):
    # Cases with two concerns are counted once under "either concern".
    make_listed_case(concerns=("pigmentation", "acne-scars"), fitzpatrick=3)
    make_listed_case(concerns=("acne-scars", "pigmentation"), fitzpatrick=3)
    reference_data()  # shared by every request, cached on its own
    generation = new_generation()
    filterset = CaseFilter({"fitzpatrick": ["3"]}, queryset=Case.objects.listed())
    with CaptureQueriesContext(connection) as ctx:
        first = filterset.facets(generation)
    assert len(ctx.captured_queries) == 1  # one aggregate over the listing
    with CaptureQueriesContext(connection) as ctx:
        assert filterset.facets(generation) == first
    assert len(ctx.captured_queries) == 0  # kept for the generation
    total, facets = CaseFilter(None, queryset=Case.objects.listed()).facets(generation)
    assert total == Case.objects.public().count() == CASES + 2
    # Every filter set gives the same counts from the listing as from the rule itself.
    for query in [
        {},
        {"fitzpatrick": ["3", "4"]},
        {"treatment": ["rf-microneedling"], "concern": ["acne-scars", "pigmentation"]},
        {"concern": ["texture-pores"], "skin_type": ["normal"], "area": ["face"]},
        {"treatment": ["microneedling"], "fitzpatrick": ["6"], "concern": ["acne-scars"]},
        {"concern": ["acne-scars"]},
        {"concern": ["pigmentation"]},
        {"area": ["face"]},
        {"treatment": ["rf-microneedling"]},
        {"skin_type": ["normal", "oily"]},
        {"concern": ["acne-scars", "pigmentation"]},
        {"practitioner": ["dr-other"], "fitzpatrick": ["1", "2"]},
        {"location": ["demo-skin-clinic"], "practitioner": ["dr-test", "dr-other"]},
    ]:
        filterset = CaseFilter(query or None, queryset=Case.objects.listed())
        assert filterset.facets(generation) == filterset.live_facets(), query
