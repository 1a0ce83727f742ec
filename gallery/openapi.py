"""The OpenAPI description of the public API. The response shapes are written out by
hand; the query parameters are read from the form fields that validate them
(``CaseFilter`` and ``page_field()`` in ``gallery/filters.py``), so the document states
exactly what the API enforces: the treatments and concerns in the database at the time
of the request, the choices of the model, every limit, integers as integers."""

from decimal import Decimal

from django import forms

from gallery.filters import CaseFilter, page_field
from gallery.models import Case, SessionZone

_array_of = lambda schema: {"type": "array", "items": schema}  # noqa: E731


def _param(name: str, schema: dict, description: str, repeat: bool = False) -> dict:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": _array_of(schema) if repeat else schema,
        # A repeatable parameter's values are each checked (``concern=`` is refused); any
        # other's empty value counts as not given, as an HTML form sends an empty field.
        **({"style": "form", "explode": True} if repeat else {"allowEmptyValue": True}),
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

SESSION = {
    "type": "object",
    "description": "one treatment session; counted in weeks from the first, without dates",
    "required": ["number", "week", "device", "zones"],
    "properties": {
        "number": {"type": "integer", "minimum": 1},
        "week": {"type": "integer", "minimum": 0, "description": "weeks after the first session"},
        "device": {"type": "string"},
        "zones": _array_of(
            {
                "type": "object",
                "required": ["zone", "name", "needle_depth_mm", "rf_energy", "rf_passes"],
                "properties": {
                    "zone": {"type": "string", "enum": list(SessionZone.Zone.values)},
                    "name": {"type": "string"},
                    "needle_depth_mm": {"type": "string", "pattern": r"^\d\.\d\d$"},
                    "rf_energy": {
                        "type": ["integer", "null"],
                        "minimum": 1,
                        "maximum": 100,
                        "description": "the device's energy level (RF microneedling only)",
                    },
                    "rf_passes": {"type": ["integer", "null"], "minimum": 1, "maximum": 10},
                },
            }
        ),
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
        "sessions",
        "disclosure",
        "warning",
        "treated_by",
        "location",
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
        "sessions": _array_of(SESSION),
        "practitioner": {
            "type": "string",
            "description": "who treated the case, where: the caption's words",
        },
        "treated_by": {
            "type": "object",
            "required": ["slug", "name", "credentials", "url"],
            "properties": {
                "slug": {"type": "string"},
                "name": {"type": "string"},
                "credentials": {"type": "string"},
                "url": {"type": "string", "format": "uri"},
            },
        },
        "location": {
            "type": "object",
            "required": ["slug", "name", "country", "url"],
            "properties": {
                "slug": {"type": "string"},
                "name": {"type": "string"},
                "country": {"type": "string", "description": "ISO 3166-1 alpha-2"},
                "url": {"type": "string", "format": "uri"},
            },
        },
        "warning": {
            "type": "string",
            "description": "the warning the location's rules ask every outcome image to carry "
            "(empty for none); also the disclosure's last sentence",
        },
        "booking_url": {
            "type": "string",
            "format": "uri",
            "description": "the consultation booking page, with ?case=<id>",
        },
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
    "required": ["error"],
    "properties": {
        "error": {"type": "string"},
        "fields": {
            "type": "object",
            "description": "for each invalid parameter, the one message that says why",
            "additionalProperties": {"type": "array", "items": {"type": "string"}},
        },
    },
}


DESCRIPTIONS = {
    "treatment": "treatment slug",
    "concern": "concern slug",
    "area": "body area",
    "fitzpatrick": "Fitzpatrick skin type",
    "skin_type": "skin type",
    "location": "location slug (the clinic where the case was treated)",
    "practitioner": "practitioner slug (who treated the case)",
    "depth_min": "deepest needle setting from (mm)",
    "depth_max": "deepest needle setting to (mm)",
    "sessions_min": "number of sessions from",
    "sessions_max": "number of sessions to",
    "sort": "order (default newest)",
    "page": "page number (a page past the last one is a 404)",
}


def _json_number(value: Decimal | int) -> int | float:
    return int(value) if value == int(value) else float(value)


def field_schema(field: forms.Field) -> dict:
    """The JSON schema of the values a form field accepts."""
    if isinstance(field, forms.ChoiceField):
        values = [value for value, _ in field.choices if value != ""]
        kind = "integer" if all(isinstance(v, int) for v in values) else "string"
        return {"type": kind, "enum": values}
    if isinstance(field, forms.IntegerField):  # DecimalField is one too
        kind = "number" if isinstance(field, forms.DecimalField) else "integer"
        schema = {"type": kind}
        if field.min_value is not None:
            schema["minimum"] = _json_number(field.min_value)
        if field.max_value is not None:
            schema["maximum"] = _json_number(field.max_value)
        return schema
    raise TypeError(f"no schema for {type(field).__name__}")


def query_parameters() -> list[dict]:
    fields = {**CaseFilter(queryset=Case.objects.none()).form.fields, "page": page_field()}
    return [
        _param(
            name,
            field_schema(field),
            DESCRIPTIONS[name],
            repeat=isinstance(field, forms.MultipleChoiceField),
        )
        for name, field in fields.items()
    ]


def openapi_document(server_url: str, per_page: int) -> dict:
    filters = query_parameters()
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
                                        "count": {"type": "integer", "minimum": 0},
                                        "page": {"type": "integer", "minimum": 1},
                                        "pages": {"type": "integer", "minimum": 1},
                                        "next": {"type": ["string", "null"]},
                                        "previous": {"type": ["string", "null"]},
                                        "facets": FACETS,
                                        "results": {**_array_of(CASE), "maxItems": per_page},
                                    },
                                }
                            ),
                        },
                        "400": {
                            "description": "invalid parameters: one message for each",
                            "content": json_of(ERROR),
                        },
                        "404": {"description": "a page past the last", "content": json_of(ERROR)},
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
