#!/usr/bin/env python
"""The public gallery list at 1,000 and at 100,000 public cases, on PostgreSQL.

Usage::

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/scale.py
    ... bench/scale.py --quick                 # smoke test: 200 -> 5,000 cases, 5 requests
    ... bench/scale.py --strict                # exit 1 when a target fails
    ... bench/scale.py --try-sql "CREATE INDEX ..." --try-sql "SET jit = off"

Targets (from the issue):

* the gallery list's median latency at 100,000 public cases is at most 1.5x its median at
  1,000 public cases, measured in the same run, for each representative URL;
* the number of queries per page is the same at both sizes;
* ``EXPLAIN`` shows index use for the common filters (reported, not a pass/fail target:
  a plan that reads every public case for the facet counts is a finding, not a bug in
  the benchmark).

What it does:

1. Creates two fresh databases ``scalebench_<hex>_small`` and ``_large`` on the server of
   ``DATABASE_URL`` (which must be PostgreSQL), migrates both, and always drops them.
2. Loads 1,000 public cases into the first and 100,000 into the second, each plus ~10% that
   the publication rule must reject (drafts, withdrawn, expired and website-less consents,
   unrendered photos), with COPY: patients, consents, cases, their concerns and two photos
   each (before/after, front view) with rendition entries and a public key but no files (the
   list page never touches storage). ``VACUUM (ANALYZE)``, as autovacuum would have done on
   a database that grew slowly. The COPY bypassed the app, so the app's own ``sync_listing``
   then marks the listed cases (``sync_publication`` does the same on a running site) and
   the generation's facet cube is built once (``gallery/listing.py``); both are timed and
   printed, the cube build being what the first list request after a publication change
   costs.
3. Measures every URL on both databases in the same process: ``--warmup`` rounds, then
   ``--requests`` rounds, each round measuring both sizes (in alternating order, the
   connection switched between them untimed, URL order rotated every round), so that a
   change in the machine's load lands on both sizes alike. The view is called in-process
   through ``RequestFactory``. The page cache (``gallery/cache.py``) is bypassed by calling
   the view beneath its decorators (``inspect.unwrap``): cached, every page would answer in
   the same time at any size. The reference-data cache stays warm (shared, cheap, unrelated
   to the case count). Each timed request also records the wall time of its queries by kind
   (facet aggregate, page rows, photos prefetch) through ``connection.execute_wrapper``, so
   the time can be split into queries and Python. One more request per URL is run under
   ``CaptureQueriesContext`` to count its queries and keep their SQL.
4. (The large database holds ~111,000 cases in all, 100,000 of them public.) The home
   page, a treatment page, a case page and the first sitemap file are measured alongside
   and reported in a table of their own: they are not part of the target.
5. Runs ``EXPLAIN (ANALYZE, BUFFERS)`` on every captured query at 100,000 and prints the
   plans, the scans they use (index or sequential), their slowest nodes, their worst row
   estimate, where each request's time goes, and the table of medians, ratios and query
   counts with PASS/FAIL.
6. ``--try-sql`` (repeatable): after that, runs each statement on the scratch database
   (an index to try, a ``SET`` for the session) and measures 100,000 again, before/after.

Isolation: the database is a new one, dropped in ``finally``; MEDIA_ROOT, the file cache
and STATIC_ROOT (collectstatic, for the manifest the templates' ``{% static %}`` needs with
debug off) live in a temporary directory; AWS_* and REDIS_URL are removed so nothing
shared is touched. Debug is off (no query log kept per request), plain http.

The exit status is 0 (it is a benchmark) unless ``--strict`` is given and a target failed.
"""

from __future__ import annotations

import argparse
import functools
import inspect
import json
import os
import random
import re
import secrets
import statistics
import string
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from common import print_table

if TYPE_CHECKING:
    import psycopg

SCRIPT = Path(__file__).resolve()
ROOT = SCRIPT.parent.parent  # the Django project root (holds manage.py)

TARGET_RATIO = 1.5  # median at the large size / median at the small size, at most
HIDDEN_FRACTION = 0.10  # share of all cases the publication rule must reject

# The representative URLs of the issue: the list unfiltered, the common filters, a sort,
# a second page, and the JSON API.
URLS = [
    "/gallery/",
    "/gallery/?fitzpatrick=4",
    "/gallery/?treatment=rf-microneedling&concern=acne-scars",
    "/gallery/?fitzpatrick=2&fitzpatrick=3&sort=sessions",
    "/gallery/?page=2",
    "/api/cases/?fitzpatrick=5",
]

# Other public pages, measured the same way and reported, not part of the target: the
# home page, a treatment page and a case page (the newest public case of each database is
# given this public id, so the same path exists in both).
BENCH_CASE_ID = "benchcase01"
OTHER_URLS = [
    "/",
    "/treatments/microneedling/",
    f"/gallery/{BENCH_CASE_ID}/",
    "/sitemap.xml?page=1",  # a sitemap file: all 1,000 cases, or the first 10,000 of 100,000
]
HTML_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"

# Variables that would point the benchmark at shared infrastructure.
DROPPED_ENV_PREFIXES = ("AWS_",)
DROPPED_ENV = {"REDIS_URL", "PUBLIC_MEDIA_URL", "DJANGO_SETTINGS_MODULE"}

SCAN_NODES = {
    "Seq Scan",
    "Index Scan",
    "Index Only Scan",
    "Bitmap Index Scan",
    "Bitmap Heap Scan",
}
INDEX_NODES = {"Index Scan", "Index Only Scan", "Bitmap Index Scan"}


# ---------------------------------------------------------------------------------------
# The scratch database (before Django is imported: settings read DATABASE_URL once)


def scratch_urls(url: str) -> tuple[str, str]:
    """(the new database's URL, its name), on the server of ``url``."""
    name = f"scalebench_{secrets.token_hex(6)}"
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}")), name


def maintenance_connect(url: str) -> psycopg.Connection[Any]:
    """An autocommit connection to the server's maintenance database (CREATE/DROP
    DATABASE cannot run in a transaction, nor connected to the database itself)."""
    import psycopg

    last: Exception | None = None
    for dbname in ("postgres", "template1"):
        try:
            return psycopg.connect(url, dbname=dbname, autocommit=True, connect_timeout=10)
        except psycopg.OperationalError as exc:
            last = exc
    raise SystemExit(f"cannot connect to the PostgreSQL server of DATABASE_URL: {last}")


def create_database(url: str, name: str) -> None:
    from psycopg import sql

    with maintenance_connect(url) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def drop_database(url: str, name: str) -> None:
    from psycopg import sql

    with maintenance_connect(url) as conn:
        # FORCE: a connection left open by a crash must not keep 100,000 cases on disk.
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def configure_environment(database_url: str, tmp: Path) -> None:
    """Point the project's env-driven settings at the scratch database and temp dirs."""
    for key in list(os.environ):
        if key in DROPPED_ENV or key.startswith(DROPPED_ENV_PREFIXES):
            del os.environ[key]
    os.environ.update(
        DJANGO_SETTINGS_MODULE="clinic.settings",
        DATABASE_URL=database_url,
        DJANGO_SECRET_KEY="bench-only",
        DJANGO_DEBUG="off",
        DJANGO_HTTPS="off",
        DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost",
        MEDIA_ROOT=str(tmp / "media"),
        CACHE_DIR=str(tmp / "cache"),
        STATIC_ROOT=str(tmp / "staticfiles"),
        TASKS_BACKEND="immediate",
        AXES_ENABLED="off",
        LOG_LEVEL="WARNING",
    )
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))


# ---------------------------------------------------------------------------------------
# Data: COPY through psycopg, ids chosen here so the rows can refer to each other


PUBLIC_ID_ALPHABET = string.ascii_letters + string.digits
AREA_WEIGHTS = {
    "face": 30,
    "cheeks": 20,
    "forehead": 10,
    "neck": 8,
    "chest": 8,
    "abdomen": 8,
    "back": 6,
    "arms": 4,
    "thighs": 4,
    "hands": 2,
}
DEPTHS = [Decimal(d) for d in ("0.25", "0.50", "0.75", "1.00", "1.50", "2.00", "2.50", "3.00")]
PRACTITIONERS = [
    ("Dr. Amara Okafor", "Consultant dermatologist"),
    ("Lena Brandt", "Registered nurse, aesthetic practitioner"),
    ("Dr. Tomás Rivera", "Dermatologist"),
]
# Ways a case fails the publication rule, each a separate clause of ``public()``.
HIDDEN_KINDS = ["draft", "withdrawn", "expired", "no_website", "unrendered"]


@dataclass
class Reference:
    """Rows every generated case points at, read once after migrating."""

    form_id: int
    reviewer_id: int
    treatment_ids: list[int]
    concern_ids: list[int]


@dataclass
class Rows:
    """One batch of generated rows, per model, as dicts of field name -> value."""

    patients: list[dict[str, Any]] = field(default_factory=list)
    consents: list[dict[str, Any]] = field(default_factory=list)
    cases: list[dict[str, Any]] = field(default_factory=list)
    concerns: list[dict[str, Any]] = field(default_factory=list)
    photos: list[dict[str, Any]] = field(default_factory=list)


class Generator:
    """Deterministic synthetic cases; ``batch`` continues where the last one stopped."""

    def __init__(self, ref: Reference, now: datetime, seed: int = 20260) -> None:
        self.ref = ref
        self.now = now
        self.rng = random.Random(seed)
        self.next_id = 1  # one counter for patients, consents and cases: one each per case
        self.next_through = 1
        self.next_photo = 1
        self.public = 0  # public cases generated so far
        self.public_ids: set[str] = set()
        self.areas = list(AREA_WEIGHTS)
        self.area_weights = list(AREA_WEIGHTS.values())

    def token(self, n: int, alphabet: str = PUBLIC_ID_ALPHABET) -> str:
        return "".join(self.rng.choices(alphabet, k=n))

    def public_id(self) -> str:
        while True:
            value = self.token(10)
            if value not in self.public_ids:
                self.public_ids.add(value)
                return value

    def batch(self, public: int, hidden: int) -> Rows:
        self.public += public
        kinds = ["public"] * public + [HIDDEN_KINDS[i % len(HIDDEN_KINDS)] for i in range(hidden)]
        self.rng.shuffle(kinds)  # hidden cases spread through ids and dates, not at the end
        rows = Rows()
        for kind in kinds:
            self.add_case(rows, kind)
        return rows

    def add_case(self, rows: Rows, kind: str) -> None:
        rng, now, i = self.rng, self.now, self.next_id
        self.next_id += 1
        published_at = now - timedelta(seconds=rng.randint(3600, 3 * 365 * 86400))
        signed_at = published_at - timedelta(days=rng.randint(7, 60))
        expires_at = now + timedelta(days=rng.randint(30, 3 * 365))
        withdrawn_at = None
        if kind == "expired":
            expires_at = now - timedelta(days=rng.randint(1, 300))
            signed_at = min(signed_at, expires_at - timedelta(days=30))
        if kind == "withdrawn":
            withdrawn_at = now - timedelta(days=rng.randint(0, 20))
            signed_at = min(signed_at, withdrawn_at - timedelta(days=1))
        deidentified = rng.random() < 0.2
        rows.patients.append(
            {
                "id": i,
                "reference": f"SCALE-{i:07d}",
                "full_name": f"Synthetic patient {i}",
                "created_at": signed_at,
            }
        )
        rows.consents.append(
            {
                "id": i,
                "patient_id": i,
                "form_id": self.ref.form_id,
                "allow_website": kind != "no_website",
                "allow_education": rng.random() < 0.5,
                # De-identified cases only need a consent to de-identified photos.
                "identifiable": not deidentified or rng.random() < 0.5,
                "patient_is_adult": True,
                "signed_at": signed_at,
                "signed_by_name": f"Synthetic patient {i}",
                "expires_at": expires_at,
                "recorded_at": signed_at,
                "withdrawn_at": withdrawn_at,
                "withdrawal_channel": "staff" if withdrawn_at else "",
            }
        )
        draft = kind == "draft"
        treatment_id = rng.choice(self.ref.treatment_ids)
        practitioner, credentials = rng.choice(PRACTITIONERS)
        rows.cases.append(
            {
                "id": i,
                "public_id": self.public_id(),
                "treatment_id": treatment_id,
                "body_area": rng.choices(self.areas, self.area_weights)[0],
                "fitzpatrick": rng.randint(1, 6),
                "skin_type": rng.choice(["normal", "dry", "oily", "combination", "sensitive"]),
                "needle_depth_mm": rng.choice(DEPTHS),
                "session_count": rng.randint(1, 8),
                "session_interval_weeks": rng.choice([4, 4, 6]),
                "weeks_after_last_session": 4 + rng.choice([0, 2, 4, 8, 12]),
                "patient_id": i,
                "consent_id": i,
                "practitioner": practitioner,
                "practitioner_credentials": credentials,
                "device": "Synthetic pen" if treatment_id == self.ref.treatment_ids[0] else "RF",
                "aftercare_notes": "Gentle cleanser, moisturiser and SPF 50 for two weeks.",
                "side_effects_notes": "Redness for two days after each session.",
                "deidentified": deidentified,
                "sensitive": rng.random() < 0.03,
                "status": "draft" if draft else "published",
                "created_by_id": self.ref.reviewer_id,
                "reviewed_by_id": None if draft else self.ref.reviewer_id,
                "published_at": None if draft else published_at,
                "created_at": signed_at + timedelta(days=1),
                "updated_at": published_at,
            }
        )
        # One concern, a second for a third of the cases (as the demo seed does).
        concerns = rng.sample(self.ref.concern_ids, 2 if rng.random() < 1 / 3 else 1)
        for concern_id in concerns:
            rows.concerns.append({"id": self.next_through, "case_id": i, "concern_id": concern_id})
            self.next_through += 1
        rendered = kind != "unrendered"
        for role in ("before", "after"):
            key = self.token(22)
            renditions = [
                {
                    "format": fmt,
                    "width": width,
                    "height": width * 3 // 4,
                    "name": f"renditions/{key}/{width}.{ext}",
                    "bytes": rng.randint(20_000, 400_000),
                }
                for width in (480, 960, 1600)
                for fmt, ext in (("avif", "avif"), ("webp", "webp"), ("jpeg", "jpg"))
            ]
            rows.photos.append(
                {
                    "id": self.next_photo,
                    "case_id": i,
                    "role": role,
                    "view": "front",
                    "taken_at": signed_at,
                    "original": f"originals/{self.token(32)}",
                    "original_format": "jpeg",
                    "sha256": self.token(64, "0123456789abcdef"),
                    "width": 4000,
                    "height": 3000,
                    "renditions": renditions if rendered else [],
                    "rendered_at": published_at if rendered else None,
                    # Only a publicly visible case has copies in public storage.
                    "public_key": self.token(22) if kind == "public" else "",
                    "created_at": signed_at,
                }
            )
            self.next_photo += 1


def copy_rows(model: Any, rows: list[dict[str, Any]]) -> None:
    """COPY ``rows`` into ``model``'s table.

    Fields a row leaves out get their model default (so a field someone adds with a
    default does not break the benchmark); one without a default is a clear error.
    """
    from django.db import connection
    from django.db.models import JSONField
    from django.db.models.fields import NOT_PROVIDED
    from psycopg import sql

    if not rows:
        return
    given = list(rows[0])
    fields = [model._meta.get_field(name) for name in given]
    constants: dict[str, Any] = {}
    for f in model._meta.concrete_fields:
        if f.name in given or f.attname in given or f.db_default is not NOT_PROVIDED:
            continue
        if f.has_default() or f.null or f.empty_strings_allowed:
            # The model default, else NULL, else "": what Django itself would insert.
            constants[f.attname] = f.get_default()
        else:
            raise SystemExit(
                f"bench/scale.py gives no value for {model.__name__}.{f.name}: add it to "
                "Generator.add_case"
            )
    extra = [model._meta.get_field(name) for name in constants]
    columns = [f.column for f in fields + extra]
    json_at = [i for i, f in enumerate(fields + extra) if isinstance(f, JSONField)]
    tail = list(constants.values())
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(model._meta.db_table), sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    with connection.cursor() as cursor:
        # The psycopg cursor beneath Django's wrapper: COPY is not in the DB-API.
        with cursor.cursor.copy(statement) as copy:
            for row in rows:
                values = [row[name] for name in given] + tail
                for i in json_at:
                    values[i] = json.dumps(values[i])
                copy.write_row(values)


def load(rows: Rows) -> None:
    from django.db import connection, transaction

    from consent.models import Consent, Patient
    from gallery.models import Case, Photo

    with transaction.atomic():
        copy_rows(Patient, rows.patients)
        copy_rows(Consent, rows.consents)
        copy_rows(Case, rows.cases)
        copy_rows(Case.concerns.through, rows.concerns)
        copy_rows(Photo, rows.photos)
    tables = [m._meta.db_table for m in (Patient, Consent, Case, Case.concerns.through, Photo)]
    with connection.cursor() as cursor:
        for table in tables:
            # The ids were chosen here: move the identity sequences past them.
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT max(id) FROM {table}))"
            )
        # VACUUM, not just ANALYZE: a freshly COPYed table has no visibility map, and an
        # Index Only Scan would then visit the heap for every row; autovacuum would have
        # set it on a database that grew over years.
        cursor.execute(f"VACUUM (ANALYZE) {', '.join(tables)}")


def reference_rows() -> Reference:
    from django.contrib.auth.models import User

    from consent.models import ConsentForm
    from gallery.models import Concern, Treatment

    form = ConsentForm.current()
    if form is None:
        raise SystemExit("no consent form after migrating (consent/migrations/0002)")
    reviewer = User.objects.create_user("scale-reviewer", is_staff=True)
    return Reference(
        form_id=form.pk,
        reviewer_id=reviewer.pk,
        treatment_ids=list(Treatment.objects.order_by("slug").values_list("pk", flat=True)),
        concern_ids=list(Concern.objects.order_by("slug").values_list("pk", flat=True)),
    )


# ---------------------------------------------------------------------------------------
# Requests


@dataclass
class Target:
    path: str
    view: Callable[..., Any]  # the view beneath the page cache
    api: bool


@dataclass
class Result:
    path: str
    times_ms: list[float] = field(default_factory=list)
    # Per timed request: milliseconds spent in each kind of query (see ``label_query``).
    query_ms: list[dict[str, float]] = field(default_factory=list)
    # Per timed request: CPU time of this process, i.e. the Python side alone. Unlike wall
    # time it barely moves when other jobs load the machine.
    cpu_ms: list[float] = field(default_factory=list)
    queries: int = 0
    sql: list[str] = field(default_factory=list)
    check: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.times_ms) if self.times_ms else float("nan")

    def median_of(self, label: str) -> float:
        return statistics.median(q.get(label, 0.0) for q in self.query_ms)

    def median_rest(self) -> float:
        """Median of (request - its queries): the ORM, the template, the view's Python."""
        rest = [t - sum(q.values()) for t, q in zip(self.times_ms, self.query_ms, strict=True)]
        return statistics.median(rest)


class QueryTimer:
    """A ``connection.execute_wrapper``: wall time of each query by kind, round trip
    included. Costs a clock read per query, unlike CaptureQueriesContext."""

    def __init__(self) -> None:
        self.ms: dict[str, float] = {}

    def __call__(
        self,
        execute: Callable[..., Any],
        sql: str,
        params: Any,
        many: bool,
        context: dict[str, Any],
    ) -> Any:
        t0 = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            label = label_query(sql)
            self.ms[label] = self.ms.get(label, 0.0) + (time.perf_counter() - t0) * 1000


def innermost(view: Callable[..., Any]) -> Callable[..., Any]:
    """The view function beneath require_GET and cached_public_page (both use wraps)."""
    inner = inspect.unwrap(view)
    if inner is view or inner.__module__ != view.__module__:
        raise SystemExit(f"cannot find the undecorated {view.__name__}; check its decorators")
    return inner


def targets() -> list[Target]:
    from django.urls import resolve

    found = []
    for path in URLS + OTHER_URLS:
        match = resolve(urlsplit(path).path)
        view = functools.partial(innermost(match.func), **match.kwargs)
        found.append(Target(path, view, path.startswith("/api/")))
    return found


def call(target: Target) -> Any:
    from django.contrib.auth.models import AnonymousUser
    from django.test import RequestFactory

    request = RequestFactory(HTTP_HOST="127.0.0.1").get(
        target.path, HTTP_ACCEPT="application/json" if target.api else HTML_ACCEPT
    )
    # What the middleware would have set: templates read request.user (the auth context
    # processor); the CSP nonce is simply absent, as for a response without the middleware.
    request.user = AnonymousUser()
    return target.view(request)


def page_check(target: Target, response: Any) -> str:
    """Total and cards shown: a page that rendered nothing would be fast at any size."""
    if response.status_code != 200:
        raise SystemExit(f"{target.path} answered {response.status_code}")
    body = response.content.decode()
    if target.api:
        data = json.loads(body)
        return f"count {data['count']}, {len(data['results'])} results"
    total = re.search(r"<strong>(\d+)</strong> case", body)
    cards = body.count('<article class="card')
    return f"total {total.group(1) if total else '?'}, {cards} cards"


@dataclass
class Database:
    """One scratch database of the run, with what the page cache keeps for it."""

    label: str
    name: str
    public: int = 0
    generation: Any = None  # the cache's publication generation entry for this database


def use(db: Database) -> None:
    """Point Django's connection (and the shared cache's publication generation) at one
    of the run's databases. The new connection is opened here, untimed."""
    from django.core.cache import cache
    from django.db import connection

    from gallery.cache import GENERATION_KEY

    connection.close()
    connection.settings_dict["NAME"] = db.name
    if db.generation is not None:
        cache.set(GENERATION_KEY, db.generation, None)
    connection.ensure_connection()


def timed(t: Target, result: Result) -> None:
    from django.db import connection

    timer = QueryTimer()
    with connection.execute_wrapper(timer):
        c0, t0 = time.process_time(), time.perf_counter()
        call(t)
        elapsed = (time.perf_counter() - t0) * 1000
        cpu = (time.process_time() - c0) * 1000
    result.times_ms.append(elapsed)
    result.query_ms.append(timer.ms)
    result.cpu_ms.append(cpu)


def count_queries(items: list[Target], results: dict[str, Result]) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for t in items:
        # Queries counted in a request of their own: the capture wraps every cursor.
        with CaptureQueriesContext(connection) as captured:
            response = call(t)
        results[t.path].queries = len(captured.captured_queries)
        results[t.path].sql = [q["sql"] for q in captured.captured_queries]
        results[t.path].check = page_check(t, response)


def measure(items: list[Target], requests: int, warmup: int) -> dict[str, Result]:
    """Every URL on the current database, ``requests`` rounds."""
    results = {t.path: Result(t.path) for t in items}
    for _ in range(warmup):  # connection, template and plan caches, shared buffers
        for t in items:
            call(t)
    for n in range(requests):
        # Rotate the order every round, so drift in machine load spreads over every URL.
        for t in items[n % len(items) :] + items[: n % len(items)]:
            timed(t, results[t.path])
    count_queries(items, results)
    return results


def measure_interleaved(
    items: list[Target], dbs: list[Database], requests: int, warmup: int
) -> list[dict[str, Result]]:
    """Every URL on every database, round by round: each round measures both sizes (in
    alternating order), so a change in the machine's load lands on both alike instead
    of on whichever size happened to be measured at the time."""
    results = [{t.path: Result(t.path) for t in items} for _ in dbs]
    for db in dbs:
        use(db)
        for _ in range(warmup):
            for t in items:
                call(t)
    for n in range(requests):
        order = list(enumerate(dbs))
        if n % 2:
            order.reverse()
        for i, db in order:
            use(db)
            call(items[0])  # untimed: the fresh connection's first query
            for t in items[n % len(items) :] + items[: n % len(items)]:
                timed(t, results[i][t.path])
    for i, db in enumerate(dbs):
        use(db)
        count_queries(items, results[i])
    return results


# ---------------------------------------------------------------------------------------
# Plans


@dataclass
class Plan:
    label: str
    lines: list[str]  # the plan as text, rendered from EXPLAIN's JSON
    execution_ms: float
    planning_ms: float
    jit_ms: float
    scans: list[dict[str, Any]]
    hot: list[tuple[float, str]]  # (exclusive ms, node), slowest first
    misestimate: tuple[float, str]  # (actual / estimated rows, node), the worst


def table_names() -> tuple[str, str]:
    from gallery.models import Case, Photo

    return Case._meta.db_table, Photo._meta.db_table


def label_query(sql_text: str) -> str:
    case, photo = table_names()
    if sql_text.startswith("SELECT") and "FILTER (WHERE" in sql_text and "COUNT(" in sql_text:
        return "facet aggregate"
    if sql_text.startswith(f'SELECT "{photo}".'):
        return "photos prefetch"
    # DISTINCT: django-filter's MultipleChoiceFilter adds it (distinct=True by default).
    if sql_text.startswith((f'SELECT "{case}".', f'SELECT DISTINCT "{case}".')):
        return "page rows"
    return "other"


def describe(node: dict[str, Any]) -> str:
    text = node["Node Type"]
    if node.get("Index Name"):
        text += f" using {node['Index Name']}"
    if node.get("Relation Name"):
        text += f" on {node['Relation Name']}"
        if node.get("Alias") and node["Alias"] != node["Relation Name"]:
            text += f" {node['Alias']}"
    if node.get("Subplan Name"):
        text = f"[{node['Subplan Name']}] {text}"
    return text


PLAN_DETAILS = (
    "Index Cond",
    "Recheck Cond",
    "Hash Cond",
    "Merge Cond",
    "Join Filter",
    "Filter",
    "Rows Removed by Filter",
    "Sort Key",
    "Sort Method",
    "Sort Space Type",
    "Group Key",
    "Heap Fetches",
)


def render(node: dict[str, Any], depth: int, out: list[str]) -> None:
    """One node as EXPLAIN's text format would show it, compacted."""
    pad = "  " * depth
    loops = node.get("Actual Loops", 0)
    hit, read = node.get("Shared Hit Blocks", 0), node.get("Shared Read Blocks", 0)
    out.append(
        f"{pad}-> {describe(node)}  (estimated {node.get('Plan Rows', 0)} rows; actual "
        f"{node.get('Actual Rows', 0)} rows x {loops} loops, "
        f"{node.get('Actual Total Time', 0.0) * loops:.1f} ms; buffers hit {hit} read {read})"
    )
    for key in PLAN_DETAILS:
        if key in node:
            value = node[key]
            if isinstance(value, list):
                value = ", ".join(map(str, value))
            out.append(f"{pad}     {key}: {value}")
    for child in node.get("Plans", []):
        render(child, depth + 1, out)


def walk(
    node: dict[str, Any],
    scans: list[dict[str, Any]],
    hot: list[tuple[float, str]],
    misestimates: list[tuple[float, str]],
) -> None:
    loops = node.get("Actual Loops", 1) or 0
    total = node.get("Actual Total Time", 0.0) * loops
    children = node.get("Plans", [])
    child_total = sum(
        c.get("Actual Total Time", 0.0) * (c.get("Actual Loops", 1) or 0) for c in children
    )
    hot.append((max(0.0, total - child_total), describe(node)))
    # Per loop, both: an estimate off by orders of magnitude is how a plan goes wrong.
    estimated, actual = node.get("Plan Rows", 0), node.get("Actual Rows", 0)
    if loops:
        factor = max(actual, 1) / max(estimated, 1)
        misestimates.append(
            (factor, f"{describe(node)}: estimated {estimated} rows, actual {actual}")
        )
    if node["Node Type"] in SCAN_NODES:
        scans.append(
            {
                "node": node["Node Type"],
                "relation": node.get("Relation Name", ""),
                "index": node.get("Index Name", ""),
                "rows": node.get("Actual Rows", 0),
                "loops": loops,
            }
        )
    for child in children:
        walk(child, scans, hot, misestimates)


def explain(sql_text: str) -> Plan:
    from django.db import connection

    with connection.cursor() as cursor:
        # The captured SQL has its parameters inlined (psycopg's mogrify), so it runs as is.
        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {sql_text}")
        data = cursor.fetchone()[0]
    doc = (data if isinstance(data, list) else json.loads(data))[0]
    scans: list[dict[str, Any]] = []
    hot: list[tuple[float, str]] = []
    misestimates: list[tuple[float, str]] = []
    walk(doc["Plan"], scans, hot, misestimates)
    lines: list[str] = []
    render(doc["Plan"], 0, lines)
    timing = doc.get("JIT", {}).get("Timing", {})
    total = timing.get("Total", 0.0)  # PostgreSQL 15: a number; later versions: a dict
    jit_ms = float(total if isinstance(total, int | float) else total.get("Time", 0.0))
    if jit_ms:
        lines.append(f"JIT: {doc['JIT'].get('Functions')} functions, {jit_ms:.1f} ms")
    hot.sort(reverse=True)
    return Plan(
        label_query(sql_text),
        lines,
        doc.get("Execution Time", 0.0),
        doc.get("Planning Time", 0.0),
        jit_ms,
        scans,
        hot[:4],
        max(misestimates, default=(1.0, "")),
    )


def explain_all(results: dict[str, Result]) -> dict[str, list[Plan]]:
    return {
        path: [explain(q) for q in r.sql if label_query(q) != "other"]
        for path, r in results.items()
    }


def scan_summary(plan: Plan) -> str:
    """Which tables are read through an index and which are scanned whole."""
    parts = []
    for s in plan.scans:
        if s["node"] == "Bitmap Heap Scan":
            continue  # its Bitmap Index Scan child names the index
        name = s["node"] + (f" {s['index']}" if s["index"] else "")
        name += f" on {s['relation']}" if s["relation"] else ""
        parts.append(f"{name} ({s['rows']} rows x {s['loops']})")
    return "; ".join(parts)


# ---------------------------------------------------------------------------------------
# Output


LABELS = ("facet aggregate", "page rows", "photos prefetch", "other")


def breakdown(results: dict[str, Result], title: str) -> None:
    """Medians, per URL, of the request and of the time spent in each kind of query."""
    rows = []
    for path, r in results.items():
        rows.append(
            [path, f"{r.median:.1f}"]
            + [f"{r.median_of(label):.1f}" for label in LABELS]
            + [f"{r.median_rest():.1f}", f"{statistics.median(r.cpu_ms):.1f}"]
        )
    print()
    print(title)
    print_table(
        rows,
        ["URL", "request", "facets", "rows", "photos", "other", "rest (Python)", "Python CPU"],
    )


def print_plans(plans: dict[str, list[Plan]], full: bool) -> None:
    for path, items in plans.items():
        print()
        print(f"=== {path}")
        for p in items:
            jit = f", of which JIT {p.jit_ms:.1f} ms" if p.jit_ms else ""
            print(
                f"--- {p.label}: execution {p.execution_ms:.1f} ms{jit}, planning "
                f"{p.planning_ms:.1f} ms (EXPLAIN ANALYZE: timing every node adds overhead)"
            )
            print(f"    scans: {scan_summary(p)}")
            # EXPLAIN rounds each loop's time to 1 us: for a node looping 100,000 times
            # the product is coarse (0.002 ms x 100,000 = 200.0 ms), but the ranking holds.
            print(
                "    slowest nodes (exclusive ms): "
                + "; ".join(f"{ms:.1f} {what}" for ms, what in p.hot)
            )
            factor, node = p.misestimate
            if factor >= 10:
                print(f"    worst row estimate ({factor:,.0f}x too low): {node}")
            if full:
                print("    " + "\n    ".join(p.lines))


def index_findings(plans: dict[str, list[Plan]]) -> None:
    """Per query: are the cases read through an index, or scanned whole?"""
    case_table, _ = table_names()
    for path, items in plans.items():
        for p in items:
            seq = sorted({s["relation"] for s in p.scans if s["node"] == "Seq Scan"})
            idx = sorted({s["index"] for s in p.scans if s["node"] in INDEX_NODES})
            verdict = "Seq Scan of the cases" if case_table in seq else "cases through an index"
            print(f"  {path} | {p.label}: {verdict}")
            print(f"      indexes: {', '.join(idx) or 'none'}")
            print(f"      seq scans: {', '.join(seq) or 'none'}")


def compare(small: dict[str, Result], large: dict[str, Result], small_n: int, large_n: int) -> bool:
    other = [p for p in small if p in OTHER_URLS]
    if other:
        rows = []
        for path in other:
            a, b = small[path], large[path]
            rows.append(
                [
                    path,
                    f"{a.median:.1f}",
                    f"{b.median:.1f}",
                    f"{b.median / a.median:.2f}x",
                    f"{a.queries}/{b.queries}",
                ]
            )
        print()
        print("Other public pages, uncached (reported, not part of the target):")
        print_table(rows, ["URL", f"ms @{small_n:,}", f"ms @{large_n:,}", "ratio", "queries"])
        small = {p: r for p, r in small.items() if p not in OTHER_URLS}
        large = {p: r for p, r in large.items() if p not in OTHER_URLS}
    rows = []
    ok_all = True
    for path, a in small.items():
        b = large[path]
        ratio = b.median / a.median
        ok = ratio <= TARGET_RATIO and a.queries == b.queries
        ok_all &= ok
        rows.append(
            [
                path,
                f"{a.median:.1f}",
                f"{b.median:.1f}",
                f"{ratio:.2f}x",
                f"{a.queries}/{b.queries}",
                "PASS" if ok else "FAIL",
            ]
        )
    sum_a = sum(r.median for r in small.values())
    sum_b = sum(r.median for r in large.values())
    rows.append(
        [
            "overall (sum of medians)",
            f"{sum_a:.1f}",
            f"{sum_b:.1f}",
            f"{sum_b / sum_a:.2f}x",
            "",
            "PASS" if ok_all else "FAIL",
        ]
    )
    print()
    print(
        f"Gallery list, uncached, median of {len(next(iter(small.values())).times_ms)} requests "
        f"per URL: {small_n:,} vs {large_n:,} public cases (target <= {TARGET_RATIO}x, "
        "same queries):"
    )
    print_table(rows, ["URL", f"ms @{small_n:,}", f"ms @{large_n:,}", "ratio", "queries", "result"])
    return ok_all


# ---------------------------------------------------------------------------------------
# Main


def public_count() -> int:
    from gallery.models import Case

    return Case.objects.public().count()


def prepare_listing(public: int) -> None:
    """What the app does after cases change (``gallery/listing.py``), timed: the loaded
    rows bypassed it. ``sync_listing`` marks the listed cases (``sync_publication`` runs
    it for every case); the first request of a publication generation builds its facet
    cube, here built (and timed) on its own."""
    from django.db import connection

    from gallery.cache import new_generation
    from gallery.listing import build_cube, sync_listing
    from gallery.models import Case

    t0 = time.perf_counter()
    changed = sync_listing()
    listing_s = time.perf_counter() - t0
    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM (ANALYZE) {Case._meta.db_table}")  # as autovacuum would
    generation = new_generation()
    t0 = time.perf_counter()
    cube = build_cube(generation)
    cube_s = time.perf_counter() - t0
    cells = cube.cells.count()
    if cube.cases != public or Case.objects.listed().count() != public:
        raise SystemExit(f"the listing or the cube disagrees with the rule ({cube.cases})")
    print(
        f"listing: {changed:,} rows marked in {listing_s:.1f} s; facet cube for the "
        f"generation: {cells:,} cells, built in {cube_s * 1000:.0f} ms",
        flush=True,
    )


def grow(gen: Generator, public: int) -> float:
    """Grow to ``public`` public cases, with their share of hidden ones; seconds taken."""
    added = public - gen.public
    hidden = round(added * HIDDEN_FRACTION / (1 - HIDDEN_FRACTION))
    t0 = time.perf_counter()
    load(gen.batch(added, hidden))
    return time.perf_counter() - t0


def load_note() -> str:
    """The machine's load: a shared machine slows both sizes, not always alike."""
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (1 min), {five:.1f} (5 min) on {os.cpu_count()} CPUs"


def fill(db: Database, public: int) -> None:
    """Migrate one database and load ``public`` public cases (plus the hidden ones)."""
    from django.core.cache import cache
    from django.core.management import call_command
    from django.utils import timezone

    from gallery.cache import GENERATION_KEY
    from gallery.models import Case

    use(db)
    call_command("migrate", verbosity=0, interactive=False)
    gen = Generator(reference_rows(), timezone.now())
    seconds = grow(gen, public)
    got = public_count()
    print(
        f"{db.label}: {gen.next_id - 1:,} cases, {got:,} public, loaded in {seconds:.1f} s",
        flush=True,
    )
    if got != public:
        raise SystemExit(f"expected {public} public cases, public() counts {got}")
    prepare_listing(public)
    newest = Case.objects.public().order_by("-published_at").values("pk")[:1]
    Case.objects.filter(pk__in=newest).update(public_id=BENCH_CASE_ID)
    db.public = public
    db.generation = cache.get(GENERATION_KEY)


def run(args: argparse.Namespace, names: list[str]) -> int:
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from gallery.models import reference_data

    small_db = Database(f"{args.small:,} public cases", names[0])
    large_db = Database(f"{args.large:,} public cases", names[1])
    t0 = time.perf_counter()
    call_command("collectstatic", verbosity=0, interactive=False)
    fill(small_db, args.small)
    with connection.cursor() as cursor:
        cursor.execute("SELECT version()")
        print(cursor.fetchone()[0])
        cursor.execute(
            "SELECT name, current_setting(name) FROM pg_settings WHERE name IN ("
            "'shared_buffers', 'work_mem', 'jit', 'random_page_cost', "
            "'max_parallel_workers_per_gather') ORDER BY name"
        )
        print("  " + ", ".join(f"{n}={s}" for n, s in cursor.fetchall()))
    fill(large_db, args.large)
    print(f"both databases ready in {time.perf_counter() - t0:.0f} s", flush=True)

    reference_data()  # warm: every request reads it, at any size (same rows in both)
    items = targets()
    t0 = time.perf_counter()
    small, large = measure_interleaved(items, [small_db, large_db], args.requests, args.warmup)
    print(f"measured both, interleaved, in {time.perf_counter() - t0:.0f} s; {load_note()}")
    for db, results in ((small_db, small), (large_db, large)):
        for path, r in results.items():
            print(f"  {db.label}: {path}: {r.check}")
    use(large_db)
    plans = explain_all(large)

    print()
    print(f"Plans at {args.large:,} public cases (EXPLAIN (ANALYZE, BUFFERS)):")
    print_plans(plans, full=not args.no_plans)
    print()
    print(f"Index use at {args.large:,}:")
    index_findings(plans)

    breakdown(small, f"Where the time goes at {args.small:,} (medians, ms):")
    breakdown(large, f"Where the time goes at {args.large:,} (medians, ms):")
    print(
        "  facets/rows/photos/other: wall time of each kind of query inside the timed "
        "requests (round trip included);\n  rest: the request minus its queries, i.e. the "
        "ORM (compiling the SQL too), the view and the template; Python CPU: this process's "
        "CPU time\n  per request (client side of the queries included), which other load "
        "on the machine barely moves."
    )
    ok = compare(small, large, args.small, args.large)

    if args.try_sql:
        for statement in args.try_sql:
            t0 = time.perf_counter()
            with connection.cursor() as cursor:
                cursor.execute(statement)
            print(f"\nApplied: {statement} ({time.perf_counter() - t0:.1f} s)")
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")  # new indexes and constraints: fresh statistics
        after = measure(items, args.requests, args.warmup)
        print(f"measured again in the same run; {load_note()}")
        print_plans(explain_all(after), full=args.try_plans)
        breakdown(after, f"After --try-sql, at {args.large:,} (medians, ms):")
        rows = []
        for path, b in large.items():
            a, c = small[path], after[path]
            rows.append(
                [
                    path,
                    f"{a.median:.1f}",
                    f"{b.median:.1f}",
                    f"{c.median:.1f}",
                    f"{b.median / a.median:.2f}x",
                    f"{c.median / a.median:.2f}x",
                    f"{a.queries}/{c.queries}",
                ]
            )
        print()
        print(f"Before/after --try-sql at {args.large:,} (ratios against {args.small:,}):")
        print_table(
            rows,
            [
                "URL",
                f"@{args.small:,}",
                "before",
                "after",
                "ratio before",
                "ratio after",
                "queries",
            ],
        )
    return 1 if args.strict and not ok else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", type=int, default=1_000, help="public cases, first size")
    parser.add_argument("--large", type=int, default=100_000, help="public cases, second size")
    parser.add_argument("--requests", type=int, default=30, help="timed requests per URL")
    parser.add_argument("--warmup", type=int, default=2, help="untimed rounds per size")
    parser.add_argument("--quick", action="store_true", help="smoke test: 200 -> 5,000, 5 req")
    parser.add_argument("--no-plans", action="store_true", help="summaries only, no plan text")
    parser.add_argument(
        "--try-sql",
        action="append",
        default=[],
        metavar="SQL",
        help="after the run, execute this on the scratch database and measure the large "
        "size again (repeatable, in order; e.g. a CREATE INDEX, or SET jit = off)",
    )
    parser.add_argument("--try-plans", action="store_true", help="print plan text after --try-sql")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target fails")
    args = parser.parse_args(argv)
    if args.quick:
        args.small, args.large, args.requests, args.warmup = 200, 5_000, 5, 1
    if not 0 < args.small < args.large:
        parser.error("need 0 < --small < --large")

    url = os.environ.get("DATABASE_URL", "")
    if urlsplit(url).scheme not in ("postgres", "postgresql"):
        print(
            "bench/scale.py measures PostgreSQL: set DATABASE_URL=postgres://user@host:port/db "
            "(a server where this user may CREATE DATABASE; a scratch database is created "
            "and dropped, the one named is not touched).",
            file=sys.stderr,
        )
        return 2
    target_url, name = scratch_urls(url)
    names = [f"{name}_small", f"{name}_large"]
    started = time.perf_counter()
    try:
        for each in names:
            create_database(url, each)
        where = f"{urlsplit(url).hostname}:{urlsplit(url).port or 5432}"
        print(f"scratch databases {', '.join(names)} on {where}")
        with tempfile.TemporaryDirectory(prefix="scalebench-") as tmp:
            configure_environment(target_url.replace(name, names[0]), Path(tmp))
            return run(args, names)
    finally:
        if "django" in sys.modules:
            from django.db import connections

            connections.close_all()
        for each in names:
            try:
                drop_database(url, each)
                print(f"dropped {each}; {time.perf_counter() - started:.0f} s in all")
            except (SystemExit, Exception) as exc:
                # Reported, not raised: raising here would hide the error that got us here.
                print(f"could not drop {each} ({exc}); drop it by hand", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
