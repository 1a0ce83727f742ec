"""The public pages and the API show public cases only, and bad input never gives a 500."""

import pytest

from tests.conftest import fetch, make_case, make_public_case

pytestmark = pytest.mark.django_db


def rf():
    from gallery.models import Treatment

    return Treatment.objects.get(slug="rf-microneedling")


def test_gallery_lists_public_cases_with_their_photos(client):
    case = make_public_case()
    response = client.get("/gallery/")
    assert response.status_code == 200
    html = response.content.decode()
    assert case.get_absolute_url() in html
    from django.core.files.storage import storages

    assert storages["public"].url("r/") in html
    assert case.disclosure() in html


def test_a_draft_is_nowhere(client):
    public = make_public_case()
    draft = make_public_case(status="draft", published_at=None)
    assert not draft.is_public
    assert draft.public_id not in client.get("/gallery/").content.decode()
    assert client.get(draft.get_absolute_url()).status_code == 404
    assert client.get(f"/api/cases/{draft.public_id}/").status_code == 404
    api = client.get("/api/cases/").json()
    assert [r["id"] for r in api["results"]] == [public.public_id]
    assert api["count"] == 1
    assert draft.public_id not in client.get("/sitemap.xml").content.decode()


def test_case_page_shows_every_fact_and_the_disclosure(client):
    case = make_public_case(fitzpatrick=5)
    html = client.get(case.get_absolute_url()).content.decode()
    assert "Type V" in html
    assert "1.50 mm" in html
    assert case.disclosure() in html
    assert case.practitioner_line() in html


def test_api_list_has_the_contract_shape(client):
    case = make_public_case(fitzpatrick=4, skin_type="oily")
    data = client.get("/api/cases/").json()
    assert {"count", "page", "pages", "next", "previous", "facets", "results"} <= set(data)
    assert data["facets"]["fitzpatrick"]["4"] == 1
    assert data["facets"]["treatment"]["microneedling"] == 1
    result = data["results"][0]
    assert result["id"] == case.public_id
    assert result["url"] == f"http://testserver/gallery/{case.public_id}/"
    assert result["treatment"] == {"slug": "microneedling", "name": "Microneedling"}
    assert result["concerns"] == [{"slug": "acne-scars", "name": "Acne scars"}]
    assert result["needle_depth_mm"] == "1.50"
    assert result["skin_type"] == "oily"
    pair = result["pairs"][0]
    assert pair["view"] == "front"
    assert (pair["width"], pair["height"]) == (800, 600)
    for side in ("before", "after"):
        assert pair[side]["src"].endswith(".jpg")
        assert set(pair[side]["srcset"]) == {"avif", "webp", "jpeg"}
        assert fetch(client, pair[side]["src"])[0] == 200
    assert client.get(f"/api/cases/{case.public_id}/").json()["id"] == case.public_id


def test_filters_narrow_the_list_and_facets_count_under_other_filters(client):
    make_case(fitzpatrick=2)
    make_case(fitzpatrick=6)
    make_case(fitzpatrick=6, treatment=rf())
    data = client.get("/api/cases/?fitzpatrick=6").json()
    assert data["count"] == 2
    assert all(r["fitzpatrick"] == 6 for r in data["results"])
    # Facets of a dimension ignore that dimension's own filter.
    assert data["facets"]["fitzpatrick"] == {"1": 0, "2": 1, "3": 0, "4": 0, "5": 0, "6": 2}
    assert data["facets"]["treatment"] == {"microneedling": 1, "rf-microneedling": 1}
    both = client.get("/api/cases/?fitzpatrick=6&fitzpatrick=2&treatment=microneedling").json()
    assert both["count"] == 2


@pytest.mark.parametrize(
    "query",
    [
        "fitzpatrick=9",
        "fitzpatrick=abc",
        "depth_min=deep",
        "sessions_max=-1x",
        "treatment=laser",
        "sort=random",
        "page=0",
        "page=abc",
        "concern=%00",
    ],
)
def test_nonsense_parameters_are_a_clear_400_for_the_api(client, query):
    make_case()
    response = client.get(f"/api/cases/?{query}")
    assert response.status_code == 400
    assert response.json()["error"]


def test_a_page_past_the_last_is_a_404_for_the_api(client):
    make_case()
    response = client.get("/api/cases/?page=99")
    assert response.status_code == 404
    assert response.json() == {"error": "No such page: the last page is 1."}


@pytest.mark.parametrize(
    "query", ["fitzpatrick=9", "depth_min=deep", "sort=random", "treatment=laser", "x=1"]
)
def test_nonsense_parameters_are_ignored_by_the_list_page(client, query):
    make_case()
    response = client.get(f"/gallery/?{query}")
    assert response.status_code == 200
    assert "<strong>1</strong> case" in response.content.decode()


@pytest.mark.parametrize(
    "url",
    [
        "/gallery/does-not-exist/",
        "/gallery/%20/",
        "/api/cases/nope/",
        "/treatments/laser/",
        "/gallery/?page=abc",
        "/media/public/../../settings.py",
        "/media/public/r/nothing/480.jpg",
    ],
)
def test_unknown_things_are_404(client, url):
    make_case()
    assert client.get(url).status_code == 404


def test_healthz_and_robots(client):
    assert client.get("/healthz").content == b"ok"
    robots = client.get("/robots.txt").content.decode()
    assert "Disallow: /staff/" in robots and "Sitemap:" in robots


def test_public_images_have_long_cache_and_nosniff(client, local_storage):
    # The app serves public images itself only on the embedded default (local storage);
    # in production the object store or CDN does, with the headers the docs list.
    case = make_public_case()
    src = client.get(f"/api/cases/{case.public_id}/").json()["pairs"][0]["after"]["src"]
    response = client.get(src)
    assert response["Content-Type"] == "image/jpeg"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "immutable" in response["Cache-Control"]


def test_treatment_page_lists_its_public_cases(client):
    case = make_public_case()
    html = client.get("/treatments/microneedling/").content.decode()
    assert case.get_absolute_url() in html
    assert "Does microneedling hurt?" in html
    assert (
        case.get_absolute_url() not in client.get("/treatments/rf-microneedling/").content.decode()
    )


def test_the_first_row_loads_eagerly_the_first_card_first_and_the_rest_lazily(client):
    from tests.conftest import make_listed_case

    for _ in range(5):
        make_listed_case()
    html = client.get("/gallery/").content.decode()
    imgs = [tag for tag in html.split("<img ")[1:]]
    assert len(imgs) == 10  # five cards, a before and an after each
    assert all('fetchpriority="high"' in t for t in imgs[:2])
    assert all('loading="eager"' in t for t in imgs[2:6])
    assert all('loading="lazy"' in t for t in imgs[6:])
    assert all(' width="' in t and ' height="' in t for t in imgs)


def test_every_filter_option_shows_its_count_and_none_is_hidden(client):
    make_case(fitzpatrick=4, concerns=("acne-scars",))
    make_case(fitzpatrick=5, concerns=("texture-pores",))
    html = client.get("/gallery/?concern=acne-scars").content.decode()
    for value in ("fine-lines-wrinkles", "stretch-marks", "hands", "6", "sensitive"):
        assert f'value="{value}" disabled>' in html, value  # no case: shown, disabled
    assert 'value="acne-scars" checked>' in html
    assert 'value="4">' in html
    # A chosen option with no case can still be unticked.
    html = client.get("/gallery/?concern=acne-scars&fitzpatrick=5").content.decode()
    assert 'value="5" checked>' in html


def test_the_count_agrees_with_its_number(client):
    make_case(fitzpatrick=4)
    make_case(fitzpatrick=5)
    assert "case matches your choices." in client.get("/gallery/?fitzpatrick=4").content.decode()
    both = client.get("/gallery/?fitzpatrick=4&fitzpatrick=5").content.decode()
    assert "cases match your choices." in both


def test_a_choice_with_no_case_offers_the_nearest_matches_with_their_counts(client):
    make_case(fitzpatrick=4, concerns=("acne-scars",))
    make_case(fitzpatrick=6, concerns=("acne-scars",))
    make_case(fitzpatrick=5, concerns=("texture-pores",))
    make_case(fitzpatrick=5, concerns=("texture-pores",))
    html = client.get("/gallery/?fitzpatrick=5&concern=acne-scars").content.decode()
    assert "No case yet for Type V with acne scars" in html
    offered = [
        ("?concern=acne-scars&amp;fitzpatrick=4", "Type IV with acne scars", 1),
        ("?concern=acne-scars&amp;fitzpatrick=6", "Type VI with acne scars", 1),
        ("?concern=texture-pores&amp;fitzpatrick=5", "Type V with texture and pores", 2),
    ]
    positions = []
    for href, label, count in offered:
        link = f'<a href="{href}" data-filter-link>{label} <span class="n">({count})</span></a>'
        assert link in html
        positions.append(html.index(link))
        target = client.get("/gallery/" + href.replace("&amp;", "&")).content.decode()
        assert target.count('<article class="card') == count
    assert positions == sorted(positions)  # the neighbouring types first
