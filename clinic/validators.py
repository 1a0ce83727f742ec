"""Validators for text that travels beyond the page it was typed into."""

from django.core.exceptions import ValidationError

# A chart reference ends up in file names (the evidence download), headers and CSV
# exports: a quote, a slash or a line break there would cut or redirect what follows.
REFERENCE_FORBIDDEN = "\"'`/\\"


def validate_patient_reference(value: str) -> None:
    """A patient reference is one line of printable text without quotes or slashes.

    ``str.isprintable`` already refuses line breaks, tabs, other control characters
    and invisible formatting characters (such as right-to-left overrides).
    """
    if not value.isprintable() or any(c in REFERENCE_FORBIDDEN for c in value):
        raise ValidationError(
            "A reference may use letters, digits, spaces and punctuation, "
            "but no quotes, slashes or line breaks.",
            code="invalid_reference",
        )
    if value != value.strip():
        raise ValidationError(
            "A reference may not start or end with a space.", code="invalid_reference"
        )
