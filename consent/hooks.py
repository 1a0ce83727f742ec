"""What other apps hold under a patient's consent, told to the consent app's pages.

The consent officer's pages and the evidence bundle list the records kept under a consent
(the gallery's cases and their photos) without the consent app knowing what they are: an
app that keeps such records registers a source here from its ``AppConfig.ready()``.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlencode

from django.conf import settings
from django.urls import reverse


@dataclass(frozen=True)
class HeldRecord:
    label: str  # what staff recognise it by, e.g. "k3J9x2QpLm: Microneedling"
    status: str  # its own workflow status, in words
    public: bool  # shown publicly right now
    url: str = ""  # its staff page
    # One row per file for the evidence bundle's photos.csv (see EVIDENCE_COLUMNS).
    files: tuple[dict, ...] = field(default=())


EVIDENCE_COLUMNS = [
    "case",
    "treatment",
    "status",
    "role",
    "view",
    "sha256",
    "captured_at",
    "width",
    "height",
]

# The patient's own page (the app that shows their cases serves it): token -> path.
_patient_page: list[Callable[[str], str]] = []


def register_patient_page(path_for_token: Callable[[str], str]) -> None:
    _patient_page[:] = [path_for_token]


def patient_page_path(token: str, language: str | None = None) -> str:
    """The patient's private page. With a language other than the default, the path goes
    through the language switch (``/language/es/?next=…``), which remembers it: the page
    then opens in the language the patient signed in."""
    if not _patient_page:
        raise RuntimeError("No app serves the patient's page (consent.hooks).")
    path = _patient_page[0](token)
    if language is None or language == settings.LANGUAGE_CODE:
        return path
    if language not in dict(settings.LANGUAGES):
        return path
    switch = reverse("switch-language", args=[language])
    return switch + "?" + urlencode({"next": path}, safe="/")


Source = Callable[..., list[HeldRecord]]
_sources: list[Source] = []


def register(source: Source) -> Source:
    """``source(patient=…, consent=…)`` returns the records held for that patient or
    under that consent (one of the two is given)."""
    if source not in _sources:
        _sources.append(source)
    return source


def held_records(*, patient=None, consent=None) -> list[HeldRecord]:
    return [r for source in _sources for r in source(patient=patient, consent=consent)]


# Erasing a patient's photos: every app that holds records for the patient deletes them
# through its own take-down path; the consent records and their history stay.
Eraser = Callable[..., dict[str, int]]
_erasers: list[Eraser] = []


def register_eraser(eraser: Eraser) -> Eraser:
    """``eraser(patient)`` deletes what its app holds for the patient and returns counts,
    e.g. {"cases": 2, "photos": 8}."""
    if eraser not in _erasers:
        _erasers.append(eraser)
    return eraser


def erase_held_records(patient, by) -> str:
    """Withdraw the patient's consent in force (so a crash part-way can only hide, never
    show), let each app erase its records, and record what was erased on every consent
    of the patient. Returns a summary such as "2 cases, 8 photos"."""
    from consent.models import Consent, ConsentEvent, withdraw_patient_consent

    withdraw_patient_consent(
        patient, by=by, channel=Consent.Channel.ADMIN, details={"reason": "erasure"}
    )
    counts: dict[str, int] = {}
    for eraser in _erasers:
        for name, n in eraser(patient).items():
            counts[name] = counts.get(name, 0) + n
    for consent in patient.consents.all():
        ConsentEvent.record(consent, ConsentEvent.Kind.ERASED, actor=by, details=counts)
    if patient.email:
        patient.email = ""
        patient.save(update_fields=["email"])
    return ", ".join(f"{n} {name}" for name, n in counts.items()) or "nothing"
