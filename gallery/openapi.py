"""The OpenAPI description of the public API, written out by hand: the API is five
fields of query and one response shape, and a schema generator would need a REST
framework the project does not otherwise use."""

from gallery.filters import SORTS
from gallery.models import FITZPATRICK_CHOICES, Case

_array_of = lambda schema: {"type": "array", "items": schema}  # noqa: E731


def _param(name: str, schema: dict, description: str, repeat: bool = False) -> dict:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": _array_of(schema) if repeat else schema,
        **({"style": "form", "explode": True} if repeat else {}),
    }


PHOTO = {
    "type": "object",
    "required": ["alt", "src", "srcset"],
    "properties": {
        "alt": {"type": "string"},
        "src": {"type": "string", "format": "uri-reference", "description": "largest JPEG"},
        "srcset": {
            "type": "object",
            "description": "srcset strings by format (avif, webp, jpeg)",
            "additionalProperties": {"type": "string"},
        },
    },
}

CASE = {
    "type": "object",
    "required": [
        "id",
        "url",
        "treatment",
        "concerns",
        "body_area",
        "fitzpatrick",
        "skin_type",
        "needle_depth_mm",
        "session_count",
        "weeks_after_last_session",
        "disclosure",
        "pairs",
    ],
    "properties": {
        "id": {"type": "string", "description": "public id (random, not sequential)"},
        "url": {"type": "string", "format": "uri"},
        "treatment": {
            "type": "object",
            "properties": {"slug": {"type": "string"}, "name": {"type": "string"}},
        },
        "concerns": _array_of(
            {
                "type": "object",
                "properties": {"slug": {"type": "string"}, "name": {"type": "string"}},
            }
        ),
        "body_area": {"type": "string", "enum": list(Case.BodyArea.values)},
        "fitzpatrick": {"type": "integer", "minimum": 1, "maximum": 6},
        "skin_type": {"type": "string", "enum": list(Case.SkinType.values)},
        "needle_depth_mm": {"type": "string", "pattern": r"^\d\.\d\d$"},
        "session_count": {"type": "integer", "minimum": 1},
        "session_interval_weeks": {"type": "integer", "minimum": 1},
        "weeks_after_last_session": {"type": "integer", "minimum": 0},
        "practitioner": {"type": "string"},
        "sensitive": {"type": "boolean", "description": "blur until the viewer asks"},
        "demo": {"type": "boolean"},
        "published_at": {"type": ["string", "null"], "format": "date-time"},
        "disclosure": {"type": "string"},
        "pairs": _array_of(
            {
                "type": "object",
                "properties": {
                    "view": {"type": "string"},
                    "width": {"type": "integer"},
                    "height": {"type": "integer"},
                    "before": PHOTO,
                    "after": PHOTO,
                },
            }
        ),
    },
}

FACETS = {
    "type": "object",
    "description": "for each filter, how many cases each option gives under the other filters",
    "additionalProperties": {"type": "object", "additionalProperties": {"type": "integer"}},
}

ERROR = {
    "type": "object",
    "properties": {"error": {"type": "string"}, "fields": {"type": "object"}},
}


def openapi_document(server_url: str) -> dict:
    filters = [
        _param("treatment", {"type": "string"}, "treatment slug", repeat=True),
        _param("concern", {"type": "string"}, "concern slug", repeat=True),
        _param("area", {"type": "string", "enum": list(Case.BodyArea.values)}, "body area", True),
        _param(
            "fitzpatrick",
            {"type": "integer", "enum": [n for n, _ in FITZPATRICK_CHOICES]},
            "Fitzpatrick skin type",
            repeat=True,
        ),
        _param("skin_type", {"type": "string", "enum": list(Case.SkinType.values)}, "", True),
        _param("depth_min", {"type": "number", "minimum": 0}, "deepest needle setting from (mm)"),
        _param("depth_max", {"type": "number", "minimum": 0}, "deepest needle setting to (mm)"),
        _param("sessions_min", {"type": "integer", "minimum": 0}, "sessions from"),
        _param("sessions_max", {"type": "integer", "minimum": 0}, "sessions to"),
        _param("sort", {"type": "string", "enum": list(SORTS)}, "order (default newest)"),
        _param("page", {"type": "integer", "minimum": 1}, "page number"),
    ]
    json_of = lambda schema: {"application/json": {"schema": schema}}  # noqa: E731
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Before/after gallery API",
            "version": "1",
            "description": "Public cases only: a case withdrawn, expired or unpublished is "
            "absent from every answer (404 for its id).",
        },
        "servers": [{"url": server_url}],
        "paths": {
            "/api/cases/": {
                "get": {
                    "summary": "Public cases, filtered, with facet counts",
                    "parameters": filters,
                    "responses": {
                        "200": {
                            "description": "a page of cases",
                            "content": json_of(
                                {
                                    "type": "object",
                                    "required": ["count", "page", "pages", "facets", "results"],
                                    "properties": {
                                        "count": {"type": "integer"},
                                        "page": {"type": "integer"},
                                        "pages": {"type": "integer"},
                                        "next": {"type": ["string", "null"]},
                                        "previous": {"type": ["string", "null"]},
                                        "facets": FACETS,
                                        "results": _array_of(CASE),
                                    },
                                }
                            ),
                        },
                        "400": {"description": "invalid parameters", "content": json_of(ERROR)},
                    },
                }
            },
            "/api/cases/{id}/": {
                "get": {
                    "summary": "One public case",
                    "parameters": [
                        {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
                    ],
                    "responses": {
                        "200": {"description": "the case", "content": json_of(CASE)},
                        "404": {
                            "description": "no public case with this id",
                            "content": json_of(ERROR),
                        },
                    },
                }
            },
        },
    }
