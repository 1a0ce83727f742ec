"""Start-up checks of the clinic's own settings."""

from django.conf import settings
from django.core import checks

from clinic.branding import MIN_CONTRAST, TEXT_ON_COLOUR, contrast_ratio, parse_hex


@checks.register
def brand_colours_are_readable(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """The brand and accent colours carry white text (buttons, the call to action) and are
    the colour of links on the white page: both must reach WCAG AA against white."""
    errors = []
    for name in ("CLINIC_BRAND_COLOUR", "CLINIC_ACCENT_COLOUR"):
        value = getattr(settings, name, "")
        if parse_hex(value) is None:
            errors.append(
                checks.Error(
                    f"{name} must be a hex colour such as #0b5d66, not {value!r}.",
                    id="clinic.E001",
                )
            )
            continue
        ratio = contrast_ratio(value, TEXT_ON_COLOUR)
        if ratio < MIN_CONTRAST:
            errors.append(
                checks.Error(
                    f"{name} {value} is unreadable: white text on it, and it as text on the "
                    f"white page, have a contrast of {ratio:.2f}:1; text needs at least "
                    f"{MIN_CONTRAST}:1 (WCAG AA).",
                    hint="Choose a darker shade of the colour.",
                    id="clinic.E002",
                )
            )
    return errors
