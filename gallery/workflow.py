"""The review workflow, written once as a table of transitions.

    draft ──submit──▶ review ──publish──▶ published
      ▲                 │ ▲                  │
      └───send_back─────┘ └────unpublish─────┘
    draft, review, published ──archive──▶ archived ──reopen──▶ draft

Every door (staff pages, the admin's actions, imports, the demo seed) calls ``transition``
through the named functions below; nothing else writes ``status``. A table of our own
rather than django-fsm-2: the state changes here are conditional UPDATEs (the row moves
only if it is still in a source state, which holds across app instances without a lock),
publishing re-checks the publication rule inside the same transaction, and public storage
follows after commit — none of which a ``save()``-based state machine would do for us,
while the whole machine is the six rows below.

Every state change commits first; public storage, the listing and cached pages follow
after commit (``sync_public_files``).
"""

import logging
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from gallery.comparability import interval_problems, missing_facts, pair_checks
from gallery.listing import sync_listing
from gallery.models import Case
from gallery.publication import build_public_set, sync_public_files

log = logging.getLogger(__name__)

S = Case.Status


class WorkflowError(Exception):
    def __init__(self, problems: list[str]):
        super().__init__(" ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Transition:
    sources: frozenset
    target: str
    label: str
    # Reviewers' transitions need gallery.publish_case; submit is the photographer's own.
    reviewer_only: bool = True


TRANSITIONS = {
    "submit": Transition(frozenset({S.DRAFT}), S.REVIEW, "Submit for review", False),
    "send_back": Transition(frozenset({S.REVIEW}), S.DRAFT, "Send back"),
    "publish": Transition(frozenset({S.REVIEW}), S.PUBLISHED, "Approve and publish"),
    "unpublish": Transition(frozenset({S.PUBLISHED}), S.REVIEW, "Unpublish"),
    "archive": Transition(frozenset({S.DRAFT, S.REVIEW, S.PUBLISHED}), S.ARCHIVED, "Archive"),
    "reopen": Transition(frozenset({S.ARCHIVED}), S.DRAFT, "Reopen as a draft"),
}

REFUSED_FROM = {
    "submit": "Only a draft can be submitted for review.",
    "send_back": "Only a case in review can be sent back.",
    "publish": "Only a case in review can be published: submit it for review first.",
    "unpublish": "Only a published case can be unpublished.",
    "archive": "This case is already archived.",
    "reopen": "Only an archived case can be reopened.",
}


def can_edit(user, case: Case) -> bool:
    """Photographers edit only their own drafts; reviewers may fix drafts and cases under
    review. Nobody edits a published or archived case: unpublish or reopen it first."""
    if case.status not in (S.DRAFT, S.REVIEW) or not user.is_active:
        return False
    if user.is_superuser or user.has_perm("gallery.publish_case"):
        return True
    return (
        user.has_perm("gallery.change_case")
        and case.status == S.DRAFT
        and case.created_by_id == user.pk
    )


def editable_cases(user):
    """The queryset twin of ``can_edit``: the cases this user may change."""
    if not user.is_active:
        return Case.objects.none()
    editable = Case.objects.filter(status__in=[S.DRAFT, S.REVIEW])
    if user.is_superuser or user.has_perm("gallery.publish_case"):
        return editable
    if user.has_perm("gallery.change_case"):
        return editable.filter(status=S.DRAFT, created_by=user)
    return Case.objects.none()


def may(user, action: str, case: Case) -> bool:
    """Whether this user may take this action on this case in its present state."""
    step = TRANSITIONS[action]
    if case.status not in step.sources or not user.is_active:
        return False
    if step.reviewer_only:
        return user.has_perm("gallery.publish_case")
    return can_edit(user, case)


def allowed_actions(user, case: Case) -> list[str]:
    return [action for action in TRANSITIONS if may(user, action, case)]


def _check(user, action: str, case: Case) -> None:
    step = TRANSITIONS[action]
    if case.status not in step.sources:
        raise WorkflowError([REFUSED_FROM[action]])
    if not may(user, action, case):
        raise WorkflowError(["You are not allowed to do this with this case."])


def _move(case: Case, action: str, **fields) -> Case:
    """Move the row only if it is still in a source state (a conditional UPDATE, so two
    people acting at once cannot both succeed). Public files follow after commit."""
    step = TRANSITIONS[action]
    now = timezone.now()
    updated = Case.objects.filter(pk=case.pk, status__in=step.sources).update(
        status=step.target, updated_at=now, **fields
    )
    if not updated:
        raise WorkflowError([REFUSED_FROM[action] + " Someone changed it just now; reload."])
    case_id = case.pk
    # The listing follows in the same transaction: the list and its counts are right from
    # the commit on, even if the after-commit work never runs.
    sync_listing([case_id])
    transaction.on_commit(lambda: sync_public_files(case_id))
    case.status = step.target
    for name, value in fields.items():
        setattr(case, name, value)
    return case


def submit_for_review(case: Case, user) -> None:
    _check(user, "submit", case)
    problems = missing_facts(case) + interval_problems(case)
    if problems:
        raise WorkflowError(problems)
    with transaction.atomic():
        _move(case, "submit")


def send_back(case: Case, reviewer, comment: str) -> None:
    _check(reviewer, "send_back", case)
    if not comment.strip():
        raise WorkflowError(["Write what the photographer should fix."])
    with transaction.atomic():
        _move(
            case,
            "send_back",
            review_comment=comment.strip(),
            reviewed_by=None,
            published_at=None,
        )


def publish(case: Case, reviewer, override: str = "") -> None:
    """Approve and publish, refused unless ``Case.objects.public()`` would then include it.

    Raises WorkflowError with the exact conditions that fail.
    """
    _check(reviewer, "publish", case)
    problems = missing_facts(case) + interval_problems(case)
    warnings = [w for check in pair_checks(case) for w in check.warnings]
    if warnings and not override.strip():
        problems.append(
            "The comparability check has warnings: write why the photos may be published anyway."
        )
    if problems:
        raise WorkflowError(problems)
    try:
        build_public_set(case)
    except Exception:
        log.exception("Could not render the public photos of case %s", case.pk)
        raise WorkflowError(
            ["The public photos could not be made just now. Nothing was published; try again."]
        ) from None
    kept = {f: getattr(case, f) for f in ("status", "reviewed_by", "published_at")}
    try:
        with transaction.atomic():
            _move(
                case,
                "publish",
                reviewed_by=reviewer,
                published_at=timezone.now(),
                review_comment="",
                check_override=override.strip() if warnings else "",
            )
            if not Case.objects.public().filter(pk=case.pk).exists():
                fresh = (
                    Case.objects.select_related("consent", "treatment", "location")
                    .prefetch_related("photos")
                    .get(pk=case.pk)
                )
                # Raising rolls the move back: the case stays in review.
                raise WorkflowError(fresh.publication_problems())
    except WorkflowError:
        for name, value in kept.items():
            setattr(case, name, value)
        raise


def unpublish(case: Case, user, archive: bool = False) -> None:
    """Take a case off the public gallery at once (the same mechanism as withdrawal):
    back to review, or archived."""
    action = "archive" if archive else "unpublish"
    _check(user, action, case)
    with transaction.atomic():
        _move(case, action, published_at=None, reviewed_by=None)


def archive(case: Case, user) -> None:
    unpublish(case, user, archive=True)


def reopen(case: Case, user) -> None:
    _check(user, "reopen", case)
    with transaction.atomic():
        _move(case, "reopen")
