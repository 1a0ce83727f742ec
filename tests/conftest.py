"""Builders and fixtures shared by the tests.

Storage always points at a temporary folder: tests never write into the project's media/.
"""

import io
import itertools
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group, User
from django.utils import timezone
from django.utils.text import slugify
from PIL import Image

from consent.models import Consent, ConsentForm, Patient
from gallery.models import (
    Case,
    Concern,
    Location,
    Photo,
    Practitioner,
    Treatment,
    sessions_from_facts,
)

pytest_plugins = ["tests.browser", "tests.corpus"]

_counter = itertools.count(1)

DATABASE_FIXTURES = {"db", "transactional_db", "live_server", "django_db_setup"}


BROWSER_FIXTURES = {"chromium", "new_page"}


def pytest_sessionstart(session):
    """The translation catalogues compiled, as ``make test`` does, so that a plain pytest
    run shows the Spanish pages too (the .mo files are never committed)."""
    from pathlib import Path

    from django.utils.translation.reloader import translation_file_changed

    from clinic.management.commands.compile_catalogues import compile_catalogues

    compile_catalogues()
    translation_file_changed(sender=None, file_path=Path("django.mo"))  # forget loaded ones


def pytest_collection_modifyitems(items):
    """A backend_free test runs in CI's SQLite pass only: one that reached the database
    would silently lose its runs on PostgreSQL. A test that drives Chromium is a browser
    test, whether or not its module says so (``-m 'not browser'`` leaves out every test
    that needs Chromium)."""
    for item in items:
        if BROWSER_FIXTURES & set(item.fixturenames) and not item.get_closest_marker("browser"):
            item.add_marker(pytest.mark.browser)
        if item.get_closest_marker("backend_free") and (
            item.get_closest_marker("django_db") or DATABASE_FIXTURES & set(item.fixturenames)
        ):
            raise pytest.UsageError(f"{item.nodeid} is marked backend_free but uses the database")


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix, tmp_path_factory):
    """SQLite tests use a database file, not memory: the live server answers several
    requests at once (parallel uploads), and only a file database gives them WAL and a
    busy timeout instead of "database table is locked"."""
    from django.conf import settings

    database = settings.DATABASES["default"]
    if database["ENGINE"].endswith("sqlite3"):
        database.setdefault("TEST", {})["NAME"] = str(
            tmp_path_factory.mktemp("db") / "test.sqlite3"
        )


@pytest.fixture(autouse=True)
def isolated_media(tmp_path, settings):
    """Each test gets its own empty storages and cache.

    Local runs use temporary folders. When the S3 variables are set (CI's SeaweedFS pass)
    each test uses its own prefix in the real buckets; with REDIS_URL, its own key prefix
    in the real Redis."""
    import uuid

    settings.MEDIA_ROOT = tmp_path / "media"
    if settings.AWS_STORAGE_BUCKET_NAME:
        run = f"test-{uuid.uuid4().hex[:12]}"
        private = settings.STORAGES["default"]
        public = settings.STORAGES["public"]
        storages_config = {
            "default": {**private, "OPTIONS": {**private["OPTIONS"], "location": f"{run}/private"}},
            "public": {**public, "OPTIONS": {**public["OPTIONS"], "location": f"{run}/public"}},
        }
    else:
        storages_config = {
            "default": {
                "BACKEND": "django.core.files.storage.FileSystemStorage",
                "OPTIONS": {
                    "location": tmp_path / "media" / "private",
                    "base_url": "/private-not-served/",
                },
            },
            "public": {
                "BACKEND": "django.core.files.storage.FileSystemStorage",
                "OPTIONS": {
                    "location": tmp_path / "media" / "public",
                    "base_url": "/media/public/",
                },
            },
        }
    settings.STORAGES = {
        **settings.STORAGES,
        **storages_config,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    if settings.REDIS_URL:
        settings.CACHES = {
            "default": {
                "BACKEND": "django.core.cache.backends.redis.RedisCache",
                "LOCATION": settings.REDIS_URL,
                "KEY_PREFIX": f"test-{uuid.uuid4().hex[:12]}",
            }
        }
    else:
        settings.CACHES = {
            "default": {
                "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
                "LOCATION": str(tmp_path / "cache"),
            }
        }
    settings.ALLOWED_HOSTS = ["testserver", "localhost", "127.0.0.1"]
    settings.GALLERY_WATERMARK_TEXT = ""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    return tmp_path / "media"


@pytest.fixture
def local_storage(settings, tmp_path):
    """For the few tests that need a real folder (file times): local storage even in the
    S3 pass."""
    settings.SERVE_PUBLIC_MEDIA = True
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": tmp_path / "local" / "private"},
        },
        "public": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": tmp_path / "local" / "public", "base_url": "/media/public/"},
        },
    }


def fetch(client, url: str):
    """GET a URL the way a browser would: the app through the test client, an object
    store (absolute http URL) over the network. Returns (status, body, headers)."""
    if url.startswith(("http://", "https://")) and not url.startswith("http://testserver"):
        import urllib.error
        import urllib.request

        try:
            with urllib.request.urlopen(url, timeout=20) as response:
                return response.status, response.read(), dict(response.headers)
        except urllib.error.HTTPError as error:
            return error.code, error.read(), dict(error.headers)
    response = client.get(url)
    body = b"".join(response.streaming_content) if response.streaming else response.content
    return response.status_code, body, dict(response.items())


@pytest.fixture
def reference_data(transactional_db):
    """Reference data for transactional tests, whose database is emptied after each test:
    the data migrations' own functions, run again."""
    import importlib

    from django.apps import apps

    for module in (
        "consent.migrations.0002_first_consent_form",
        "gallery.migrations.0002_reference_data",
        "gallery.migrations.0003_roles",
    ):
        importlib.import_module(module).create(apps, None)
    importlib.import_module("gallery.migrations.0009_treatment_faq").distinct_faq(apps, None)
    # The first consent form's Spanish text.
    importlib.import_module("consent.migrations.0007_consent_language").forward(apps, None)


def now():
    return timezone.now()


def make_user(username=None, groups=(), **kw) -> User:
    user = User.objects.create_user(
        username=username or f"user{next(_counter)}", password="correct-horse-battery", **kw
    )
    if groups:
        user.groups.set(Group.objects.filter(name__in=groups))
    return user


def make_patient(**kw) -> Patient:
    n = next(_counter)
    defaults = {"reference": f"P-{n:05d}", "full_name": f"Patient {n}"}
    return Patient.objects.create(**{**defaults, **kw})


def make_consent(patient=None, **kw) -> Consent:
    patient = patient or make_patient()
    t = now()
    defaults = {
        "form": ConsentForm.objects.get(version="2026-1"),
        "allow_website": True,
        "identifiable": True,
        "patient_is_adult": True,
        "signed_at": t - timedelta(days=30),
        "signed_by_name": patient.full_name,
        "expires_at": t + timedelta(days=365),
    }
    return Consent.objects.create(patient=patient, **{**defaults, **kw})


def make_location(slug="demo-skin-clinic", country="US", **kw) -> Location:
    """A clinic location (the migration's first one is ``demo-skin-clinic``, in the US)."""
    defaults = {
        "name": slug.replace("-", " ").title(),
        "country": country,
        "booking_url": f"https://example.com/book/{slug}",
    }
    location, _ = Location.objects.get_or_create(slug=slug, defaults={**defaults, **kw})
    return location


def make_practitioner(slug="dr-test", locations=None, **kw) -> Practitioner:
    defaults = {"name": "Dr. Test", "credentials": ""}
    practitioner, _ = Practitioner.objects.get_or_create(slug=slug, defaults={**defaults, **kw})
    practitioner.locations.add(*(locations or [make_location()]))
    return practitioner


def make_case(photos=True, concerns=("acne-scars",), listed=True, sessions=True, **kw) -> Case:
    """A case that is public unless told otherwise (photo rows without files), with
    session records that derive its typed facts.

    ``listed=False`` leaves the listing to the caller, who builds many cases and then
    brings the listing in step once (``sync_listing()``)."""
    patient = kw.pop("patient", None) or make_patient()
    consent = kw.pop("consent", None) or make_consent(patient)
    reviewer = kw.pop("reviewed_by", None)
    status = kw.get("status", Case.Status.PUBLISHED)
    if status == Case.Status.PUBLISHED and reviewer is None:
        reviewer = make_user()
    defaults = {
        "treatment": Treatment.objects.get(slug="microneedling"),
        "fitzpatrick": 3,
        "skin_type": "normal",
        "needle_depth_mm": Decimal("1.50"),
        "session_count": 3,
        "session_interval_weeks": 4,
        "weeks_after_last_session": 12,
        "status": Case.Status.PUBLISHED,
        "published_at": now() - timedelta(days=1) if status == Case.Status.PUBLISHED else None,
    }
    if isinstance(kw.get("practitioner"), str):  # a name: that practitioner, made once
        name = kw["practitioner"]
        kw["practitioner"] = make_practitioner(slugify(name) or "practitioner", name=name)
    if "location" not in kw:
        kw["location"] = kw["practitioner"].locations.first() if "practitioner" in kw else None
        kw["location"] = kw["location"] or make_location()
    if "practitioner" not in kw:
        kw["practitioner"] = make_practitioner(locations=[kw["location"]])
    case = Case.objects.create(
        patient=patient, consent=consent, reviewed_by=reviewer, **{**defaults, **kw}
    )
    case.concerns.set(Concern.objects.filter(slug__in=concerns))
    if photos:
        for role in ("before", "after"):
            make_photo_row(case, role)
    if sessions:
        sessions_from_facts(
            case,
            needle_depth_mm=case.needle_depth_mm,
            session_count=case.session_count,
            session_interval_weeks=case.session_interval_weeks,
            weeks_after_last_session=case.weeks_after_last_session,
        )
    return relist(case) if listed else case


def relist(case: Case) -> Case:
    """What the app does after any change to a case's standing (``sync_public_files``):
    bring the listing in step with the rule and start a new publication generation."""
    from gallery.cache import new_generation
    from gallery.listing import sync_listing

    sync_listing([case.pk])
    new_generation()
    case.refresh_from_db(fields=["listed_until"])
    return case


def make_listed_case(**kw) -> Case:
    """A public case whose photo rows claim public renditions (no files): for page tests
    that count queries and must not touch storage."""
    case = make_case(photos=False, **kw)
    for role in ("before", "after"):
        make_photo_row(case, role, public_key=f"k{next(_counter)}")
    return relist(case)


def make_photo_row(case, role, view="front", rendered=True, **kw) -> Photo:
    """A photo row with fake rendition entries: for rule tests that do no file I/O."""
    return Photo.objects.create(
        case=case,
        role=role,
        view=view,
        original=f"originals/fake-{next(_counter)}.jpg",
        original_format="jpeg",
        sha256="0" * 64,
        width=1200,
        height=900,
        rendered_at=now() if rendered else None,
        renditions=[
            {"format": f, "width": 480, "height": 360, "name": f"renditions/x/480.{f}", "bytes": 1}
            for f in ("avif", "webp", "jpeg")
        ]
        if rendered
        else [],
        **kw,
    )


def jpeg_bytes(size=(1200, 900), color=(200, 150, 130), **save) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="JPEG", quality=90, **save)
    return buf.getvalue()


def skin_jpeg(seed=1, fitzpatrick=3, role="before", size=(1200, 900)) -> bytes:
    from gallery.demo_images import skin_pair

    before, after = skin_pair(seed=seed, fitzpatrick=fitzpatrick, concern="acne-scars", size=size)
    buf = io.BytesIO()
    (before if role == "before" else after).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def make_public_case(**kw) -> Case:
    """A truly public case: real photos through the pipeline, renditions in public storage."""
    from gallery.publication import add_photo, build_renditions

    case = make_case(photos=False, **kw)
    seed = next(_counter)
    for role in ("before", "after"):
        add_photo(
            case,
            role,
            "front",
            io.BytesIO(skin_jpeg(seed, case.fitzpatrick, role, (800, 600))),
            f"{role}.jpg",
        )
    build_renditions(case)
    case.refresh_from_db()
    return case


def stored_files(storage_name: str = "default") -> list[str]:
    """Every file in a storage (local folder or S3 prefix), relative to its root."""
    from django.core.files.storage import storages

    from gallery.publication import walk_storage

    return sorted(walk_storage(storages[storage_name]))


def sessions_form_data(sessions, initial: int = 0) -> dict:
    """The staff case form's session fields: ``sessions`` is a list of
    ``(date, device, [(zone, depth, rf_energy, rf_passes), …])``."""
    data = {
        "sessions-TOTAL_FORMS": str(len(sessions)),
        "sessions-INITIAL_FORMS": str(initial),
        "sessions-MIN_NUM_FORMS": "1",
        "sessions-MAX_NUM_FORMS": "30",
    }
    for n, (day, device, zones) in enumerate(sessions):
        prefix = f"sessions-{n}"
        data |= {
            f"{prefix}-performed_on": day.isoformat(),
            f"{prefix}-device": device,
            f"{prefix}-zones-TOTAL_FORMS": str(len(zones)),
            f"{prefix}-zones-INITIAL_FORMS": "0",
            f"{prefix}-zones-MIN_NUM_FORMS": "1",
            f"{prefix}-zones-MAX_NUM_FORMS": "15",
        }
        for m, (zone, depth, energy, passes) in enumerate(zones):
            data |= {
                f"{prefix}-zones-{m}-zone": zone,
                f"{prefix}-zones-{m}-needle_depth_mm": depth,
                f"{prefix}-zones-{m}-rf_energy": "" if energy is None else str(energy),
                f"{prefix}-zones-{m}-rf_passes": "" if passes is None else str(passes),
            }
    return data


def weeks_ago(weeks: int, days: int = 0):
    return timezone.localdate() - timedelta(weeks=weeks, days=days)
