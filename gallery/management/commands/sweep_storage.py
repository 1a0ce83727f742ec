from django.core.management.base import BaseCommand

from gallery.publication import sweep_storage


class Command(BaseCommand):
    help = (
        "Delete stored files that no row points at (left by a crash between a storage write "
        "and its database commit). Files younger than --grace minutes are left alone, so "
        "uploads in flight are never touched."
    )

    def add_arguments(self, parser):
        parser.add_argument("--grace", type=int, default=60, help="minutes")
        parser.add_argument("--dry-run", action="store_true")

    def handle(self, *args, grace: int, dry_run: bool, **options):
        removed = sweep_storage(grace_minutes=grace, dry_run=dry_run)
        for storage_name, name in removed:
            self.stdout.write(f"  {'would remove' if dry_run else 'removed'} {storage_name}:{name}")
        self.stdout.write(self.style.SUCCESS(f"{len(removed)} orphan file(s)."))
