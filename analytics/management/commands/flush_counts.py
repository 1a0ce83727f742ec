from django.core.management.base import BaseCommand

from analytics.counters import flush


class Command(BaseCommand):
    help = (
        "Add the page views, comparisons, consultation clicks and filter choices counted in "
        "the cache to the daily rows (run every minute from cron, beside sync_publication)."
    )

    def handle(self, *args, **options):
        done = flush()
        self.stdout.write(f"Flushed {done['events']} counts from {done['minutes']} minutes.")
