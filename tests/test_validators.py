"""Patient references are one plain line: safe in a file name, a header or an export."""

import pytest
from django.core.exceptions import ValidationError

from clinic.validators import validate_patient_reference


@pytest.mark.parametrize("reference", ["P-00042", "MRN 2026.17", "Ünal-3", "A_1 (b)", "診療-7"])
def test_ordinary_references_are_accepted(reference):
    validate_patient_reference(reference)


@pytest.mark.parametrize(
    "reference",
    [
        'P-1"; filename="x.exe',
        "P-1'",
        "P-`1`",
        "P-1\r\nSet-Cookie: x=1",
        "P-1\n",
        "P-1\tA",
        "P-1\x00",
        "../P-1",
        "P\\1",
        "P-1\u202egpj.exe",  # right-to-left override
        " P-1",
        "P-1 ",
    ],
)
def test_references_with_quotes_slashes_or_control_characters_are_refused(reference):
    with pytest.raises(ValidationError) as refused:
        validate_patient_reference(reference)
    assert refused.value.code == "invalid_reference"
