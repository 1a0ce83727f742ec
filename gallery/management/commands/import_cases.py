import sys
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from gallery.importing import ManifestError, import_manifest


class Command(BaseCommand):
    help = (
        "Import cases, patients, consents (with scanned forms) and photos from a JSON "
        "manifest. Cases import as drafts; --publish --reviewer USERNAME publishes those "
        "that satisfy the publication rule. Exits non-zero if anything was refused."
    )

    def add_arguments(self, parser):
        parser.add_argument("manifest", type=Path)
        parser.add_argument("--publish", action="store_true")
        parser.add_argument("--reviewer", help="username of the approving reviewer")

    def handle(self, *args, manifest: Path, publish: bool, reviewer: str | None, **options):
        approver = None
        if publish:
            if not reviewer:
                raise CommandError("--publish needs --reviewer USERNAME.")
            approver = get_user_model().objects.filter(username=reviewer).first()
            if approver is None or not approver.has_perm("gallery.publish_case"):
                raise CommandError(f"{reviewer!r} is not a user who may publish cases.")
        bar = tqdm(total=0, unit="case", file=sys.stderr, disable=None)

        def progress(number: int, total: int) -> None:
            bar.total = total
            bar.update(1)

        try:
            report = import_manifest(manifest, publish_as=approver, progress=progress)
        except ManifestError as error:
            raise CommandError(str(error)) from None
        finally:
            bar.close()
        self.stdout.write(
            f"{len(report.created_cases)} case(s) imported, {report.skipped_cases} already "
            f"there; {report.created_patients} patient(s) and {report.created_consents} "
            f"consent(s) created."
        )
        if publish:
            self.stdout.write(f"{len(report.published)} case(s) published.")
            for line in report.not_published:
                self.stdout.write(f"  not published: {line}")
        for line in report.refused:
            self.stderr.write(f"  refused: {line}")
        if not report.ok:
            raise CommandError(f"{len(report.refused)} problem(s); see above.")
