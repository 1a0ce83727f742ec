from urllib.parse import urlencode

from django.conf import settings
from django.templatetags.static import static
from django.utils import translation
from django.utils.safestring import mark_safe


def logo_url() -> str:
    """CLINIC_LOGO_URL as a URL: absolute and site paths as they are, others as static files."""
    logo = settings.CLINIC_LOGO_URL
    if not logo or "://" in logo or logo.startswith("/"):
        return logo
    return static(logo)


def clinic(request) -> dict:
    """The clinic's name, booking link and look, for every page. No query: the error pages
    use it too."""
    return brand_context()


def brand_context() -> dict:
    return {
        "CLINIC_NAME": settings.CLINIC_NAME,
        "CLINIC_BOOKING_URL": settings.CLINIC_BOOKING_URL,
        "CLINIC_LOGO": logo_url(),
        # Exactly the text whose hash the CSP allows (settings.CLINIC_BRAND_CSS).
        "CLINIC_BRAND_CSS": mark_safe(settings.CLINIC_BRAND_CSS),
    }


def languages(request) -> dict:
    """The language switch of every public page and, on a page with an address per language,
    those addresses (``<link rel="alternate" hreflang>``). No query."""
    from clinic.i18n import page_in, page_kind, switch_links
    from gallery.cache import known_params

    here = request.path_info
    params = known_params(request)
    query = f"?{urlencode(params)}" if params else ""
    alternates = []
    if page_kind(here) == "translated":
        alternates = [
            {"code": code, "url": request.build_absolute_uri(page_in(here, code) + query)}
            for code, _ in settings.LANGUAGES
        ]
        default = next(a for a in alternates if a["code"] == settings.LANGUAGE_CODE)
        alternates.append({"code": "x-default", "url": default["url"]})
    return {
        "LANGUAGE_SWITCH": switch_links(request, params),
        "LANGUAGE_ALTERNATES": alternates,
        "OG_LOCALE": translation.to_locale(translation.get_language() or settings.LANGUAGE_CODE),
    }
