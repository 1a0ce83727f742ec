"""Every public page runs a constant number of queries and never touches storage or opens
an image, whatever the page size, the page number and the filters."""

import itertools

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from gallery import views
from gallery.cache import current_generation, new_generation
from gallery.filters import CaseFilter
from gallery.listing import ensure_cube
from gallery.models import Case, FacetCell, FacetCube, Treatment
from tests.conftest import make_listed_case, make_user

pytestmark = pytest.mark.django_db

CASES = 60


@pytest.fixture
def many_cases():
    reviewer = make_user()
    rf = Treatment.objects.get(slug="rf-microneedling")
    concerns = itertools.cycle(["acne-scars", "pigmentation", "texture-pores"])
    cases = []
    for n in range(CASES):
        kw = {"treatment": rf} if n % 2 else {}
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
    """Queries of one request that misses the page cache, with the shared reference data,
    the publication generation and its facet cube already there (as they are on a running
    site: the cube is built once per generation, see the test below)."""
    client.get("/healthz")
    client.get("/gallery/")
    new_generation()  # a fresh generation: the page cache misses, the lookup does not
    assert ensure_cube(current_generation())
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
    for url in ["/sitemap.xml", "/sitemap-cases.xml", "/sitemap-cases.xml?p=3"]:
        count, response = queries_for(client, url)
        assert count <= 3, (url, count)
    assert response.content.decode().count("<url>") == CASES - 50


def test_the_facet_cube_is_built_once_per_generation_and_counts_like_the_rule(
    client, many_cases, no_storage_no_images
):
    # Cases with two concerns: one cell each, counted once under "either concern".
    make_listed_case(concerns=("pigmentation", "acne-scars"), fitzpatrick=3)
    make_listed_case(concerns=("acne-scars", "pigmentation"), fitzpatrick=3)
    client.get("/healthz")
    generation = new_generation()
    with CaptureQueriesContext(connection) as ctx:
        first = client.get("/gallery/?fitzpatrick=3")
    assert first.status_code == 200
    assert FacetCube.objects.filter(generation=generation).count() == 1
    building = len(ctx.captured_queries)
    with CaptureQueriesContext(connection) as ctx:
        client.get("/api/cases/?fitzpatrick=4")
    assert len(ctx.captured_queries) <= 3 < building
    assert FacetCube.objects.filter(generation=generation).count() == 1
    cube = FacetCube.objects.get(generation=generation)
    assert cube.cases == Case.objects.public().count() == CASES + 2
    cells = FacetCell.objects.filter(cube=cube)
    assert sum(cells.values_list("cases", flat=True)) == CASES + 2
    assert cells.get(concerns=",acne-scars,pigmentation,").cases == 2
    # Every filter set gives the same counts from the cube as from the rule itself.
    for query in [
        {},
        {"fitzpatrick": ["3", "4"]},
        {"treatment": ["rf-microneedling"], "concern": ["acne-scars", "pigmentation"]},
        {"concern": ["texture-pores"], "skin_type": ["normal"], "area": ["face"]},
        {"treatment": ["microneedling"], "fitzpatrick": ["6"], "concern": ["acne-scars"]},
        # No filter or one (a single concern): counted from the cube's summary.
        {"concern": ["acne-scars"]},
        {"concern": ["pigmentation"]},
        {"area": ["face"]},
        {"treatment": ["rf-microneedling"]},
        {"skin_type": ["normal", "oily"]},
        {"concern": ["acne-scars", "pigmentation"]},
    ]:
        filterset = CaseFilter(query or None, queryset=Case.objects.listed())
        assert filterset.facets(generation) == filterset.live_facets(), query
