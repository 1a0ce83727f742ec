"""The review workflow: draft → in review → published (or back to draft), unpublish,
archive. Every state change commits first; public storage follows after commit."""

from django.db import transaction
from django.utils import timezone

from gallery.checks import interval_problems, missing_facts, pair_checks
from gallery.models import Case
from gallery.publication import sync_public_files


class WorkflowError(Exception):
    def __init__(self, problems: list[str]):
        super().__init__(" ".join(problems))
        self.problems = problems


def _after_commit_sync(case_id: int) -> None:
    transaction.on_commit(lambda: sync_public_files(case_id))


def submit_for_review(case: Case, user) -> None:
    problems = missing_facts(case) + interval_problems(case)
    if problems:
        raise WorkflowError(problems)
    with transaction.atomic():
        updated = Case.objects.filter(pk=case.pk, status=Case.Status.DRAFT).update(
            status=Case.Status.REVIEW, updated_at=timezone.now()
        )
        if not updated:
            raise WorkflowError(["Only a draft can be submitted for review."])
    case.status = Case.Status.REVIEW


def send_back(case: Case, reviewer, comment: str) -> None:
    if not comment.strip():
        raise WorkflowError(["Write what the photographer should fix."])
    with transaction.atomic():
        Case.objects.filter(pk=case.pk).update(
            status=Case.Status.DRAFT,
            review_comment=comment.strip(),
            reviewed_by=None,
            published_at=None,
            updated_at=timezone.now(),
        )
        _after_commit_sync(case.pk)


def publish(case: Case, reviewer, override: str = "") -> None:
    """Approve and publish, refused unless ``Case.objects.public()`` would then include it.

    Raises WorkflowError with the exact conditions that fail.
    """
    problems = missing_facts(case) + interval_problems(case)
    warnings = [w for check in pair_checks(case) for w in check.warnings]
    if warnings and not override.strip():
        problems.append(
            "The comparability check has warnings: write why the photos may be published anyway."
        )
    if problems:
        raise WorkflowError(problems)
    with transaction.atomic():
        locked = Case.objects.select_for_update().get(pk=case.pk)
        if locked.status not in (Case.Status.REVIEW, Case.Status.DRAFT, Case.Status.ARCHIVED):
            raise WorkflowError(["This case is already published."])
        now = timezone.now()
        Case.objects.filter(pk=case.pk).update(
            status=Case.Status.PUBLISHED,
            reviewed_by=reviewer,
            published_at=now,
            review_comment="",
            check_override=override.strip() if warnings else "",
            updated_at=now,
        )
        if not Case.objects.public().filter(pk=case.pk).exists():
            fresh = (
                Case.objects.select_related("consent").prefetch_related("photos").get(pk=case.pk)
            )
            raise WorkflowError(fresh.publication_problems())
        _after_commit_sync(case.pk)


def unpublish(case: Case, user, archive: bool = False) -> None:
    """Take a case off the public gallery at once (the same mechanism as withdrawal)."""
    with transaction.atomic():
        Case.objects.filter(pk=case.pk).update(
            status=Case.Status.ARCHIVED if archive else Case.Status.REVIEW,
            published_at=None,
            reviewed_by=None,
            updated_at=timezone.now(),
        )
        _after_commit_sync(case.pk)
