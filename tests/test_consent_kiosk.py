"""Patient mode: staff hand the tablet to one patient. Until the staff member's password is
given, every address leads back to that patient's form: no staff page, no other patient."""

import re

import pytest
from axes.models import AccessAttempt
from django.core.files.storage import storages
from django.urls import get_resolver

from consent.models import Consent, ConsentEvent, ConsentForm
from tests.conftest import make_consent, make_patient, make_user
from tests.test_access_matrix import fill, walk, world  # noqa: F401 (world is a fixture)
from tests.test_consent_capture import form_data, signature_png

pytestmark = pytest.mark.django_db

KIOSK = "/staff/consents/kiosk/"
UNLOCK = "/staff/consents/kiosk/unlock/"
PASSWORD = "correct-horse-battery"  # make_user's


@pytest.fixture
def officer(client):
    user = make_user("officer", groups=["Consent officers"], is_staff=True)
    client.force_login(user)
    return user


@pytest.fixture
def patients():
    a = make_patient(full_name="Ada Kioskpatient", reference="P-A1")
    b = make_patient(full_name="Bea Otherpatient", reference="P-B2")
    make_consent(b)
    return a, b


def hand_over(client, patient, **data):
    response = client.post(f"/staff/consents/kiosk/start/{patient.pk}/", data)
    assert response.status_code == 302 and response["Location"] == KIOSK
    return response


def assert_not_stored(response):
    assert {"no-store", "private"} <= {
        d.strip() for d in response.get("Cache-Control", "").split(",")
    }


def assert_shows_no_staff_page(html: str, other) -> None:
    assert other.full_name not in html and other.reference not in html
    assert 'aria-label="Staff"' not in html and "Log out" not in html
    assert "/staff/consents/patients/" not in html and 'href="/staff/"' not in html


def test_the_kiosk_page_shows_the_form_to_this_patient_only(client, officer, patients, settings):
    a, b = patients
    hand_over(client, a)
    page = client.get(KIOSK)
    html = page.content.decode()
    assert page.status_code == 200
    assert a.full_name in html and settings.CLINIC_NAME in html
    assert "right to withdraw" in html.lower()  # the form text itself
    assert 'id="signature-pad"' in html and "checked" not in html
    assert_shows_no_staff_page(html, b)
    assert_not_stored(page)
    unlock = client.get(UNLOCK).content.decode()
    assert "officer" in unlock
    assert_shows_no_staff_page(unlock, b)


def test_every_address_leads_back_to_the_kiosk_while_locked(client, officer, world):  # noqa: F811
    other = world["patient"]
    mine = make_patient(full_name="Ada Kioskpatient")
    hand_over(client, mine)
    walked = 0
    for pattern, name, _ in walk(get_resolver()):
        if name in ("consent:kiosk", "consent:kiosk-unlock"):
            continue
        path = fill(pattern, name, world)
        for method in ("get", "post", "head"):
            response = getattr(client, method)(path)
            assert (response.status_code, response.get("Location")) == (302, KIOSK), (
                f"{method} {path} ({name})"
            )
            assert_not_stored(response)
            assert other.full_name not in response.content.decode()
        walked += 1
    assert walked > 60
    # Staff pages beyond the URL configuration's names: the admin's, a typed address.
    for path in ["/admin/", "/staff/consents/?q=Patient", "/no/such/page/", "/staff/logout/"]:
        assert client.get(path)["Location"] == KIOSK
    # Still the same patient's form: the flag is held by the server, not the page.
    assert mine.full_name in client.get(KIOSK).content.decode()


def test_signing_in_patient_mode_records_the_consent_as_the_staff_page_does(
    client, officer, patients
):
    a, b = patients
    hand_over(client, a)
    response = client.post(KIOSK, form_data(signed_by_name=a.full_name))
    assert response.status_code == 302 and response["Location"] == KIOSK
    consent = Consent.objects.get(patient=a)
    assert consent.recorded_by == officer and consent.form.version == "2026-1"
    assert consent.allow_website and consent.allow_education and not consent.allow_social
    assert consent.is_active and consent.signed_by_name == a.full_name
    assert consent.signature.name.endswith(".png")
    assert storages["default"].exists(consent.signature.name)
    assert list(consent.events.values_list("kind", "actor")) == [("granted", officer.pk)]
    thanks = client.get(KIOSK).content.decode()
    assert "Thank you" in thanks and "hand the tablet back" in thanks
    assert_shows_no_staff_page(thanks, b)
    # Still locked; a second submission records nothing more.
    assert client.get(f"/staff/consents/{consent.pk}/")["Location"] == KIOSK
    assert client.post(KIOSK, form_data())["Location"] == KIOSK
    assert Consent.objects.filter(patient=a).count() == 1


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"signature_data": ""}, "Sign in the signature box."),
        ({"signature_data": signature_png(blank=True)}, "The signature pad is empty."),
        ({"signature_data": "data:image/png;base64,!!!"}, "could not be read"),
        ({"allow_website": None}, "Choose yes or no."),
        ({"expires_at": "2001-01-01"}, "The end date must be in the future."),
    ],
)
def test_an_incomplete_form_is_shown_again_with_a_clear_message(
    client, officer, patients, overrides, message
):
    a, _ = patients
    hand_over(client, a)
    response = client.post(KIOSK, form_data(**overrides))
    assert response.status_code == 200 and message in response.content.decode()
    assert not Consent.objects.filter(patient=a).exists()


def test_a_wrong_password_stays_in_patient_mode(client, officer, patients):
    a, b = patients
    hand_over(client, a)
    page = client.post(UNLOCK, {"password": "guess"})
    assert page.status_code == 200 and "not right" in page.content.decode()
    assert_shows_no_staff_page(page.content.decode(), b)
    assert client.post(UNLOCK, {}).status_code == 200  # no password at all
    assert client.get("/staff/consents/")["Location"] == KIOSK
    # Counted as failed log-ins are.
    assert AccessAttempt.objects.get(username="officer").failures_since_start == 2


def test_another_staff_members_password_does_not_unlock(client, officer, patients):
    a, _ = patients
    colleague = make_user("colleague", groups=["Consent officers"])
    colleague.set_password("colleagues-own-secret")
    colleague.save()
    hand_over(client, a)
    client.post(UNLOCK, {"password": "colleagues-own-secret"})
    assert client.get("/staff/consents/")["Location"] == KIOSK


def test_the_right_password_ends_patient_mode(client, officer, patients):
    a, b = patients
    hand_over(client, a)
    unlocked = client.post(UNLOCK, {"password": PASSWORD})
    assert unlocked.status_code == 302 and unlocked["Location"] == f"/staff/consents/new/{a.pk}/"
    page = client.get("/staff/consents/")
    assert page.status_code == 200 and b.full_name in page.content.decode()
    assert client.get(KIOSK)["Location"] == "/staff/consents/"  # no patient mode any more


def test_after_signing_the_right_password_opens_the_recorded_consent(client, officer, patients):
    a, _ = patients
    hand_over(client, a)
    client.post(KIOSK, form_data())
    consent = Consent.objects.get(patient=a)
    unlocked = client.post(UNLOCK, {"password": PASSWORD}, follow=True)
    assert unlocked.redirect_chain[-1][0] == f"/staff/consents/{consent.pk}/"
    assert "Patient mode ended" in unlocked.content.decode()


def test_the_session_key_changes_when_patient_mode_starts_and_ends(client, officer, patients):
    # A new cookie makes the browser drop the staff pages it kept for the back button.
    a, _ = patients
    before = client.session.session_key
    hand_over(client, a)
    during = client.session.session_key
    client.post(UNLOCK, {"password": PASSWORD})
    assert len({before, during, client.session.session_key}) == 3


@pytest.mark.parametrize("axes", [True, False])
def test_five_wrong_passwords_log_the_staff_member_out(client, officer, patients, settings, axes):
    settings.AXES_ENABLED = axes
    a, b = patients
    hand_over(client, a)
    for _ in range(4):
        assert client.post(UNLOCK, {"password": "guess"}).status_code == 200
    last = client.post(UNLOCK, {"password": "guess"})
    html = last.content.decode()
    assert b.full_name not in html and a.full_name not in html
    assert 'aria-label="Staff"' not in html and "Log out" not in html
    if axes:
        # The log-in lock-out: the same five failures lock the account from this address.
        assert last.status_code == 429 and "Too many failed log-ins" in html
        again = client.post("/staff/login/", {"username": "officer", "password": PASSWORD})
        assert again.status_code == 429
    else:
        assert last.status_code == 302 and "/staff/login/" in last["Location"]
    # Logged out: the tablet shows no staff page and no patient mode.
    response = client.get("/staff/consents/")
    assert response.status_code == 302 and "/staff/login/" in response["Location"]
    assert "_auth_user_id" not in client.session


def test_kiosk_pages_without_patient_mode_lead_to_the_consent_list(client, officer):
    assert client.get(KIOSK)["Location"] == "/staff/consents/"
    assert client.get(UNLOCK)["Location"] == "/staff/consents/"
    assert client.post(UNLOCK, {"password": PASSWORD})["Location"] == "/staff/consents/"


def test_only_staff_who_may_record_consents_can_hand_over(client, patients):
    a, _ = patients
    client.force_login(make_user(groups=["Reviewers"]))
    assert client.post(f"/staff/consents/kiosk/start/{a.pk}/").status_code == 403
    assert client.get("/staff/consents/").status_code == 200
    assert client.post("/staff/consents/kiosk/start/999999/").status_code == 403


def test_a_missing_patient_is_a_404(client, officer):
    assert client.post("/staff/consents/kiosk/start/999999/").status_code == 404
    assert client.get("/staff/consents/").status_code == 200


def test_the_staff_capture_page_offers_the_hand_over(client, officer, patients):
    a, _ = patients
    html = client.get(f"/staff/consents/new/{a.pk}/").content.decode()
    assert f'action="/staff/consents/kiosk/start/{a.pk}/"' in html and "Hand to patient" in html


def test_visitors_without_a_session_are_not_affected(client):
    assert client.get(KIOSK)["Location"].startswith("/staff/login/")
    assert ConsentEvent.objects.count() == 0


# --- the patient's language ----------------------------------------------------------------

SPANISH = '<html lang="es">'


def addresses(html: str) -> set[str]:
    """Every address a page links to or sends a form to."""
    return set(re.findall(r'(?:href|action|src)="([^"]*)"', html))


def test_staff_hand_over_the_text_in_the_language_chosen_on_the_capture_page(
    client, officer, patients
):
    a, b = patients
    capture = client.get(f"/staff/consents/new/{a.pk}/?language=es").content.decode()
    hand_over_form = capture[capture.index('class="hand-over"') :].split("</form>")[0]
    assert '<input type="hidden" name="language" value="es">' in hand_over_form
    hand_over(client, a, language="es")
    page = client.get(KIOSK)
    html = page.content.decode()
    title, body = ConsentForm.objects.get(version="2026-1").text("es")
    assert SPANISH in html and page["Content-Language"] == "es"
    assert title in html and "Su derecho a retirarlo" in html  # the form text in Spanish
    assert "right to withdraw" not in html.lower()
    for words in [
        f"Consentimiento para las fotos de {a.full_name}",
        "¿Dónde puede usar la clínica sus fotos?",  # the page's own words
        "¿Tiene el paciente (la persona de las fotos) 18 años o más?",  # the form's labels
        " Sí</label>",  # the choices
        "Firmar y enviar mis respuestas",
        "Personal: desbloquear",
        '<input type="hidden" name="language" value="es">',
    ]:
        assert words in html, words
    assert_shows_no_staff_page(html, b)
    # The errors are in Spanish too.
    wrong = client.post(KIOSK, form_data(language="es", signature_data="", allow_website=None))
    html = wrong.content.decode()
    assert wrong.status_code == 200 and SPANISH in html
    assert "Faltan algunas respuestas." in html and "Elija sí o no." in html
    assert not Consent.objects.filter(patient=a).exists()
    wrong = client.post(KIOSK, form_data(language="es", signature_data=""))
    assert "Firme dentro del recuadro de firma." in wrong.content.decode()
    # Signed: the consent keeps the language and the very text shown.
    assert client.post(KIOSK, form_data(language="es"))["Location"] == KIOSK
    consent = Consent.objects.get(patient=a)
    assert consent.language == "es" and consent.signed_text == f"{title}\n\n{body}"
    assert consent.events.get(kind="granted").details["language"] == "es"
    thanks = client.get(KIOSK).content.decode()
    assert SPANISH in thanks and f"Gracias, {a.full_name}" in thanks
    assert "devuelva la tableta" in thanks


def test_the_patient_switches_the_language_without_leaving_patient_mode(client, officer, patients):
    a, b = patients
    hand_over(client, a)  # no language chosen: the default
    html = client.get(KIOSK).content.decode()
    assert '<html lang="en">' in html and "Sign and give my answers" in html
    # The switch is a link to the kiosk page itself; nothing on the page leads elsewhere.
    assert 'href="?language=es"' in html
    for address in addresses(html):
        assert address.startswith(("?language=", "/static/", KIOSK, "#")), address
    switched = client.get(KIOSK + "?language=es")
    assert (switched.status_code, switched["Location"]) == (302, KIOSK)
    assert_not_stored(switched)
    html = client.get(KIOSK).content.decode()
    assert SPANISH in html and "Firmar y enviar mis respuestas" in html
    assert 'href="?language=en"' in html and 'aria-current="true">Español<' in html
    for address in addresses(html):
        assert address.startswith(("?language=", "/static/", KIOSK, "#")), address
    # Still patient mode: every other address, the site's own language switch included,
    # leads back to the kiosk, now in Spanish.
    for path in [
        "/language/es/?next=/staff/consents/",
        "/es/",
        "/staff/consents/",
        f"/staff/consents/patients/{b.pk}/",
        KIOSK + "../",
    ]:
        response = client.get(path)
        assert (response.status_code, response["Location"]) == (302, KIOSK), path
    # A language the form has no text in changes nothing.
    assert client.get(KIOSK + "?language=xx")["Location"] == KIOSK
    assert client.get(KIOSK + "?language=")["Location"] == KIOSK
    assert SPANISH in client.get(KIOSK).content.decode()
    # Back to English, and signed in English.
    client.get(KIOSK + "?language=en")
    client.post(KIOSK, form_data(language="en"))
    consent = Consent.objects.get(patient=a)
    assert consent.language == "en" and "right to withdraw" in consent.signed_text.lower()
    # Once signed, the switch changes nothing: the thanks stay in the language signed.
    assert client.get(KIOSK + "?language=es")["Location"] == KIOSK
    assert "Thank you" in client.get(KIOSK).content.decode()
    assert client.get("/staff/consents/")["Location"] == KIOSK


def test_a_language_the_form_lacks_at_hand_over_falls_back_to_the_default(
    client, officer, patients
):
    a, _ = patients
    hand_over(client, a, language="fr")
    assert '<html lang="en">' in client.get(KIOSK).content.decode()
    client.post(KIOSK, form_data(language="fr"))
    assert Consent.objects.get(patient=a).language == "en"
