from django.core.management.base import BaseCommand

from gallery.publication import sync_publication


class Command(BaseCommand):
    help = (
        "Bring public storage in step with the publication rule: remove the renditions of "
        "cases that are no longer public (expired consent), record expiry events, and list "
        "consents expiring within 30 days. Run it every few minutes (cron or a worker)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--days", type=int, default=30, help="expiring-soon window")

    def handle(self, *args, days: int, **options):
        report = sync_publication(expiring_days=days)
        for consent in report.expired:
            self.stdout.write(f"  expired: consent {consent.pk} of {consent.patient.reference}")
        for case_id in report.taken_down:
            self.stdout.write(f"  taken down: case {case_id}")
        for case_id in report.put_up:
            self.stdout.write(f"  published files: case {case_id}")
        if report.expiring:
            self.stdout.write(f"Consents expiring within {days} days:")
            for consent in report.expiring:
                self.stdout.write(
                    f"  {consent.patient.reference}: expires {consent.expires_at:%Y-%m-%d} "
                    f"(consent {consent.pk})"
                )
        self.stdout.write(
            self.style.SUCCESS(
                f"{len(report.expired)} expiry event(s), {len(report.taken_down)} case(s) "
                f"taken down, {report.relisted} listing row(s) corrected, "
                f"{len(report.expiring)} consent(s) expiring soon."
            )
        )
