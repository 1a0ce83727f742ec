"""Reminders before a consent ends (``manage.py send_consent_reminders``, daily by cron).

Each patient whose consent ends within 30 days, and again within 7, is emailed a renewal
link of their own; a patient without an email address is listed for the staff to call.
Every reminder is recorded once (``ConsentReminder``, unique per consent and stage) before
it leaves, so no patient gets the same reminder twice, even from two runs at once.
"""

import secrets
import smtplib
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urlsplit

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, mailers
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.formats import date_format
from django.utils.translation import gettext

from consent.hooks import patient_page_path
from consent.models import (
    Consent,
    ConsentEvent,
    ConsentReminder,
    Patient,
    hash_token,
    lock_patient_consents,
)

# Days before the end of a consent at which its patient is reminded, longest first.
REMINDER_DAYS = (30, 7)
ACTOR = "consent reminders"


@dataclass(frozen=True)
class Reminder:
    consent: Consent
    days: int
    email: str = ""


@dataclass
class ReminderReport:
    emailed: list[Reminder] = field(default_factory=list)
    to_call: list[Reminder] = field(default_factory=list)
    failed: list[tuple[Reminder, str]] = field(default_factory=list)


def reminders_due(at: datetime | None = None) -> list[tuple[Consent, int]]:
    """(consent, days) for each active consent whose reminder for the window it is in now
    has not gone yet. A consent first seen inside the 7-day window gets only that one."""
    at = at or timezone.now()
    stages = sorted(REMINDER_DAYS)
    due = [
        (consent, days)
        for i, days in enumerate(stages)
        for consent in Consent.objects.reminder_due(days, stages[i - 1] if i else 0, at)
        .select_related("patient", "form")
        .order_by("expires_at", "pk")
    ]
    return sorted(due, key=lambda item: (item[0].expires_at, item[0].pk))


def claim_reminder(consent: Consent, days: int) -> tuple[ConsentReminder, str, str] | None:
    """Record the ``days`` reminder of a consent, under the patient's consent locks (the
    ones withdrawal and renewal take), so a consent withdrawn or renewed meanwhile gets
    none. Returns (reminder, email, renewal token), the last two blank for a call; None
    when another run claimed it first or the consent no longer ends soon."""
    try:
        with transaction.atomic():
            locked = lock_patient_consents(consent.patient_id).get(consent.pk)
            if locked is None or not locked.is_active_at(timezone.now()):
                return None
            if ConsentReminder.objects.filter(consent=locked, days=days).exists():
                return None
            email = Patient.objects.values_list("email", flat=True).get(pk=consent.patient_id)
            token = secrets.token_urlsafe(32) if email else ""
            reminder = ConsentReminder.objects.create(
                consent=locked,
                days=days,
                channel=ConsentReminder.Channel.EMAIL if email else ConsentReminder.Channel.PHONE,
                token_hash=hash_token(token) if token else "",
            )
            if not email:
                ConsentEvent.record(
                    locked, ConsentEvent.Kind.REMINDER_CALL, label=ACTOR, details={"days": days}
                )
    except IntegrityError:
        # Another run inserted the same (consent, days) between our check and our insert.
        return None
    return reminder, email, token


def reminder_message(consent: Consent, email: str, link: str) -> EmailMultiAlternatives:
    """The reminder email: plain text and HTML, in the language the consent was signed in.
    The subject names the clinic and the date, never the treatment: a subject line is read
    by whoever sees the inbox."""
    with translation.override(consent.language):
        ends = date_format(timezone.localtime(consent.expires_at), gettext("j F Y"))
        context = {
            "patient": consent.patient,
            "consent": consent,
            "clinic": settings.CLINIC_NAME,
            "brand": settings.CLINIC_BRAND_COLOUR,
            "ends": ends,
            "scopes": ", ".join(consent.scope_names()) or gettext("no use"),
            "link": link,
        }
        message = EmailMultiAlternatives(
            gettext("Your photo consent with %(clinic)s ends on %(date)s")
            % {"clinic": settings.CLINIC_NAME, "date": ends},
            render_to_string("consent/email/renewal_reminder.txt", context),
            to=[email],
            headers={"Auto-Submitted": "auto-generated"},
        )
        message.attach_alternative(
            render_to_string("consent/email/renewal_reminder.html", context), "text/html"
        )
    return message


def check_site_url(site_url: str) -> str:
    """The address patients open the site at, without a trailing slash."""
    parts = urlsplit(site_url)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query:
        raise ValueError(
            "SITE_URL must be the site's address as patients open it, "
            f"such as https://gallery.example-clinic.com, not {site_url!r}."
        )
    return site_url.rstrip("/")


def send_consent_reminders(site_url: str, due=None) -> ReminderReport:
    """Send every reminder due now (or those given) and report what was done. A reminder
    whose email could not be handed to the mail server is released, so the next run tries
    it again."""
    site_url = check_site_url(site_url)
    report = ReminderReport()
    mailer = mailers.default
    for consent, days in reminders_due() if due is None else due:
        claimed = claim_reminder(consent, days)
        if claimed is None:
            continue
        reminder, email, token = claimed
        if not email:
            report.to_call.append(Reminder(consent, days))
            continue
        link = site_url + patient_page_path(token, consent.language)
        try:
            mailer.send_messages([reminder_message(consent, email, link)])
        except (smtplib.SMTPException, OSError) as error:
            reminder.delete()
            report.failed.append((Reminder(consent, days, email), str(error)))
            continue
        ConsentEvent.record(
            consent,
            ConsentEvent.Kind.REMINDER_EMAILED,
            label=ACTOR,
            details={"days": days},
        )
        report.emailed.append(Reminder(consent, days, email))
    return report
