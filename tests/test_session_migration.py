"""The session-record migration (gallery 0012) run forward over the demo data and the
publication rule's 768 cases: every public caption and every derived fact is what the
typed facts said, and the records it writes derive those facts again.

The data is made with today's code, the database taken back to 0011 (the session tables
go; the typed columns stay, as a database of that time holds them) and migrated forward.
"""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from gallery.models import (
    Case,
    Photo,
    Treatment,
    after_photo_date,
    record_facts,
)
from tests.test_publication_rule import COMBINATIONS, build

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("reference_data")]

BEFORE = [("gallery", "0011_photo_rotation")]
DEPTHS = [Decimal(d) for d in ("0.25", "0.50", "0.75", "1.00", "1.50", "2.00", "2.25", "3.50")]
FACTS = ["needle_depth_mm", "session_count", "session_interval_weeks", "weeks_after_last_session"]


def migrate(targets) -> None:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)


def latest() -> list[tuple[str, str]]:
    executor = MigrationExecutor(connection)
    return executor.loader.graph.leaf_nodes()


def vary_the_rule_table(pks: set[int]) -> None:
    """The rule table's cases with typed facts of every kind: one to eight sessions,
    intervals of one to twelve weeks, depths from 0.25 to 3.5 mm, weeks after from zero,
    some after photos with a capture date, some with a recorded last-session date that
    contradicts it."""
    today = timezone.now()
    for n, pk in enumerate(sorted(pks)):
        Case.objects.filter(pk=pk).update(
            needle_depth_mm=DEPTHS[n % len(DEPTHS)],
            session_count=n % 8 + 1,
            session_interval_weeks=n % 12 + 1,
            weeks_after_last_session=(n * 7) % 60,
            last_session_on=(today - timedelta(days=n % 300)).date() if n % 5 == 0 else None,
            body_area=Case.BodyArea.values[n % len(Case.BodyArea.values)],
        )
        if n % 3 == 0:
            Photo.objects.filter(case_id=pk, role="after").update(
                taken_at=today - timedelta(days=n % 400, hours=n % 24)
            )


def captions_at_0011() -> dict[int, tuple]:
    """Each case's caption and typed facts as a database at 0011 holds them, the caption
    made by today's ``Case.disclosure_facts`` from those facts."""
    executor = MigrationExecutor(connection)
    then = executor.loader.project_state(BEFORE).apps
    old = then.get_model("gallery", "Case")
    # Today's Treatment model has columns later migrations add: build it from the old rows.
    treatments = {
        row["pk"]: Treatment(**row)
        for row in then.get_model("gallery", "Treatment").objects.values(
            "pk", "name", "slug", "min_weeks_after"
        )
    }
    result = {}
    for row in old.objects.values("pk", "treatment_id", "is_demo", *FACTS):
        case = Case(**{k: v for k, v in row.items() if k != "treatment_id"})
        case.treatment = treatments[row["treatment_id"]]
        result[row["pk"]] = _caption(case)
    return result


def test_the_migration_keeps_every_caption_of_the_demo_and_the_rule_table(
    django_capture_on_commit_callbacks,
):
    with django_capture_on_commit_callbacks(execute=True):
        call_command("seed_demo", count=12, stdout=open("/dev/null", "w"))
    demo = set(Case.objects.values_list("pk", flat=True))
    for combo in COMBINATIONS:
        build(*combo)
    table = set(Case.objects.values_list("pk", flat=True)) - demo
    assert len(demo) == 12 and len(table) == 768
    # The demo keeps the facts its per-zone sessions derive; the rule table's are varied.
    vary_the_rule_table(table)

    migrate(BEFORE)
    before = captions_at_0011()
    assert len(before) == 780
    migrate(latest())

    migrated = {case.pk: case for case in Case.objects.select_related("treatment")}
    assert {pk: _caption(case) for pk, case in migrated.items()} == before
    # The records it wrote derive the same facts through the one derivation the app uses
    # (sessions, zones, the after photo's date, the entered weeks): re-deriving every case
    # as the next edit or photo would changes no caption, no fact and no protocol.
    for case in migrated.values():
        assert case.sessions.count() == case.session_count
        record_facts(case)
    rederived = {case.pk: case for case in Case.objects.select_related("treatment")}
    assert {pk: _caption(case) for pk, case in rederived.items()} == before
    assert {pk: c.protocol for pk, c in rederived.items()} == {
        pk: c.protocol for pk, c in migrated.items()
    }
    assert {pk: c.last_session_on for pk, c in rederived.items()} == {
        pk: c.last_session_on for pk, c in migrated.items()
    }
    # A case whose after photo has a capture date now counts its weeks from that date.
    dated = Case.objects.filter(photos__role="after", photos__taken_at__isnull=False).distinct()
    assert dated.count() > 100
    for case in dated:
        assert (after_photo_date(case) - case.last_session_on).days == (
            7 * case.weeks_after_last_session
        )


def _caption(case: Case) -> tuple:
    # The facts part of the caption: who treated the case where comes from later
    # migrations (locations and practitioners), which add a sentence of their own.
    return (case.disclosure_facts(), *(getattr(case, f) for f in FACTS))
