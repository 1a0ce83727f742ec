from django.conf import settings
from django.templatetags.static import static
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
