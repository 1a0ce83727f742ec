"""Injected faults: storage writes, storage deletes, the database after a storage write,
and rendition building.

At every point the user is answered (never a 500): an upload that failed asks them to try
again, and the retry works. Afterwards no row points at a missing file, and every file
without a row is one the sweep removes. Each point gets at least 100 injected faults,
counted in INJECTED (with the orphans each sweep found in ORPHANS) and printed at the end
of the module (``-s`` to see them).

Faults are deterministic: the Nth call fails for every N an operation reaches, and deletes
fail in patterns drawn from a seeded random generator. Photos are 120 × 90 so a cycle of
upload, render and publish takes milliseconds. The database is used with real commits
(``transaction=True``) so ``on_commit`` work runs where it runs in production: inside the
request, where an exception would reach the user.
"""

import errno
import functools
import importlib
import io
import random
import re
import threading
from collections import Counter
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from unittest import mock

import pytest
from django.apps import apps
from django.core.files.storage import FileSystemStorage, storages
from django.db import OperationalError, connections
from django.test import Client
from PIL import Image

from gallery import images
from gallery.models import Case, Photo, public_name
from gallery.publication import (
    add_photo,
    build_renditions,
    remove_photo,
    sweep_storage,
    sync_publication,
)
from tests.conftest import make_case, make_consent, make_user, skin_jpeg, stored_files

pytestmark = [pytest.mark.storage_faults, pytest.mark.django_db(transaction=True)]

WRITE = "storage write"
DELETE = "storage delete"
DATABASE = "database after a storage write"
RENDER = "rendition building"
FAULTS_PER_POINT = 100

INJECTED: Counter[str] = Counter()  # faults raised, per point
ORPHANS: Counter[str] = Counter()  # files without a row that the sweeps removed, per point

SMALL = (120, 90)
OVERRIDE = {"override": "Same light and distance; checked by eye."}
RETRY = re.compile(r"\btry again\b", re.IGNORECASE)
PUBLIC_URL = re.compile(r"/media/public/(r/[\w-]+/\d+\.\w+)")


@pytest.fixture(scope="module", autouse=True)
def fault_report():
    yield
    print(f"\ninjected faults per point: {dict(INJECTED)}")
    print(f"files without a row before the sweeps, per point: {dict(ORPHANS)}")


@pytest.fixture(autouse=True)
def _reference(transactional_db):
    """Roles, treatments and the consent form: a transactional test's database is emptied
    after each test, so the data migrations' own functions run again."""
    for module in (
        "consent.migrations.0002_first_consent_form",
        "gallery.migrations.0002_reference_data",
        "gallery.migrations.0003_roles",
    ):
        importlib.import_module(module).create(apps, None)


@pytest.fixture(autouse=True)
def _local_storages(isolated_media, settings):
    """Faults are injected into FileSystemStorage, so both storages are local folders even
    when the suite runs against an object store: the code paths under test are the same."""
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": isolated_media / "faults" / "private"},
        },
        "public": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {
                "location": isolated_media / "faults" / "public",
                "base_url": "/media/public/",
            },
        },
    }


def https_client() -> Client:
    """A client that speaks HTTPS as the TLS proxy would, so the tests pass with the
    production default (DJANGO_HTTPS on) as well as with ``make test``'s DJANGO_HTTPS=off."""
    return Client(headers={"X-Forwarded-Proto": "https"}, **{"wsgi.url_scheme": "https"})


@pytest.fixture
def photographer():
    user = make_user(groups=["Photographers"])
    client = https_client()
    client.force_login(user)
    return SimpleNamespace(user=user, client=client)


@pytest.fixture
def reviewer():
    client = https_client()
    client.force_login(make_user(groups=["Reviewers"]))
    return client


@pytest.fixture
def visitor():
    return https_client()


# --- fault injection -----------------------------------------------------------------


class Faults:
    """Numbers the calls at one fault point and fails those in ``fail`` (from 1)."""

    def __init__(self, point: str, fail):
        self.point, self.fail, self.calls, self.fired = point, fail, 0, 0

    def hit(self) -> bool:
        self.calls += 1
        if self.calls not in self.fail:
            return False
        self.fired += 1
        INJECTED[self.point] += 1
        return True


@contextmanager
def failing_saves(fail, after_write=False):
    """Storage writes (both storages) fail: before anything is written, or after the file
    landed but before the caller heard back (a lost answer)."""
    faults = Faults(WRITE, fail)
    real = FileSystemStorage._save

    def _save(storage, name, content):
        if not faults.hit():
            return real(storage, name, content)
        if after_write:
            real(storage, name, content)
        raise OSError(errno.ENOSPC, "No space left on device (injected)")

    with mock.patch.object(FileSystemStorage, "_save", _save):
        yield faults


@contextmanager
def failing_deletes(fail):
    faults = Faults(DELETE, fail)
    real = FileSystemStorage.delete

    def delete(storage, name):
        if faults.hit():
            raise OSError(errno.EIO, "Input/output error (injected)")
        return real(storage, name)

    with mock.patch.object(FileSystemStorage, "delete", delete):
        yield faults


PHOTO_WRITE = re.compile(r'^\s*(INSERT INTO|UPDATE) "gallery_photo"')


@contextmanager
def failing_database(fail, mode, armed=False):
    """Once a storage write has happened (or at once with ``armed``):

    - "before": the Nth INSERT/UPDATE of a photo row fails before it runs;
    - "after": it ran, then the connection failed (inside a transaction that rolls back
      with it; in autocommit the change stays);
    - "commit": the Nth commit went through, then the connection failed: the change is
      in the database but the code only sees the error.
    """
    faults = Faults(DATABASE, fail)
    state = {"armed": armed}
    connection = connections["default"]
    real_save, real_commit = FileSystemStorage._save, connection.commit

    def _save(storage, name, content):
        state["armed"] = True
        return real_save(storage, name, content)

    def execute(run, sql, params, many, context):
        if mode == "commit" or not state["armed"] or not PHOTO_WRITE.match(sql):
            return run(sql, params, many, context)
        if not faults.hit():
            return run(sql, params, many, context)
        if mode == "after":
            run(sql, params, many, context)
        raise OperationalError("server closed the connection unexpectedly (injected)")

    def commit():
        real_commit()
        if mode == "commit" and state["armed"] and faults.hit():
            raise OperationalError("connection lost after COMMIT (injected)")

    with (
        mock.patch.object(FileSystemStorage, "_save", _save),
        connection.execute_wrapper(execute),
        mock.patch.object(connection, "commit", commit),
    ):
        yield faults


RENDER_ERRORS = (
    lambda: ValueError("broken data stream when reading image file (injected)"),
    lambda: OSError(errno.EIO, "image file is truncated (injected)"),
    lambda: MemoryError(),
    lambda: Image.DecompressionBombError("too many pixels (injected)"),
)


@contextmanager
def failing_render(fail, where="render_crop", error=RENDER_ERRORS[0]):
    """Rendition building fails: as it starts (``render_crop``), while converting colour
    (``_to_srgb``), or while encoding one of the outputs (``encode``)."""
    faults = Faults(RENDER, fail)

    def failing(real):
        def call(*args, **kwargs):
            if faults.hit():
                raise error()
            return real(*args, **kwargs)

        return call

    if where == "encode":
        patch = mock.patch.object(Image.Image, "save", failing(Image.Image.save))
    else:
        patch = mock.patch.object(images, where, failing(getattr(images, where)))
    with patch:
        yield faults


def attempt(operation, *args):
    """Run a background operation (a task, a command) and return what it raised, if anything."""
    try:
        operation(*args)
    except Exception as error:
        return error
    return None


# --- the invariants ------------------------------------------------------------------


def assert_rows_point_at_files(point: str) -> tuple[set[str], set[str]]:
    private, public = storages["default"], storages["public"]
    private_known: set[str] = set()
    public_known: set[str] = set()
    for photo in Photo.objects.all():
        names = [photo.original.name, *(r["name"] for r in photo.renditions)]
        missing = [n for n in names if not private.exists(n)]
        assert not missing, f"{point}: photo {photo.pk} points at missing files {missing}"
        private_known.update(names)
        if photo.public_key:
            copies = [public_name(photo.public_key, r) for r in photo.renditions]
            missing = [n for n in copies if not public.exists(n)]
            assert not missing, f"{point}: photo {photo.pk} links missing public files {missing}"
            public_known.update(copies)
    return private_known, public_known


def assert_consistent(point: str) -> None:
    """No row points at a missing file; after the sweep, no file is left without a row."""
    assert_rows_point_at_files(point)
    ORPHANS[point] += len(sweep_storage(grace_minutes=0))
    private_known, public_known = assert_rows_point_at_files(point)
    unowned = [
        n
        for n in stored_files("default")
        if n.startswith(("originals/", "renditions/")) and n not in private_known
    ]
    unowned += [f"public:{n}" for n in stored_files("public") if n not in public_known]
    assert not unowned, f"{point}: files without a row after the sweep: {unowned}"
    remove_empty_folders()


def remove_empty_folders() -> None:
    """FileSystemStorage leaves the folder of every deleted rendition set behind, and each
    sweep would walk thousands of them. Folders are not files: remove the empty ones."""
    for name in ("default", "public"):
        root = Path(storages[name].location)
        for path in sorted(root.rglob("*"), reverse=True):  # children before parents
            if path.is_dir() and not any(path.iterdir()):
                path.rmdir()


def assert_pages_link_existing_files(visitor, case: Case, and_the_list=False) -> None:
    """The case page (and the public list), cached or not, link only files that exist.
    Called before a fault too, so that a stale cached page would be served after it."""
    public = storages["public"]
    is_public = Case.objects.public().filter(pk=case.pk).exists()
    detail = visitor.get(f"/gallery/{case.public_id}/")
    assert detail.status_code == (200 if is_public else 404)
    for response in [detail] + ([visitor.get("/gallery/")] if and_the_list else []):
        linked = PUBLIC_URL.findall(response.content.decode())
        missing = [n for n in linked if not public.exists(n)]
        assert not missing, f"a public page links missing files {missing}"


def is_fully_public(case: Case) -> bool:
    case = Case.objects.prefetch_related("photos").get(pk=case.pk)
    pairs = case.complete_pairs()
    return case.is_public and bool(pairs) and all(p.public_key for pair in pairs for p in pair)


def assert_fully_public(case: Case) -> None:
    assert is_fully_public(case)


def check_public_case_after_fault(point: str, visitor, case: Case, prime=True) -> None:
    """Rows and files agree, pages (the cached one included: each check leaves the page
    cached for the next fault) link only existing files, and the scheduled
    sync_publication puts back whatever public copies the fault cost."""
    assert_consistent(point)
    assert_pages_link_existing_files(visitor, case)
    if not is_fully_public(case):
        sync_publication()
        assert_fully_public(case)
        assert_consistent(point)
        if prime:
            assert_pages_link_existing_files(visitor, case)


def assert_not_public(case: Case) -> None:
    assert not Case.objects.public().filter(pk=case.pk).exists()
    assert not case.photos.exclude(public_key="").exists()


def assert_asks_to_retry(response) -> None:
    assert response.status_code in (400, 503), response.content
    assert RETRY.search(response.json()["error"]), response.json()


# --- builders --------------------------------------------------------------------------


@functools.cache
def photo_bytes(seed: int, role: str) -> bytes:
    return skin_jpeg(seed, 3, role, SMALL)


def upload(client, case, role, view="front", seed=1):
    f = io.BytesIO(photo_bytes(seed, role))
    f.name = f"{role}.jpg"
    response = client.post(
        f"/staff/cases/{case.pk}/photos/", {"file": f, "role": role, "view": view}
    )
    assert response.status_code in (201, 400, 503), response.content  # never a 500
    return response


def add_pair(case, view="front", seed=1) -> None:
    for role in ("before", "after"):
        add_photo(case, role, view, io.BytesIO(photo_bytes(seed, role)), f"{role}.jpg")


def draft_case(owner, views=()) -> Case:
    case = make_case(photos=False, status=Case.Status.DRAFT, published_at=None, created_by=owner)
    for view in views:
        add_pair(case, view)
    if views:
        build_renditions(case)
    return case


def review_case(views=("front",), public_set=True, **kw) -> Case:
    """A case in review; with its public set rendered already (as after an earlier
    publication), unless ``public_set`` is off (its JPEGs only, as uploaded)."""
    case = make_case(photos=False, status=Case.Status.REVIEW, published_at=None, **kw)
    for view in views:
        add_pair(case, view)
    build_renditions(case, public=public_set)
    return case


def public_case(views=("front",), **kw) -> Case:
    case = make_case(photos=False, **kw)
    for view in views:
        add_pair(case, view)
    build_renditions(case)
    assert_fully_public(case)
    return case


def renditions_of(case) -> dict[int, list]:
    return dict(case.photos.values_list("pk", "renditions"))


def assert_rendered_whole(case: Case, before: dict[int, list]) -> None:
    """Each photo has its old renditions or a whole new set (never a mix or a part): at
    120 px that is one size in three formats (a draft's JPEG alone), under one folder."""
    whole = 3 if case.status == Case.Status.PUBLISHED else 1
    for pk, renditions in renditions_of(case).items():
        if renditions != before.get(pk):
            folders = {r["name"].rsplit("/", 1)[0] for r in renditions}
            assert len(renditions) == whole and len(folders) == 1


def rows_per_slot(case: Case) -> int:
    return max(Counter(case.photos.values_list("role", "view")).values(), default=0)


def publish(reviewer, case) -> None:
    response = reviewer.post(f"/staff/cases/{case.pk}/publish/", OVERRIDE)
    assert response.status_code == 302


def unpublish(reviewer, case) -> None:
    response = reviewer.post(f"/staff/cases/{case.pk}/unpublish/")
    assert response.status_code == 302


# --- 1. storage writes ---------------------------------------------------------------


def test_failed_storage_writes_ask_for_a_retry_and_leave_no_row_without_its_file(
    photographer, reviewer, visitor
):
    # The upload view. Write 1 is the original, then the renditions: 2 for the lone
    # before photo, 2-3 for the pair once the after photo arrives (a draft's JPEGs: the
    # AVIF and WebP wait for its publication). A failed write either
    # stored nothing or stored a file whose answer was lost. A lost original asks for a
    # retry; lost renditions leave a photo without them; the same file sent again mends it.
    for n in range(1, 8):
        case = draft_case(photographer.user)
        for role, writes in (("before", 2), ("after", 3)):
            with failing_saves({n}, after_write=n % 2 == 0) as faults:
                response = upload(photographer.client, case, role)
            assert faults.fired == (n <= writes)
            if faults.fired and n == 1:
                assert_asks_to_retry(response)
                assert not case.photos.filter(role=role).exists()
            else:
                assert response.status_code == 201
                assert response.json()["photo"]["rendered"] == (not faults.fired)
            assert_consistent(WRITE)
            if faults.fired:
                retry = upload(photographer.client, case, role)
                assert retry.status_code == 201 and retry.json()["photo"]["rendered"]
        assert case.photos.count() == 2

    # add_photo as the importer calls it: the original is not stored, or stored with its
    # answer lost. Nothing is recorded; sending the file again works.
    case = draft_case(photographer.user)
    for view, _ in Photo.View.choices:
        for after_write in (False, True):
            sent = io.BytesIO(photo_bytes(1, "before"))
            with failing_saves({1}, after_write) as faults:
                error = attempt(add_photo, case, "before", view, sent, "a.jpg")
            assert faults.fired == 1 and isinstance(error, OSError)
            assert not case.photos.exists()
            assert_consistent(WRITE)
    add_photo(case, "before", "front", io.BytesIO(photo_bytes(1, "before")), "a.jpg")

    # A rebuild of a draft case with two pairs: writes 1-4, two per pair (its JPEGs). A
    # pair before the failing one switched whole; the failing one keeps its old renditions.
    case = draft_case(photographer.user, views=("front", "left_oblique"))
    for _ in range(8):
        for n in range(1, 5):
            for after_write in (False, True):
                old = renditions_of(case)
                with failing_saves({n}, after_write) as faults:
                    error = attempt(build_renditions, case)
                assert faults.fired == 1 and isinstance(error, OSError)
                assert_rendered_whole(case, old)
                assert_consistent(WRITE)
    assert attempt(build_renditions, case) is None
    assert all(p.rendered_at for p in case.photos.all())

    # A rebuild of a public case with two pairs: writes 7-12 come after the first pair
    # switched (and its public copies were deleted), 13-24 copy to public storage.
    case = public_case(views=("front", "left_oblique"))
    assert_pages_link_existing_files(visitor, case)
    for n in range(7, 25):
        with failing_saves({n}, after_write=n % 2 == 0) as faults:
            attempt(build_renditions, case)
        assert faults.fired == 1
        check_public_case_after_fault(WRITE, visitor, case)

    # Publishing through the review view: writes 1-6 copy the renditions to public storage
    # after the approval committed. The reviewer gets an answer, never a 500.
    case = review_case()
    for n, after_write in [(n, m) for n in range(1, 7) for m in (False, True)]:
        with failing_saves({n}, after_write) as faults:
            publish(reviewer, case)
        assert faults.fired == 1
        check_public_case_after_fault(WRITE, visitor, case, prime=False)
        unpublish(reviewer, case)
        assert_not_public(case)
    assert_consistent(WRITE)

    # Publishing a case with its JPEGs only: writes 1-6 render its public set (AVIF, WebP
    # and JPEG of both photos) before the approval. A failure there refuses the publication
    # with a reason: the case stays in review, nothing public, nothing orphaned.
    for n in range(1, 7):
        case = review_case(public_set=False)
        with failing_saves({n}, after_write=n % 2 == 0) as faults:
            response = reviewer.post(f"/staff/cases/{case.pk}/publish/", OVERRIDE, follow=True)
        assert faults.fired == 1
        assert "The public photos could not be made just now" in response.content.decode()
        case.refresh_from_db()
        assert case.status == Case.Status.REVIEW
        assert_not_public(case)
        assert_consistent(WRITE)
        publish(reviewer, case)
        assert_fully_public(case)
        assert_pages_link_existing_files(visitor, case)

    assert INJECTED[WRITE] >= FAULTS_PER_POINT


# --- 2. storage deletes --------------------------------------------------------------


def test_failed_storage_deletes_leave_only_orphans_that_the_sweep_removes(
    photographer, reviewer, visitor
):
    rng = random.Random(2026)

    def pattern() -> set[int]:
        return {i for i in range(1, 40) if rng.random() < 0.5}

    # Removing a photo: its original and renditions are deleted after commit, then the
    # remaining photo is rendered alone and its pair renditions are deleted.
    case = draft_case(photographer.user, views=("front",))
    start = INJECTED[DELETE]
    while INJECTED[DELETE] - start < 35:
        target = case.photos.get(role="after")
        with failing_deletes(pattern()):
            response = photographer.client.post(
                f"/staff/cases/{case.pk}/photos/{target.pk}/delete/"
            )
        assert response.status_code == 302
        assert not Photo.objects.filter(pk=target.pk).exists()
        assert case.photos.get().rendered_at is not None
        assert_consistent(DELETE)
        add_photo(case, "after", "front", io.BytesIO(photo_bytes(1, "after")), "after.jpg")
        build_renditions(case)

    # Rebuilding a public case deletes the old renditions and the old public copies (24).
    case = public_case(views=("front", "left_oblique"))
    assert_pages_link_existing_files(visitor, case)
    start = INJECTED[DELETE]
    while INJECTED[DELETE] - start < 35:
        with failing_deletes(pattern()):
            assert attempt(build_renditions, case) is None
        assert_fully_public(case)
        check_public_case_after_fault(DELETE, visitor, case)

    # Unpublishing: the rows let go of the public copies first, so no page links a copy
    # whose delete failed, and the sweep removes it.
    start = INJECTED[DELETE]
    while INJECTED[DELETE] - start < 30:
        with failing_deletes(pattern()):
            unpublish(reviewer, case)
        assert_not_public(case)
        assert_pages_link_existing_files(visitor, case)
        assert_consistent(DELETE)
        publish(reviewer, case)
        assert_fully_public(case)

    # Withdrawal takes down every case under the consent, whatever the deletes do.
    consent = make_consent()
    cases = [public_case(patient=consent.patient, consent=consent) for _ in range(3)]
    for case in cases:
        assert_pages_link_existing_files(visitor, case)
    with failing_deletes(set(range(1, 40, 2))):
        assert consent.withdraw(by=make_user()) is True
    for case in cases:
        assert_not_public(case)
        assert_pages_link_existing_files(visitor, case)
    assert_consistent(DELETE)

    assert INJECTED[DELETE] >= FAULTS_PER_POINT


# --- 3. the database after a storage write -------------------------------------------


def test_database_failures_after_a_storage_write_never_leave_a_row_pointing_at_a_missing_file(
    photographer, reviewer, visitor
):
    # The upload view: write 1 is the photo INSERT, write 2 its renditions UPDATE; commit
    # 1 is the INSERT's, commit 2 the renditions'. A lost INSERT asks for a retry (also
    # when the row was in fact committed); the same file sent again mends everything.
    for n, mode in [(n, m) for n in (1, 2) for m in ("before", "after", "commit")]:
        case = draft_case(photographer.user)
        with failing_database({n}, mode) as faults:
            response = upload(photographer.client, case, "before")
        assert faults.fired == 1
        if n == 1:
            assert_asks_to_retry(response)
        else:
            assert response.status_code == 201
        assert_consistent(DATABASE)
        retry = upload(photographer.client, case, "before")
        assert retry.status_code == 201 and retry.json()["photo"]["rendered"] is True
        assert case.photos.count() == 1

    # add_photo as the importer calls it: the INSERT fails, or its commit's answer is lost.
    case = draft_case(photographer.user)
    views = [v for v, _ in Photo.View.choices]
    for mode in ("before", "after", "commit", "before", "after", "commit"):
        for view in views:
            sent = photo_bytes(1, "before")
            with failing_database({1}, mode) as faults:
                error = attempt(add_photo, case, "before", view, io.BytesIO(sent), "a.jpg")
            assert faults.fired == 1 and isinstance(error, OperationalError)
            assert case.photos.filter(view=view).exists() == (mode == "commit")
            assert_consistent(DATABASE)
            add_photo(case, "before", view, io.BytesIO(sent), "a.jpg")
            assert rows_per_slot(case) == 1
        for photo in case.photos.all():
            remove_photo(photo)
        assert_consistent(DATABASE)

    # A rebuild of a draft case with two pairs: writes 1-4 switch the renditions, two per
    # pair in one transaction each (commits 1-2).
    case = draft_case(photographer.user, views=("front", "left_oblique"))
    plan = [(n, m) for n in range(1, 5) for m in ("before", "after")]
    plan += [(n, "commit") for n in range(1, 3)]
    for _ in range(5):
        for n, mode in plan:
            old = renditions_of(case)
            with failing_database({n}, mode) as faults:
                error = attempt(build_renditions, case)
            assert faults.fired == 1 and isinstance(error, OperationalError)
            assert_rendered_whole(case, old)
            assert_consistent(DATABASE)
    assert attempt(build_renditions, case) is None

    # A rebuild of a public pair: writes 1-2 switch the renditions (commit 1), writes 3-4
    # claim the new public copies in autocommit.
    case = public_case()
    assert_pages_link_existing_files(visitor, case)
    for n, mode in [(n, m) for n in range(1, 5) for m in ("before", "after")] + [(1, "commit")]:
        with failing_database({n}, mode) as faults:
            attempt(build_renditions, case)
        assert faults.fired == 1
        check_public_case_after_fault(DATABASE, visitor, case)

    # Publishing through the review view: writes 1-2 claim the public copies.
    case = review_case()
    for n in (1, 2):
        for mode in ("before", "after"):
            with failing_database({n}, mode) as faults:
                publish(reviewer, case)
            assert faults.fired == 1
            check_public_case_after_fault(DATABASE, visitor, case, prime=False)
            unpublish(reviewer, case)
            assert_not_public(case)

    # Unpublishing: writes 1-2 let go of the public copies (no storage write first). The
    # rule hides the case at once; the scheduled sync removes what the failure left.
    publish(reviewer, case)
    for n in (1, 2):
        for mode in ("before", "after"):
            with failing_database({n}, mode, armed=True) as faults:
                unpublish(reviewer, case)
            assert faults.fired == 1
            assert_consistent(DATABASE)
            assert_pages_link_existing_files(visitor, case)
            sync_publication()
            assert_not_public(case)
            assert_consistent(DATABASE)
            publish(reviewer, case)
            assert_fully_public(case)

    # A withdrawal: a failure on the first case must not leave the others up.
    consent = make_consent()
    cases = [public_case(patient=consent.patient, consent=consent) for _ in range(3)]
    with failing_database({1}, "before", armed=True) as faults:
        assert consent.withdraw(by=make_user()) is True
    assert faults.fired == 1
    # Only the case whose update failed still holds public copies; the rule already hides
    # it, and the scheduled sync takes the copies down.
    assert sum(c.photos.exclude(public_key="").exists() for c in cases) == 1
    for case in cases:
        assert_pages_link_existing_files(visitor, case)
    sync_publication()
    for case in cases:
        assert_not_public(case)
    assert_consistent(DATABASE)

    assert INJECTED[DATABASE] >= FAULTS_PER_POINT


# --- 4. rendition building -----------------------------------------------------------


def test_failed_rendition_builds_keep_the_last_good_renditions_and_can_be_retried(
    photographer, reviewer, visitor
):
    # The upload view: the photo is kept without renditions; sending it again renders it.
    for error_type in RENDER_ERRORS:
        case = draft_case(photographer.user)
        with failing_render({1}, "render_crop", error_type) as faults:
            response = upload(photographer.client, case, "before")
        assert faults.fired == 1
        assert response.status_code == 201 and response.json()["photo"]["rendered"] is False
        assert_consistent(RENDER)
        retry = upload(photographer.client, case, "before")
        assert retry.status_code == 201 and retry.json()["photo"]["rendered"] is True

    # A rebuild of a draft case with two pairs (4 photos, 4 encodes: a draft's JPEGs),
    # failing as it starts, while converting colour, or while encoding, with each kind of
    # error.
    case = draft_case(photographer.user, views=("front", "left_oblique"))
    plan = [("render_crop", n) for n in range(1, 5)]
    plan += [("_to_srgb", n) for n in range(1, 5)]
    plan += [("encode", n) for n in range(1, 5)]
    for error_type in RENDER_ERRORS:
        for where, n in plan:
            old = renditions_of(case)
            with failing_render({n}, where, error_type) as faults:
                error = attempt(build_renditions, case)
            assert faults.fired == 1 and error is not None
            assert_rendered_whole(case, old)
            assert_consistent(RENDER)
    assert attempt(build_renditions, case) is None

    # A rebuild of a public case with two pairs: failures in the second pair come after
    # the first switched and lost its public copies.
    case = public_case(views=("front", "left_oblique"))
    assert_pages_link_existing_files(visitor, case)
    plan = [("render_crop", n) for n in range(1, 5)]
    plan += [("_to_srgb", n) for n in range(1, 5)]
    plan += [("encode", n) for n in range(1, 13)]
    for i, (where, n) in enumerate(plan):
        with failing_render({n}, where, RENDER_ERRORS[i % len(RENDER_ERRORS)]) as faults:
            error = attempt(build_renditions, case)
        assert faults.fired == 1 and error is not None
        check_public_case_after_fault(RENDER, visitor, case)
    assert_pages_link_existing_files(visitor, case, and_the_list=True)

    # A new crop through the staff view: the pair is rendered again (its 2 JPEGs); a
    # failure keeps the old renditions.
    case = draft_case(photographer.user, views=("front",))
    target = case.photos.get(role="after")
    for n in range(1, 3):
        old = renditions_of(case)
        with failing_render({n}, "encode", RENDER_ERRORS[n % len(RENDER_ERRORS)]):
            response = photographer.client.post(
                f"/staff/cases/{case.pk}/photos/{target.pk}/crop/",
                {"zoom": "1.5", "centre_x": "0.5", "centre_y": "0.5"},
            )
        assert response.status_code == 302
        assert renditions_of(case) == old
        assert_consistent(RENDER)

    # Publishing a case with its JPEGs only renders its public set first (2 photos, 6
    # encodes): a failure there refuses the publication; the case stays in review with
    # its JPEGs, and publishing again works.
    case = review_case(public_set=False)
    plan = [("render_crop", n) for n in range(1, 3)]
    plan += [("_to_srgb", n) for n in range(1, 3)]
    plan += [("encode", n) for n in range(1, 7)]
    for error_type in RENDER_ERRORS:
        for where, n in plan:
            old = renditions_of(case)
            with failing_render({n}, where, error_type) as faults:
                response = reviewer.post(f"/staff/cases/{case.pk}/publish/", OVERRIDE, follow=True)
            assert faults.fired == 1
            assert "The public photos could not be made just now" in response.content.decode()
            assert renditions_of(case) == old
            assert_not_public(case)
            assert_consistent(RENDER)
    publish(reviewer, case)
    assert_fully_public(case)

    assert INJECTED[RENDER] >= FAULTS_PER_POINT


# --- double submits ------------------------------------------------------------------


def test_the_same_photo_sent_twice_makes_one_photo_and_one_original(photographer):
    case = draft_case(photographer.user)
    first = upload(photographer.client, case, "before")
    second = upload(photographer.client, case, "before")
    assert first.status_code == second.status_code == 201
    assert first.json()["photo"]["id"] == second.json()["photo"]["id"]
    assert case.photos.count() == 1
    assert len([n for n in stored_files("default") if n.startswith("originals/")]) == 1
    assert sweep_storage(grace_minutes=0, dry_run=True) == []
    assert_consistent("double submit")


@contextmanager
def while_saving_the_original(action):
    """Run ``action`` (the other request) while this request writes its original: both
    passed the duplicate check, and the other one saves its row first."""
    real = FileSystemStorage._save
    done = []

    def _save(storage, name, content):
        if name.startswith("originals/") and not done:
            done.append(True)
            action()
        return real(storage, name, content)

    with mock.patch.object(FileSystemStorage, "_save", _save):
        yield done


def test_a_double_submit_racing_past_the_duplicate_check_makes_one_photo(photographer):
    case = draft_case(photographer.user)
    other = []

    def other_request():
        other.append(
            add_photo(case, "before", "front", io.BytesIO(photo_bytes(1, "before")), "a.jpg")
        )

    with while_saving_the_original(other_request) as raced:
        response = upload(photographer.client, case, "before")
    assert raced and response.status_code == 201
    assert response.json()["photo"]["id"] == other[0].pk
    assert case.photos.count() == 1
    assert len([n for n in stored_files("default") if n.startswith("originals/")]) == 1
    assert sweep_storage(grace_minutes=0, dry_run=True) == []  # the loser cleaned up
    assert_consistent("double submit")


def test_a_different_photo_racing_for_the_same_slot_is_refused_with_a_reason(photographer):
    case = draft_case(photographer.user)

    def other_request():
        add_photo(case, "before", "front", io.BytesIO(photo_bytes(2, "before")), "b.jpg")

    with while_saving_the_original(other_request):
        response = upload(photographer.client, case, "before")
    assert response.status_code == 400
    assert "at the same time" in response.json()["error"]
    assert case.photos.count() == 1
    assert sweep_storage(grace_minutes=0, dry_run=True) == []
    assert_consistent("double submit")


def test_two_simultaneous_uploads_of_the_same_photo_make_one_photo(photographer):
    """Two requests in two threads, held together until both are writing the original, so
    both passed the duplicate check. The database may refuse the second writer (SQLite's
    lock): that request is asked to try again, never answered with a 500."""
    case = draft_case(photographer.user)
    both_writing = threading.Barrier(2, timeout=30)
    real = FileSystemStorage._save
    responses = []

    def _save(storage, name, content):
        if name.startswith("originals/"):
            both_writing.wait()
        return real(storage, name, content)

    def send():
        client = https_client()
        client.cookies = photographer.client.cookies
        try:
            f = io.BytesIO(photo_bytes(1, "before"))
            f.name = "before.jpg"
            responses.append(
                client.post(
                    f"/staff/cases/{case.pk}/photos/",
                    {"file": f, "role": "before", "view": "front"},
                )
            )
        finally:
            connections.close_all()

    with mock.patch.object(FileSystemStorage, "_save", _save):
        threads = [threading.Thread(target=send) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    statuses = sorted(r.status_code for r in responses)
    assert len(statuses) == 2 and statuses[0] == 201 and statuses[1] in (201, 503)
    for response in responses:
        if response.status_code == 503:
            assert_asks_to_retry(response)
    assert case.photos.count() == 1
    assert len([n for n in stored_files("default") if n.startswith("originals/")]) == 1
    retry = upload(photographer.client, case, "before")
    assert retry.status_code == 201 and retry.json()["photo"]["rendered"] is True
    assert case.photos.count() == 1
    assert_consistent("double submit")
