"""Patient mode: staff hand the tablet to one patient, who reads the consent form and signs.

The mode is a flag in the staff member's server-side session, bound to one patient and one
form version. While it is set, ``KioskMiddleware`` answers every other address with a
redirect to the kiosk page, so the back button, a typed address or a bookmark reaches no
staff page and no other patient: nothing depends on links being hidden. Only the password
of the staff member whose session it is ends the mode (``views.kiosk_unlock``).
"""

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse

from consent.models import Consent, ConsentForm, Patient

SESSION_KEY = "consent_kiosk"


def start(request: HttpRequest, patient: Patient, form: ConsentForm, language: str) -> None:
    """Patient mode for ``patient`` and ``form``, the text in ``language`` (one of the
    form's, as staff chose it on the capture page; the patient may switch it)."""
    # A new session key, so the session cookie changes: a browser that keeps no-store
    # pages in its back-forward cache (Chrome may) drops them when the cookies change, so
    # the back button cannot restore the staff page the tablet came from out of memory.
    request.session.cycle_key()
    request.session[SESSION_KEY] = {
        "patient": patient.pk,
        "form": form.pk,
        "language": language,
        "consent": None,
        "failures": 0,
    }


def state(request: HttpRequest) -> dict | None:
    return request.session.get(SESSION_KEY)


def language(mode: dict, form: ConsentForm) -> str:
    """The language the patient reads the form in: the one chosen, if the form has it."""
    chosen = mode.get("language")
    return chosen if chosen in form.languages else form.languages[0]


def choose_language(request: HttpRequest, language: str) -> None:
    mode = request.session[SESSION_KEY]
    request.session[SESSION_KEY] = {**mode, "language": language}


def signed(request: HttpRequest, consent: Consent) -> None:
    mode = request.session[SESSION_KEY]
    request.session[SESSION_KEY] = {**mode, "consent": consent.pk, "language": consent.language}


def failed_unlock(request: HttpRequest) -> int:
    """Count a wrong password; the number of wrong passwords in this patient mode."""
    mode = request.session[SESSION_KEY]
    failures = mode["failures"] + 1
    request.session[SESSION_KEY] = {**mode, "failures": failures}
    return failures


def end(request: HttpRequest) -> None:
    request.session.pop(SESSION_KEY, None)
    request.session.cycle_key()


def kiosk_paths() -> set[str]:
    return {reverse("consent:kiosk"), reverse("consent:kiosk-unlock")}


class KioskMiddleware:
    """In patient mode, every address but the kiosk's own pages leads back to the kiosk."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        # Without a session cookie there is no patient mode, and a visitor's request does
        # not load a session (nor gain Vary: Cookie) for nothing.
        if (
            settings.SESSION_COOKIE_NAME in request.COOKIES
            and SESSION_KEY in request.session
            and request.path not in kiosk_paths()
        ):
            response = redirect("consent:kiosk")
            response["Cache-Control"] = "no-store, private"
            return response
        return self.get_response(request)
