"""The OpenAPI document says what the API enforces, and the API enforces what it says:
choices from the data, integers as integers, every limit, one message per bad parameter."""

import pytest
from django.test import Client

from gallery.filters import DEPTH_MM, MAX_PAGE, SESSIONS, SORTS
from gallery.models import Case, Concern, Treatment
from tests.conftest import make_listed_case

pytestmark = pytest.mark.django_db


def parameters(client) -> dict[str, dict]:
    doc = client.get("/api/openapi.json").json()
    return {p["name"]: p for p in doc["paths"]["/api/cases/"]["get"]["parameters"]}


def values_schema(param: dict) -> dict:
    schema = param["schema"]
    return schema["items"] if schema.get("type") == "array" else schema


def enum_of(client, name: str) -> list:
    return values_schema(parameters(client)[name])["enum"]


def refused(client, query: str, name: str) -> str:
    """The one message the API gives for a bad parameter ``name``."""
    response = client.get(f"/api/cases/?{query}")
    assert response.status_code == 400, query
    body = response.json()
    assert name in body["error"]
    assert list(body["fields"]) == [name]
    [message] = body["fields"][name]
    return message


def test_choices_are_the_data_at_the_time_of_the_request(client):
    assert set(enum_of(client, "treatment")) == set(
        Treatment.objects.values_list("slug", flat=True)
    )
    assert set(enum_of(client, "concern")) == set(Concern.objects.values_list("slug", flat=True))
    assert enum_of(client, "area") == list(Case.BodyArea.values)
    assert enum_of(client, "skin_type") == list(Case.SkinType.values)
    assert enum_of(client, "fitzpatrick") == [1, 2, 3, 4, 5, 6]
    assert enum_of(client, "sort") == list(SORTS)

    Treatment.objects.create(name="Laser resurfacing", slug="laser-resurfacing")
    assert "laser-resurfacing" in enum_of(client, "treatment")
    assert client.get("/api/cases/?treatment=laser-resurfacing").status_code == 200


def test_a_value_outside_a_choice_list_is_refused(client):
    for name, value in [
        ("treatment", "laser"),
        ("concern", "acne"),
        ("concern", ""),
        ("area", "knees"),
        ("skin_type", "shiny"),
        ("fitzpatrick", "7"),
        ("sort", "random"),
    ]:
        assert value not in enum_of(client, name)
        assert refused(client, f"{name}={value}", name)


def test_numbers_are_typed_as_the_api_reads_them(client):
    params = parameters(client)
    for name in ("sessions_min", "sessions_max", "page"):
        assert params[name]["schema"]["type"] == "integer"
    assert values_schema(params["fitzpatrick"])["type"] == "integer"
    for name in ("depth_min", "depth_max"):
        assert params[name]["schema"]["type"] == "number"
    assert refused(client, "sessions_min=0.5", "sessions_min") == (
        f"Enter a whole number from {SESSIONS[0]} to {SESSIONS[1]}."
    )
    assert refused(client, "sessions_max=1e3", "sessions_max")
    assert client.get("/api/cases/?depth_min=0.5").status_code == 200


def test_the_limits_are_the_filters_own(client):
    params = parameters(client)
    for name in ("depth_min", "depth_max"):
        assert (params[name]["schema"]["minimum"], params[name]["schema"]["maximum"]) == DEPTH_MM
    for name in ("sessions_min", "sessions_max"):
        assert (params[name]["schema"]["minimum"], params[name]["schema"]["maximum"]) == SESSIONS
    assert (params["page"]["schema"]["minimum"], params["page"]["schema"]["maximum"]) == (
        1,
        MAX_PAGE,
    )


def test_every_documented_limit_is_enforced(client):
    make_listed_case()
    bounded = {n: p["schema"] for n, p in parameters(client).items() if "minimum" in p["schema"]}
    assert set(bounded) == {"depth_min", "depth_max", "sessions_min", "sessions_max", "page"}
    for name, schema in bounded.items():
        step = 1 if schema["type"] == "integer" else 0.001
        low, high = schema["minimum"], schema["maximum"]
        for outside in (low - step, high + step):
            assert refused(client, f"{name}={outside}", name)
        for inside in (low, high):
            response = client.get(f"/api/cases/?{name}={inside}")
            if name == "page" and inside == high:
                # Within the limit but past the last page: the documented 404.
                assert response.status_code == 404
                assert response.json() == {"error": "No such page: the last page is 1."}
            else:
                assert response.status_code == 200, f"{name}={inside}"


@pytest.mark.parametrize("name", ["depth_min", "depth_max", "sessions_min", "sessions_max"])
@pytest.mark.parametrize(
    "value",
    ["NaN", "nan", "inf", "-Infinity", "1e400", "-1e400", "99999999999999999999999", "-1", "x"],
)
def test_nonsense_numbers_get_one_clear_message(client, name, value):
    message = refused(client, f"{name}={value}", name)
    low, high = DEPTH_MM if name.startswith("depth") else SESSIONS
    assert message.endswith(f"from {low} to {high}.")


def test_each_bad_parameter_gets_its_own_message(client):
    response = client.get("/api/cases/?depth_min=1e400&sessions_max=NaN&page=0&area=knees")
    assert response.status_code == 400
    fields = response.json()["fields"]
    assert sorted(fields) == ["area", "depth_min", "page", "sessions_max"]
    assert all(len(messages) == 1 for messages in fields.values())


def test_an_empty_value_counts_as_not_given_where_the_document_says_so(client):
    params = parameters(client)
    for name, param in params.items():
        response = client.get(f"/api/cases/?{name}=")
        if param.get("allowEmptyValue"):
            assert response.status_code == 200, name
        else:
            assert response.status_code == 400, name


def test_other_methods_are_405_not_a_csrf_403():
    client = Client(enforce_csrf_checks=True)
    for path in ("/api/cases/", "/api/cases/anything/", "/api/openapi.json"):
        for method in ("POST", "QUERY", "DELETE"):
            response = client.generic(method, path)
            assert response.status_code == 405, (method, path)
            assert response["Allow"] == "GET, HEAD"
