"""The clinic's look: brand and accent colours as CSS custom properties, and the WCAG
contrast arithmetic the start-up check uses to refuse unreadable choices.

Plain functions with no Django import: settings.py builds the brand stylesheet here and
allows it in the CSP by its hash (public pages are cached whole, so a per-request nonce
cannot be used for it).
"""

import base64
import hashlib
import re

DEFAULT_BRAND = "#0b5d66"  # deep teal
DEFAULT_ACCENT = "#8c4a2f"  # warm bronze
# Text on the brand and accent colours (buttons, the call to action) is white, and the
# page they are links on is white too: one contrast covers both.
TEXT_ON_COLOUR = "#ffffff"
MIN_CONTRAST = 4.5  # WCAG 2.x AA for body text

_HEX = re.compile(r"#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})")


def parse_hex(value: str) -> tuple[int, int, int] | None:
    """(r, g, b) of a #rgb or #rrggbb colour, None for anything else."""
    value = (value or "").strip()
    if not _HEX.fullmatch(value):
        return None
    digits = value[1:]
    if len(digits) == 3:
        digits = "".join(d * 2 for d in digits)
    return tuple(int(digits[i : i + 2], 16) for i in (0, 2, 4))


def relative_luminance(rgb: tuple[int, int, int]) -> float:
    """WCAG 2.x relative luminance."""

    def channel(c: int) -> float:
        c = c / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(c) for c in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast_ratio(a: str, b: str) -> float:
    """WCAG contrast ratio of two hex colours, from 1 to 21."""
    la, lb = sorted((relative_luminance(parse_hex(a)), relative_luminance(parse_hex(b))))
    return (lb + 0.05) / (la + 0.05)


def normalised(value: str, default: str) -> str:
    """The colour as #rrggbb, or the default when it is not a hex colour (the system
    check reports it; nothing else but a hex colour may reach the stylesheet)."""
    rgb = parse_hex(value)
    if rgb is None:
        rgb = parse_hex(default)
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def brand_css(brand: str, accent: str) -> str:
    """The custom properties site.css builds on."""
    brand = normalised(brand, DEFAULT_BRAND)
    accent = normalised(accent, DEFAULT_ACCENT)
    return (
        f":root{{--brand:{brand};--brand-ink:{TEXT_ON_COLOUR};"
        f"--accent:{accent};--accent-ink:{TEXT_ON_COLOUR}}}"
    )


def csp_hash(text: str) -> str:
    """The CSP source that allows an inline element with exactly this text."""
    digest = base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()
    return f"'sha256-{digest}'"
