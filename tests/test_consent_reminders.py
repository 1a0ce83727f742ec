"""Reminders before a consent ends: emailed through a real SMTP server (aiosmtpd, started
here on the loopback) and read back; each reminder once; a call list for the rest."""

import email
import email.policy
import re
import socket
from datetime import timedelta
from io import StringIO

import pytest
from aiosmtpd.controller import Controller
from django.core.management import CommandError, call_command
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django.utils.formats import date_format

from consent.models import (
    ConsentEvent,
    ConsentForm,
    ConsentReminder,
    consent_for_renewal_token,
    consent_for_token,
    record_consent,
)
from consent.reminders import reminders_due, send_consent_reminders
from tests.conftest import make_case, make_consent, make_patient, make_user

SITE = "http://testserver"
pytestmark = pytest.mark.django_db

LINK = re.compile(r"http://testserver(/consent/[A-Za-z0-9_-]+/)")


class Inbox:
    """An aiosmtpd handler that keeps every message it accepts."""

    def __init__(self):
        self.messages: list[email.message.EmailMessage] = []

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        message["X-Rcpt-To"] = ", ".join(envelope.rcpt_tos)
        self.messages.append(message)
        return "250 Message accepted"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def smtp_at(settings, port: int) -> None:
    settings.MAILERS = {
        "default": {
            "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "OPTIONS": {"host": "127.0.0.1", "port": port, "timeout": 10},
        }
    }


@pytest.fixture
def inbox(settings):
    """A real SMTP server on a free loopback port, Django's mail pointed at it."""
    handler = Inbox()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    smtp_at(settings, controller.port)
    settings.SITE_URL = SITE
    settings.CLINIC_NAME = "Harbour Skin Clinic"
    handler.port = controller.port
    try:
        yield handler
    finally:
        controller.stop()


def run() -> str:
    out = StringIO()
    call_command("send_consent_reminders", stdout=out)
    return out.getvalue()


def ending_in(days: float, **kw):
    patient = kw.pop("patient", None) or make_patient(email=kw.pop("email", "ada@example.com"))
    return make_consent(patient, expires_at=timezone.now() + timedelta(days=days), **kw)


def parts(message) -> tuple[str, str]:
    text = message.get_body(preferencelist=("plain",)).get_content()
    html = message.get_body(preferencelist=("html",)).get_content()
    return text, html


def renewal_path(message) -> str:
    text, html = parts(message)
    (path,) = set(LINK.findall(text))
    assert f'href="{SITE}{path}"' in html
    return path


def test_a_patient_is_reminded_30_and_7_days_before_their_consent_ends_once_each(inbox, client):
    case = make_case(consent=None, patient=make_patient(email="ada@example.com"))
    consent = case.consent
    consent.expires_at = timezone.now() + timedelta(days=20)
    consent.save(update_fields=["expires_at"])

    out = run()
    assert len(inbox.messages) == 1
    assert f"{consent.patient.reference} {consent.patient.full_name}" in out
    assert "1 reminder(s) emailed, 0 patient(s) to call" in out

    message = inbox.messages[0]
    ends = date_format(timezone.localtime(consent.expires_at), "j F Y")
    assert message["Subject"] == f"Your photo consent with Harbour Skin Clinic ends on {ends}"
    assert message["X-Rcpt-To"] == "ada@example.com"
    assert message.get_content_type() == "multipart/alternative"
    text, html = parts(message)
    for body in (text, html):
        assert consent.patient.full_name in body and ends in body and "clinic website" in body
    # No health detail anywhere: not the treatment, not the concern.
    raw = message.as_string().lower()
    assert "microneedling" not in raw and "acne" not in raw
    path = renewal_path(message)
    page = client.get(path)
    assert page.status_code == 200
    assert "Renew your photo consent" in page.text and ends in page.text

    assert run().endswith("0 reminder(s) emailed, 0 patient(s) to call, 0 not sent.\n")
    assert len(inbox.messages) == 1

    # Thirteen days on, the consent ends within 7 days.
    consent.expires_at = timezone.now() + timedelta(days=6)
    consent.save(update_fields=["expires_at"])
    run()
    run()
    assert len(inbox.messages) == 2
    second = renewal_path(inbox.messages[1])
    assert second != path and client.get(second).status_code == 200
    assert [r.days for r in consent.reminders.all()] == [30, 7]
    assert [e.details for e in consent.events.filter(kind=ConsentEvent.Kind.REMINDER_EMAILED)] == [
        {"days": 30},
        {"days": 7},
    ]


def test_a_consent_first_seen_inside_the_last_week_gets_only_the_7_day_reminder(inbox):
    consent = ending_in(3)
    run()
    run()
    assert len(inbox.messages) == 1
    assert [r.days for r in consent.reminders.all()] == [7]


def test_the_renewal_link_opens_only_the_renewal_of_its_own_consent(inbox, client):
    consent = ending_in(10)
    other = ending_in(12, email="bo@example.com")
    run()
    mine, theirs = (renewal_path(m) for m in inbox.messages)
    token = mine.split("/")[2]

    assert consent_for_renewal_token(token) == consent
    assert consent_for_renewal_token(theirs.split("/")[2]) == other
    # It is not the patient's private link: no cases, no withdrawal.
    assert consent_for_token(token) is None
    page = client.get(mine)
    assert page["Cache-Control"] == "no-store, private"
    assert "/withdraw/" not in page.text and "Your photos on the website" not in page.text
    assert client.get(mine + "withdraw/").status_code == 404
    assert client.post(mine + "withdraw/").status_code == 404
    consent.refresh_from_db()
    assert consent.withdrawn_at is None
    assert client.get(mine[:-3] + ("a" if mine[-2] != "a" else "b") + "/").status_code == 404

    # Renewed by a newer consent, the link has done its work.
    record_consent(
        consent.patient,
        ConsentForm.objects.get(version="2026-1"),
        make_user(),
        None,
        signed_by_name="Ada",
        expires_at=timezone.now() + timedelta(days=365),
        allow_website=True,
        patient_is_adult=True,
    )
    assert client.get(mine).status_code == 404
    # Withdrawn, likewise.
    other.withdraw()
    assert client.get(theirs).status_code == 404


def test_the_renewal_link_outlives_the_end_of_the_consent_only_by_the_grace_period(inbox):
    consent = ending_in(5)
    run()
    token = renewal_path(inbox.messages[0]).split("/")[2]
    end = consent.expires_at
    assert consent_for_renewal_token(token, at=end + timedelta(days=29)) == consent
    assert consent_for_renewal_token(token, at=end + timedelta(days=30)) is None


def test_no_reminder_for_withdrawn_superseded_expired_or_distant_consents(inbox):
    ending_in(10).withdraw()
    patient = make_patient(email="cy@example.com")
    old = ending_in(10, patient=patient, signed_at=timezone.now() - timedelta(days=400))
    record_consent(
        patient,
        ConsentForm.objects.get(version="2026-1"),
        make_user(),
        None,
        signed_by_name="Cy",
        expires_at=timezone.now() + timedelta(days=365),
        allow_website=True,
        patient_is_adult=True,
    )
    old.refresh_from_db()
    assert old.superseded_at is not None
    ending_in(-1, signed_at=timezone.now() - timedelta(days=400))
    ending_in(31)

    assert run().endswith("0 reminder(s) emailed, 0 patient(s) to call, 0 not sent.\n")
    assert inbox.messages == []
    assert not ConsentReminder.objects.exists()


def test_a_patient_without_email_is_listed_for_a_call_once_per_stage(inbox, client):
    consent = ending_in(20, email="")
    out = run()
    assert "To call, no email address (1):" in out
    assert f"{consent.patient.reference} {consent.patient.full_name}: consent {consent.pk}" in out
    assert "0 reminder(s) emailed, 1 patient(s) to call" in out
    assert consent.patient.full_name not in run()
    assert inbox.messages == []
    assert consent.events.filter(kind=ConsentEvent.Kind.REMINDER_CALL).count() == 1

    client.force_login(make_user(groups=["Consent officers"]))
    page = client.get("/staff/consents/").text
    ending_soon = page[page.index('id="ending-soon"') :]
    assert consent.patient.reference in ending_soon
    assert "No email address: call the patient" in ending_soon
    assert "listed for a call" in ending_soon


def test_the_ending_soon_list_reads_the_reminders_in_one_query(inbox, client):
    client.force_login(make_user(groups=["Consent officers"]))
    ending_in(20)
    client.get("/staff/consents/")
    with CaptureQueriesContext(connection) as one:
        client.get("/staff/consents/")
    for days in (5, 15, 25):
        ending_in(days, email="" if days == 15 else "x@example.com")
    run()
    with CaptureQueriesContext(connection) as four:
        page = client.get("/staff/consents/")
    assert len(four) == len(one)
    rows = page.text[page.text.index('class="ending-soon"') :]
    assert rows.count("(30 days before)") == 3 and rows.count("(7 days before)") == 1
    assert rows.count("listed for a call") == 1


def test_two_runs_at_once_send_each_reminder_once(inbox):
    consent = ending_in(20)
    due = reminders_due()
    assert due == [(consent, 30)]
    # Both runs saw the reminder due before either sent it.
    first = send_consent_reminders(SITE, due)
    second = send_consent_reminders(SITE, due)
    assert (len(first.emailed), len(second.emailed)) == (1, 0)
    assert len(inbox.messages) == 1
    with pytest.raises(IntegrityError), transaction.atomic():
        ConsentReminder.objects.create(consent=consent, days=30, channel="phone")


def test_a_reminder_the_mail_server_refused_is_tried_again_on_the_next_run(inbox, settings):
    consent = ending_in(20)
    smtp_at(settings, free_port())  # nothing listens there
    with pytest.raises(CommandError, match="1 reminder"):
        run()
    assert not consent.reminders.exists()
    assert not consent.events.filter(kind=ConsentEvent.Kind.REMINDER_EMAILED).exists()

    smtp_at(settings, inbox.port)
    run()
    assert len(inbox.messages) == 1 and consent.reminders.count() == 1


def test_without_the_site_address_the_command_says_what_to_set(inbox, settings):
    ending_in(20)
    settings.SITE_URL = ""
    with pytest.raises(CommandError, match="SITE_URL must be the site's address"):
        run()
    assert not ConsentReminder.objects.exists()


def test_a_consent_withdrawn_after_the_run_listed_it_gets_no_reminder(inbox):
    consent = ending_in(20)
    due = reminders_due()
    consent.withdraw()
    assert send_consent_reminders(SITE, due).emailed == []
    assert inbox.messages == [] and not ConsentReminder.objects.exists()


def test_the_renewal_link_renews_by_signing_and_then_says_thank_you(inbox, client):
    from tests.test_patient_renewal import signature

    consent = ending_in(10)
    consent.patient.full_name = "Ada Lovelace"
    consent.patient.save(update_fields=["full_name"])
    run()
    path = renewal_path(inbox.messages[0])
    form = client.get(path).text
    assert "Sign and renew" in form and "Go back without renewing" not in form
    unsigned = client.post(path, {"replaces": consent.pk, "signed_by_name": "Ada Lovelace"})
    assert unsigned.status_code == 200 and "sign in the box" in unsigned.text
    assert consent.patient.consent_in_force() == consent
    response = client.post(
        path,
        {
            "replaces": consent.pk,
            "allow_website": "on",
            "identifiable": "on",
            "signed_by_name": "ada lovelace",
            "signature_data": signature(),
        },
    )
    renewed = consent.patient.consent_in_force()
    assert renewed != consent and renewed.expires_at > consent.expires_at
    assert response.status_code == 200 and "your consent is renewed" in response.text
    assert response["Cache-Control"] == "no-store, private"
    assert "/withdraw/" not in response.text
    # The link has done its work; the patient's own link is untouched by it.
    assert client.get(path).status_code == 404
    assert client.post(path, {"replaces": renewed.pk}).status_code == 404


def test_a_consent_signed_in_spanish_gets_its_reminder_in_spanish(inbox, client):
    patient = make_patient(email="lucia@example.com", full_name="Lucía Pérez")
    consent = ending_in(20, patient=patient, language="es", allow_social=True)
    english = ending_in(20, email="ada@example.com")
    run()
    assert len(inbox.messages) == 2
    (message,) = [m for m in inbox.messages if m["X-Rcpt-To"] == "lucia@example.com"]
    day = timezone.localtime(consent.expires_at)
    months = ["enero", "febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto"]
    months += ["septiembre", "octubre", "noviembre", "diciembre"]
    ends = f"{day.day} de {months[day.month - 1]} de {day.year}"
    assert (
        message["Subject"]
        == f"Su consentimiento para las fotos con Harbour Skin Clinic termina el {ends}"
    )
    text, html = parts(message)
    assert '<html lang="es">' in html
    for body in (text, html):
        assert "Estimado/a Lucía Pérez:" in body
        assert "Autoriza: sitio web de la clínica, redes sociales." in body
        assert "Si no hace nada, la clínica dejará de usar las fotos" in body
        words = re.sub(r"http\S+", "", body)  # the link's path is not a word
        assert not re.search(r"\b(Dear|consent|photos)\b", words) and ends in body
    assert "<strong>" + ends + "</strong>" in html and "Renovar mi consentimiento" in html
    # The link remembers the language and opens the renewal page in Spanish, whatever the
    # browser prefers.
    (link,) = set(re.findall(r"http://testserver(/language/es/\?next=/consent/[\w-]+/)", text))
    assert f'href="{SITE}{link}"' in html
    opened = client.get(link, HTTP_ACCEPT_LANGUAGE="en", follow=True)
    assert opened.redirect_chain[0][0].startswith("/consent/") and opened.status_code == 200
    assert '<html lang="es">' in opened.text and "Renovar su consentimiento" in opened.text
    # The English consent's reminder stays as it was: English, the plain link.
    (other,) = [m for m in inbox.messages if m["X-Rcpt-To"] == "ada@example.com"]
    assert other["Subject"].startswith("Your photo consent with Harbour Skin Clinic ends on")
    assert renewal_path(other).startswith("/consent/")
    assert english.reminders.count() == 1
