from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from consent.reminders import REMINDER_DAYS, send_consent_reminders


class Command(BaseCommand):
    help = (
        "Email each patient whose consent ends within "
        + " and again within ".join(str(d) for d in REMINDER_DAYS)
        + " days a private link to renew it, once each, and list the patients without an "
        "email address for a phone call. Run it daily (cron)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--site-url",
            default=settings.SITE_URL,
            help="the site's address as patients open it (default: the SITE_URL setting)",
        )

    def handle(self, *args, site_url: str, **options):
        try:
            report = send_consent_reminders(site_url)
        except ValueError as error:
            raise CommandError(str(error)) from None
        if report.emailed:
            self.stdout.write(f"Emailed a renewal link ({len(report.emailed)}):")
            for r in report.emailed:
                self.stdout.write(f"  {self.describe(r)}, to {r.email}")
        if report.to_call:
            self.stdout.write(f"To call, no email address ({len(report.to_call)}):")
            for r in report.to_call:
                self.stdout.write(f"  {self.describe(r)}")
        for r, error in report.failed:
            self.stderr.write(f"Not sent, will be tried again: {self.describe(r)}: {error}")
        self.stdout.write(
            f"{len(report.emailed)} reminder(s) emailed, {len(report.to_call)} patient(s) to "
            f"call, {len(report.failed)} not sent."
        )
        if report.failed:
            raise CommandError(f"{len(report.failed)} reminder(s) could not be sent.")

    @staticmethod
    def describe(r) -> str:
        c = r.consent
        return (
            f"{c.patient.reference} {c.patient.full_name}: consent {c.pk} ends "
            f"{timezone.localtime(c.expires_at):%Y-%m-%d} ({r.days}-day reminder)"
        )
