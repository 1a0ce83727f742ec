from django.core.management.base import BaseCommand, CommandError

from gallery.models import Case
from gallery.publication import build_case_renditions


class Command(BaseCommand):
    help = "Rebuild the renditions of every case, or of one case (--case PUBLIC_ID or pk)."

    def add_arguments(self, parser):
        parser.add_argument("--case", help="public id (or database id) of one case")

    def handle(self, *args, case=None, **options):
        cases = Case.objects.all()
        if case:
            cases = cases.filter(public_id=case) if not case.isdigit() else cases.filter(pk=case)
            if not cases.exists():
                raise CommandError(f"No case {case!r}.")
        total = 0
        for pk, public_id in cases.order_by("pk").values_list("pk", "public_id"):
            result = build_case_renditions.enqueue(pk)
            total += 1
            self.stdout.write(f"  {public_id}: {result.status.lower()}")
        self.stdout.write(self.style.SUCCESS(f"{total} case(s) queued or rebuilt."))
