"""The JSON shape of a public case and its photos (DESIGN's API contract), shared by the
API and embeds."""

from django.http import HttpRequest

from gallery.models import Case, Photo, reference_data


def photo_json(photo: Photo) -> dict:
    sources = photo.public_sources()
    jpeg = sources.get("jpeg", [])
    return {
        "alt": photo.default_alt(),
        "src": jpeg[-1]["url"] if jpeg else "",
        "srcset": {
            fmt: ", ".join(f"{s['url']} {s['width']}w" for s in items)
            for fmt, items in sources.items()
        },
    }


def case_json(case: Case, request: HttpRequest) -> dict:
    concerns = reference_data()["concerns"]
    pairs = []
    for before, after in case.public_pairs():
        largest = max(before.renditions, key=lambda r: r["width"])
        pairs.append(
            {
                "view": before.view,
                "width": largest["width"],
                "height": largest["height"],
                "before": photo_json(before),
                "after": photo_json(after),
            }
        )
    return {
        "id": case.public_id,
        "url": request.build_absolute_uri(case.get_absolute_url()),
        "treatment": {"slug": case.treatment.slug, "name": case.treatment.name},
        "concerns": [{"slug": s, "name": concerns.get(s, s)} for s in case.concern_slugs()],
        "body_area": case.body_area,
        "fitzpatrick": case.fitzpatrick,
        "skin_type": case.skin_type,
        "needle_depth_mm": f"{case.needle_depth_mm:.2f}",
        "session_count": case.session_count,
        "session_interval_weeks": case.session_interval_weeks,
        "weeks_after_last_session": case.weeks_after_last_session,
        # Weeks from the first session, never dates: with the clinic's name, treatment
        # dates would help identify the patient.
        "sessions": case.protocol,
        "practitioner": case.practitioner_line(),
        "treated_by": {
            "slug": case.practitioner.slug,
            "name": case.practitioner.name,
            "credentials": case.practitioner.credentials,
            "url": request.build_absolute_uri(case.practitioner.get_absolute_url()),
        },
        "location": {
            "slug": case.location.slug,
            "name": case.location.name,
            "country": case.location.country,
            "url": request.build_absolute_uri(case.location.get_absolute_url()),
        },
        "warning": case.warning,
        "booking_url": case.booking_url,
        "sensitive": case.sensitive,
        "demo": case.is_demo,
        "published_at": case.published_at.isoformat() if case.published_at else None,
        "disclosure": case.disclosure(),
        "pairs": pairs,
    }
