"""sync_publication, sweep_storage and rebuild_renditions."""

import io
from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.core.management import call_command
from django.utils import timezone

from consent.models import ConsentEvent
from gallery.cache import current_generation
from gallery.models import Case, Photo
from gallery.publication import add_photo, build_renditions
from tests.conftest import (
    make_case,
    make_consent,
    make_listed_case,
    make_public_case,
    skin_jpeg,
    stored_files,
)

pytestmark = pytest.mark.django_db


def public_files() -> list[str]:
    return stored_files("public")


def run(command, *args, **kw) -> str:
    out = io.StringIO()
    call_command(command, *args, stdout=out, **kw)
    return out.getvalue()


def test_sync_publication_takes_down_expired_cases_and_records_the_expiry():
    case = make_public_case()
    assert public_files()
    # Time passes: the consent lapses.
    consent = case.consent
    type(consent).objects.filter(pk=consent.pk).update(
        signed_at=timezone.now() - timedelta(days=400),
        expires_at=timezone.now() - timedelta(seconds=1),
    )
    assert not Case.objects.public().exists()  # pages hide it at once
    output = run("sync_publication")
    assert "1 expiry event(s), 1 case(s) taken down" in output
    assert public_files() == []
    assert ConsentEvent.objects.filter(consent=consent, kind="expired").count() == 1
    # Running again records nothing twice.
    assert "0 expiry event(s), 0 case(s) taken down" in run("sync_publication")
    assert ConsentEvent.objects.filter(consent=consent, kind="expired").count() == 1


def test_sync_publication_lists_consents_expiring_within_30_days():
    soon = make_consent(expires_at=timezone.now() + timedelta(days=10))
    make_consent(expires_at=timezone.now() + timedelta(days=90))
    output = run("sync_publication")
    assert soon.patient.reference in output
    assert "1 consent(s) expiring soon" in output


def test_sync_publication_corrects_a_listing_changed_outside_the_app(client):
    shown = make_listed_case(fitzpatrick=2)
    hidden = make_listed_case(fitzpatrick=5)
    # Rows edited behind the app's back (a restore, a hand-written UPDATE): one public
    # case unlisted, one listed past its consent's expiry, a draft listed.
    draft = make_case(status="draft", published_at=None)
    Case.objects.filter(pk=hidden.pk).update(listed_until=None)
    far = timezone.now() + timedelta(days=3650)
    Case.objects.filter(pk__in=[shown.pk, draft.pk]).update(listed_until=far)
    api = client.get("/api/cases/").json()
    assert [c["id"] for c in api["results"]] == [shown.public_id]  # never the draft
    generation = current_generation()
    assert "3 listing row(s) corrected" in run("sync_publication")
    assert current_generation() != generation  # counts and pages are computed afresh
    api = client.get("/api/cases/").json()
    assert api["count"] == 2
    assert {c["id"] for c in api["results"]} == {shown.public_id, hidden.public_id}
    assert "0 listing row(s) corrected" in run("sync_publication")


def test_sync_publication_restores_missing_public_files():
    case = make_public_case()
    for photo in case.photos.all():
        Photo.objects.filter(pk=photo.pk).update(public_key="")
    assert "published files: case" in run("sync_publication")
    assert case.photos.exclude(public_key="").count() == 2


def test_sweep_removes_only_old_files_without_rows():
    case = make_public_case()
    private, public = storages["default"], storages["public"]
    orphan = private.save("originals/orphan.jpg", ContentFile(b"x"))
    public_orphan = public.save("r/nobody/480.jpg", ContentFile(b"x"))
    referenced = set(stored_files()) - {orphan}
    # Within the grace period an orphan may be an upload in flight: it stays.
    assert "0 orphan file(s)" in run("sweep_storage")
    assert private.exists(orphan) and public.exists(public_orphan)
    # Once older than the grace period (here: a cutoff a minute ahead), it goes.
    output = run("sweep_storage", "--grace", "-1")
    assert "2 orphan file(s)" in output
    assert not private.exists(orphan) and not public.exists(public_orphan)
    assert set(stored_files()) == referenced
    assert all(private.exists(r["name"]) for p in case.photos.all() for r in p.renditions)
    assert len(public_files()) == sum(len(p.renditions) for p in case.photos.all())


def test_rebuild_renditions_replaces_files_and_deletes_the_old_ones(
    django_capture_on_commit_callbacks,
):
    case = make_public_case()
    old = {r["name"] for p in case.photos.all() for r in p.renditions}
    with django_capture_on_commit_callbacks(execute=True):
        output = run("rebuild_renditions", "--case", case.public_id)
    assert "1 case(s)" in output
    new = {r["name"] for p in case.photos.all() for r in p.renditions}
    assert new and not (new & old)
    assert not any(storages["default"].exists(n) for n in old)
    assert Case.objects.public().filter(pk=case.pk).exists()
    assert len(public_files()) == len(new)


def test_rebuild_renditions_refuses_an_unknown_case():
    from django.core.management import CommandError

    with pytest.raises(CommandError, match="No case"):
        run("rebuild_renditions", "--case", "nope")


def test_a_single_photo_gets_its_own_preview_renditions():
    case = make_public_case(status="draft", published_at=None)
    case.photos.filter(role="after").delete()
    add_photo(case, "after", "close_up", io.BytesIO(skin_jpeg(5, 3, "after", (500, 500))), "x.jpg")
    build_renditions(case)
    lone = case.photos.get(view="close_up")
    assert {(r["width"], r["height"]) for r in lone.renditions} == {(480, 480), (500, 500)}
