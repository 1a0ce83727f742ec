#!/usr/bin/env python
"""The public list at 1,000 and 100,000 public cases on PostgreSQL. See bench/README.md."""

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
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import app

TARGET_RATIO = 1.5  # median at the large size / median at the small size, at most
HIDDEN_FRACTION = 0.10  # share of all cases the publication rule must reject
# The list unfiltered, the common filters, a sort, a second page, the JSON API.
URLS = ["/gallery/", "/gallery/?fitzpatrick=4"]
URLS += ["/gallery/?treatment=rf-microneedling&concern=acne-scars"]
URLS += ["/gallery/?fitzpatrick=2&fitzpatrick=3&sort=sessions", "/gallery/?page=2"]
URLS += ["/api/cases/?fitzpatrick=5"]
# Two locations and their practitioners (``clinic_group``): a full page at both sizes.
URLS += [
    "/gallery/?location=location-07&location=location-08"
    + "".join(f"&practitioner=practitioner-{n:03d}" for n in (7, 8, 57, 58, 107, 108, 157, 158))
]
# Reported, not part of the target. The newest public case of each database gets this id.
BENCH_CASE_ID = "benchcase01"
OTHER_URLS = ["/", "/treatments/microneedling/", f"/gallery/{BENCH_CASE_ID}/", "/sitemap-cases.xml"]
SCAN_NODES = {"Index Scan", "Index Only Scan", "Bitmap Index Scan", "Seq Scan"}
LABELS = ("facet aggregate", "page rows", "photos prefetch", "other")
PG_SETTINGS = "shared_buffers work_mem jit random_page_cost max_parallel_workers_per_gather".split()


def maintenance(url: str, statement: str, name: str) -> None:
    """CREATE or DROP DATABASE, from the server's maintenance database (autocommit)."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(url, dbname="postgres", autocommit=True, connect_timeout=10) as conn:
        conn.execute(sql.SQL(statement).format(sql.Identifier(name)))


# ---------------------------------------------------------------------------------------
# Data: deterministic synthetic rows, bulk_create'd

TOKEN = string.ascii_letters + string.digits
AREAS = "face cheeks forehead neck chest abdomen back arms thighs hands".split()
AREA_WEIGHTS = [30, 20, 10, 8, 8, 8, 6, 4, 4, 2]
DEPTHS = [Decimal(d) for d in ("0.25", "0.50", "0.75", "1.00", "1.50", "2.00", "2.50", "3.00")]
SKIN_TYPES = ["normal", "dry", "oily", "combination", "sensitive"]
# A clinic group at both sizes: 50 locations in the four rule sets' countries and 200
# practitioners, each at one location, every fourth at a second one too.
LOCATIONS, PRACTITIONERS, COUNTRIES = 50, 200, ["US", "GB", "DE", "AU"]
HIDDEN_KINDS = ["draft", "withdrawn", "expired", "no_website", "unrendered"]  # each fails public()
FORMATS = (("avif", "avif"), ("webp", "webp"), ("jpeg", "jpg"))


def generate(public: int, hidden: int, form: int, reviewer: int, staff: list) -> dict[Any, list]:
    """Patient, consent, case, concerns and two photos per case, unsaved, related by object.
    A fixed seed and draw order: the same sizes give the same cases."""
    from django.utils import timezone

    from consent.models import Consent, Patient
    from gallery.models import Case, Concern, Photo, Treatment

    treatments = list(Treatment.objects.order_by("slug").values_list("pk", flat=True))
    concerns = list(Concern.objects.order_by("slug").values_list("pk", flat=True))
    now, rng = timezone.now(), random.Random(20260)
    rows: dict[Any, list] = {Patient: [], Consent: [], Case: [], Case.concerns.through: []}
    rows[Photo] = []

    def token(n: int, alphabet: str = TOKEN) -> str:
        return "".join(rng.choices(alphabet, k=n))

    kinds = ["public"] * public + [HIDDEN_KINDS[i % len(HIDDEN_KINDS)] for i in range(hidden)]
    rng.shuffle(kinds)  # hidden cases spread through ids and dates
    for i, kind in enumerate(kinds, start=1):
        published = now - timedelta(seconds=rng.randint(3600, 3 * 365 * 86400))
        signed = published - timedelta(days=rng.randint(7, 60))
        expires = now + timedelta(days=rng.randint(30, 3 * 365))
        withdrawn = None
        if kind == "expired":
            expires = now - timedelta(days=rng.randint(1, 300))
            signed = min(signed, expires - timedelta(days=30))
        if kind == "withdrawn":
            withdrawn = now - timedelta(days=rng.randint(0, 20))
            signed = min(signed, withdrawn - timedelta(days=1))
        deidentified = rng.random() < 0.2
        name = f"Synthetic patient {i}"
        patient = Patient(reference=f"SCALE-{i:07d}", full_name=name)
        consent = {"form_id": form, "signed_at": signed, "allow_website": kind != "no_website"}
        consent["allow_education"] = rng.random() < 0.5
        # De-identified cases only need a consent to de-identified photos.
        consent["identifiable"] = not deidentified or rng.random() < 0.5
        consent |= {"signed_by_name": name, "patient_is_adult": True, "expires_at": expires}
        consent |= {"recorded_at": signed, "withdrawn_at": withdrawn}
        consent["withdrawal_channel"] = "staff" if withdrawn else ""
        consent = Consent(patient=patient, **consent)
        draft = kind == "draft"
        treatment = rng.choice(treatments)
        practitioner, location = rng.choice(staff)
        case = {"public_id": token(10), "treatment_id": treatment, "patient": patient}
        case |= {"body_area": rng.choices(AREAS, AREA_WEIGHTS)[0], "fitzpatrick": rng.randint(1, 6)}
        case |= {
            "consent": consent,
            "deidentified": deidentified,
            "skin_type": rng.choice(SKIN_TYPES),
        }
        case |= {"needle_depth_mm": rng.choice(DEPTHS), "session_count": rng.randint(1, 8)}
        case["session_interval_weeks"] = rng.choice([4, 4, 6])
        case["weeks_after_last_session"] = 4 + rng.choice([0, 2, 4, 8, 12])
        case |= {"practitioner_id": practitioner, "location_id": location}
        case["device"] = "Synthetic pen" if treatment == treatments[0] else "RF"
        case["aftercare_notes"] = "Gentle cleanser, moisturiser and SPF 50 for two weeks."
        case["side_effects_notes"] = "Redness for two days after each session."
        case |= {"sensitive": rng.random() < 0.03, "created_by_id": reviewer}
        case |= {"status": "draft" if draft else "published"}
        case["reviewed_by_id"] = None if draft else reviewer
        case["published_at"] = None if draft else published
        case = Case(**case, created_at=signed + timedelta(days=1))
        rows[Patient].append(patient)
        rows[Consent].append(consent)
        rows[Case].append(case)
        # One concern, a second for a third of the cases (as the demo seed does).
        for concern in rng.sample(concerns, 2 if rng.random() < 1 / 3 else 1):
            rows[Case.concerns.through].append(Case.concerns.through(case=case, concern_id=concern))
        rendered = kind != "unrendered"
        for role in ("before", "after"):
            key = token(22)
            renditions = [
                {"format": fmt, "width": w, "height": w * 3 // 4}
                | {"bytes": rng.randint(20_000, 400_000), "name": f"renditions/{key}/{w}.{ext}"}
                for w in (480, 960, 1600)
                for fmt, ext in FORMATS
            ]
            photo = {"case": case, "role": role, "view": "front"}
            photo |= {"original": f"originals/{token(32)}", "original_format": "jpeg"}
            photo |= {"sha256": token(64, "0123456789abcdef"), "width": 4000, "height": 3000}
            photo |= {"renditions": renditions if rendered else [], "taken_at": signed}
            photo |= {"rendered_at": published if rendered else None, "created_at": signed}
            # Only a publicly visible case has copies in public storage.
            photo["public_key"] = token(22) if kind == "public" else ""
            rows[Photo].append(Photo(**photo))
    return rows


def clinic_group() -> list[tuple[int, int]]:
    """The locations and practitioners; (practitioner id, location id) for each place a
    practitioner works. Practitioner n works at location n mod 50 (practitioner-007,
    -057, -107 and -157 at location-07, as the filtered URL asks)."""
    from gallery.models import Location, Practitioner

    Location.objects.all().delete()  # the migration's first location: no case uses it
    locations = Location.objects.bulk_create(
        Location(
            name=f"Location {n:02d}",
            slug=f"location-{n:02d}",
            country=COUNTRIES[n % len(COUNTRIES)],
            booking_url=f"https://example.com/book/{n:02d}",
        )
        for n in range(LOCATIONS)
    )
    people = Practitioner.objects.bulk_create(
        Practitioner(name=f"Practitioner {n:03d}", slug=f"practitioner-{n:03d}")
        for n in range(PRACTITIONERS)
    )
    staff = []
    for n, person in enumerate(people):
        for shift in (0, 7) if n % 4 == 0 else (0,):
            staff.append((person.pk, locations[(n + shift) % LOCATIONS].pk))
    Practitioner.locations.through.objects.bulk_create(
        Practitioner.locations.through(practitioner_id=p, location_id=loc) for p, loc in staff
    )
    return staff


def fill(db: Database, public: int) -> None:
    """Migrate one database, bulk_create the cases, and do what the app does after cases
    change (``gallery/listing.py``), timed."""
    from django.contrib.auth.models import User
    from django.core.cache import cache
    from django.core.management import call_command
    from django.db import connection, transaction

    from consent.models import ConsentForm
    from gallery.cache import GENERATION_KEY, new_generation
    from gallery.listing import sync_listing
    from gallery.models import Case

    use(db)
    call_command("migrate", verbosity=0, interactive=False)
    reviewer = User.objects.create_user("scale-reviewer", is_staff=True)
    staff = clinic_group()
    t0 = time.perf_counter()
    hidden = round(public * HIDDEN_FRACTION / (1 - HIDDEN_FRACTION))
    rows = generate(public, hidden, ConsentForm.current().pk, reviewer.pk, staff)
    with transaction.atomic():
        for model, objs in rows.items():
            model.objects.bulk_create(objs, batch_size=5000)
    with connection.cursor() as cursor:
        # VACUUM too: a freshly loaded table has no visibility map, so an Index Only Scan
        # would visit the heap for every row; autovacuum would have set it.
        cursor.execute(f"VACUUM (ANALYZE) {', '.join(m._meta.db_table for m in rows)}")
    got = Case.objects.public().count()
    took = time.perf_counter() - t0
    print(f"{db.label}: {public + hidden:,} cases, {got:,} public, loaded in {took:.1f} s")
    if got != public:
        raise SystemExit(f"expected {public} public cases, public() counts {got}")
    t0 = time.perf_counter()
    changed = sync_listing()  # marks the listed cases, as sync_publication would
    listing_s = time.perf_counter() - t0
    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM (ANALYZE) {Case._meta.db_table}")
    new_generation()
    if Case.objects.listed().count() != public:
        raise SystemExit("the listing disagrees with the rule")
    print(f"listing: {changed:,} rows marked in {listing_s:.1f} s", flush=True)
    newest = Case.objects.public().order_by("-published_at").values("pk")[:1]
    Case.objects.filter(pk__in=newest).update(public_id=BENCH_CASE_ID)
    db.generation = cache.get(GENERATION_KEY)


# ---------------------------------------------------------------------------------------
# Requests


@dataclass
class Database:
    """One scratch database, with the page cache's publication generation for it."""

    label: str
    name: str
    generation: Any = None


@dataclass
class Result:
    times_ms: list[float] = field(default_factory=list)
    query_ms: list[dict[str, float]] = field(default_factory=list)  # per request, by kind
    cpu_ms: list[float] = field(default_factory=list)  # this process: barely moved by load
    queries: int = 0
    sql: list[str] = field(default_factory=list)
    check: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.times_ms)

    def median_of(self, label: str) -> float:
        return statistics.median(q.get(label, 0.0) for q in self.query_ms)


def label_query(sql_text: str) -> str:
    from gallery.models import Case, Photo

    case, photo = Case._meta.db_table, Photo._meta.db_table
    if sql_text.startswith("SELECT") and "FILTER (WHERE" in sql_text and "COUNT(" in sql_text:
        return "facet aggregate"
    if sql_text.startswith(f'SELECT "{photo}".'):
        return "photos prefetch"
    # DISTINCT: django-filter's MultipleChoiceFilter adds it.
    if sql_text.startswith((f'SELECT "{case}".', f'SELECT DISTINCT "{case}".')):
        return "page rows"
    return "other"


def targets() -> dict[str, Callable[[], Any]]:
    """Each URL's view beneath its decorators, called with a new anonymous request."""
    from django.contrib.auth.models import AnonymousUser
    from django.test import RequestFactory
    from django.urls import resolve

    def call(path: str, view: Callable[..., Any], kwargs: dict[str, Any]) -> Any:
        accept = "application/json" if path.startswith("/api/") else app.HTML_ACCEPT
        request = RequestFactory(HTTP_HOST="127.0.0.1").get(path, HTTP_ACCEPT=accept)
        request.user = AnonymousUser()  # what the middleware would have set
        return view(request, **kwargs)

    found = {}
    for path in URLS + OTHER_URLS:
        match = resolve(urlsplit(path).path)
        view = inspect.unwrap(match.func)
        if view is match.func or view.__module__ != match.func.__module__:
            raise SystemExit(f"cannot find the undecorated {match.func.__name__}")
        found[path] = functools.partial(call, path, view, match.kwargs)
    return found


def use(db: Database) -> None:
    """Point the connection and the cache's publication generation at one database; the
    new connection is opened here, untimed."""
    from django.core.cache import cache
    from django.db import connection

    from gallery.cache import GENERATION_KEY

    connection.close()
    connection.settings_dict["NAME"] = db.name
    if db.generation is not None:
        cache.set(GENERATION_KEY, db.generation, None)
    connection.ensure_connection()


def timed(view: Callable[[], Any], result: Result) -> None:
    """One request, with the wall time of each kind of query (round trip included)."""
    from django.db import connection

    spent: dict[str, float] = {}

    def timer(execute: Callable[..., Any], sql: str, *args: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return execute(sql, *args)
        finally:
            ms = (time.perf_counter() - t0) * 1000
            spent[label_query(sql)] = spent.get(label_query(sql), 0.0) + ms

    with connection.execute_wrapper(timer):
        c0, t0 = time.process_time(), time.perf_counter()
        view()
        result.times_ms.append((time.perf_counter() - t0) * 1000)
        result.cpu_ms.append((time.process_time() - c0) * 1000)
    result.query_ms.append(spent)


def measure(
    views: dict[str, Callable[[], Any]], dbs: list[Database], requests: int, warmup: int
) -> list[dict[str, Result]]:
    """Round by round, both sizes in alternating order, URL order rotated; then one more
    request per URL counts the queries and keeps their SQL."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    results = [{path: Result() for path in views} for _ in dbs]
    paths = list(views)
    for db in dbs:
        use(db)
        for _ in range(warmup):  # connection, template and plan caches, shared buffers
            for view in views.values():
                view()
    for n in range(requests):
        for i in (1, 0) if n % 2 else (0, 1):
            use(dbs[i])
            views[paths[0]]()  # untimed: the fresh connection's first query
            for path in paths[n % len(paths) :] + paths[: n % len(paths)]:
                timed(views[path], results[i][path])
    for i, db in enumerate(dbs):
        use(db)
        for path, view in views.items():
            with CaptureQueriesContext(connection) as captured:
                response = view()
            r = results[i][path]
            r.sql = [q["sql"] for q in captured.captured_queries]
            r.queries, r.check = len(r.sql), page_check(path, response)
    return results


def first_after_change(views: dict[str, Callable[[], Any]], db: Database, times: int) -> dict:
    """The first list request after a change to what is public: a new publication
    generation before each request, so the facet counts are taken afresh."""
    from gallery.cache import new_generation

    use(db)
    found = {path: Result() for path in URLS}
    for path, result in found.items():
        for _ in range(times):
            new_generation()
            timed(views[path], result)
    use(db)  # back to the database's own generation
    return {path: result.median for path, result in found.items()}


def page_check(path: str, response: Any) -> str:
    """Total and cards shown: a page that rendered nothing would be fast at any size."""
    if response.status_code != 200:
        raise SystemExit(f"{path} answered {response.status_code}")
    body = response.content.decode()
    if path.startswith("/api/"):
        data = json.loads(body)
        return f"count {data['count']}, {len(data['results'])} results"
    total = re.search(r"<strong>(\d+)</strong> case", body)
    return f"total {total.group(1) if total else '?'}, {body.count('<article class="card')} cards"


def explain(sql_text: str) -> str:
    """EXPLAIN (ANALYZE, BUFFERS) of one captured query: its time and how it reads."""
    from django.db import connection

    from gallery.models import Case

    with connection.cursor() as cursor:  # parameters are inlined in the captured SQL
        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {sql_text}")
        data = cursor.fetchone()[0]
    doc = (data if isinstance(data, list) else json.loads(data))[0]
    scans, nodes = [], [doc["Plan"]]
    while nodes:
        node = nodes.pop()
        nodes.extend(node.get("Plans", []))
        if node["Node Type"] in SCAN_NODES:
            where = f"{node.get('Index Name', '')} on {node.get('Relation Name', '?')}".strip()
            rows = f"{node.get('Actual Rows', 0)} rows x {node.get('Actual Loops', 0)}"
            scans.append(f"{node['Node Type']} {where} ({rows})")
    seq = any(s.startswith(f"Seq Scan on {Case._meta.db_table} ") for s in scans)
    ms = f"execution {doc['Execution Time']:.1f} ms, planning {doc['Planning Time']:.1f} ms"
    verdict = "Seq Scan of the cases" if seq else "cases through an index"
    return f"{ms}; {verdict}\n      scans: {'; '.join(scans)}"


# ---------------------------------------------------------------------------------------
# Main


def compare(path: str, a: Result, b: Result) -> list[str]:
    """A row of the comparison: medians at both sizes, their ratio, the query counts."""
    medians = [f"{a.median:.1f}", f"{b.median:.1f}", f"{b.median / a.median:.2f}x"]
    return [path, *medians, f"{a.queries}/{b.queries}"]


def report(small: dict[str, Result], large: dict[str, Result], args: argparse.Namespace) -> bool:
    head = ["URL", "request", "facets", "rows", "photos", "other", "rest (Python)", "Python CPU"]
    for size, results in ((args.small, small), (args.large, large)):
        print(f"\nWhere the time goes at {size:,} (medians, ms):")
        rows = []
        for path, r in results.items():
            pairs = zip(r.times_ms, r.query_ms, strict=True)
            rest = statistics.median(t - sum(q.values()) for t, q in pairs)
            parts = [r.median, *(r.median_of(x) for x in LABELS), rest, statistics.median(r.cpu_ms)]
            rows.append([path, *(f"{x:.1f}" for x in parts)])
        app.print_table(rows, head)
    print(
        "  facets/rows/photos/other: wall time of each kind of query in the timed requests; rest: "
        "the request\n  minus its queries (ORM, view, template); Python CPU: this process's "
        "CPU per request."
    )
    head = ["URL", f"ms @{args.small:,}", f"ms @{args.large:,}", "ratio", "queries"]
    print("\nOther public pages, uncached (reported, not part of the target):")
    app.print_table([compare(p, small[p], large[p]) for p in OTHER_URLS], head)
    rows, ok_all = [], True
    for p in URLS:
        ok = large[p].median / small[p].median <= TARGET_RATIO
        ok &= small[p].queries == large[p].queries
        ok_all &= ok
        rows.append([*compare(p, small[p], large[p]), "PASS" if ok else "FAIL"])
    sum_a, sum_b = sum(small[p].median for p in URLS), sum(large[p].median for p in URLS)
    overall = [f"{sum_a:.1f}", f"{sum_b:.1f}", f"{sum_b / sum_a:.2f}x", ""]
    rows.append(["overall (sum of medians)", *overall, "PASS" if ok_all else "FAIL"])
    print(
        f"\nGallery list, uncached, median of {args.requests} requests per URL: {args.small:,} vs "
        f"{args.large:,} public cases (target <= {TARGET_RATIO}x, same queries):"
    )
    app.print_table(rows, [*head, "result"])
    return ok_all


def run(args: argparse.Namespace, names: list[str]) -> int:
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from gallery.models import reference_data

    sizes = zip((args.small, args.large), names, strict=True)
    dbs = [Database(f"{n:,} public cases", name) for n, name in sizes]
    t0 = time.perf_counter()
    call_command("collectstatic", verbosity=0, interactive=False)  # the manifest {% static %} needs
    fill(dbs[0], args.small)
    with connection.cursor() as cursor:  # what the plans depend on
        cursor.execute("SELECT version()")
        print(cursor.fetchone()[0])
        for name in PG_SETTINGS:
            cursor.execute("SELECT current_setting(%s)", [name])
            print(f"  {name}={cursor.fetchone()[0]}", end="")
        print()
    fill(dbs[1], args.large)
    print(f"both databases ready in {time.perf_counter() - t0:.0f} s", flush=True)
    reference_data()  # warm: every request reads it, at any size
    t0 = time.perf_counter()
    small, large = measure(targets(), dbs, args.requests, args.warmup)
    one, five, _ = os.getloadavg()
    print(
        f"measured both, interleaved, in {time.perf_counter() - t0:.0f} s; load average "
        f"{one:.1f} (1 min), {five:.1f} (5 min) on {os.cpu_count()} CPUs"
    )
    for db, results in zip(dbs, (small, large), strict=True):
        for path, r in results.items():
            print(f"  {db.label}: {path}: {r.check}")
    print(f"\nIndex use at {args.large:,} (EXPLAIN (ANALYZE, BUFFERS) of each captured query):")
    use(dbs[1])
    for path, r in large.items():
        for q in r.sql:
            if label_query(q) != "other":
                print(f"  {path} | {label_query(q)}: {explain(q)}")
    ok = report(small, large, args)
    firsts = [first_after_change(targets(), db, 3) for db in dbs]
    print("\nFirst request after a change (facet counts taken afresh; median of 3, ms):")
    rows = [[p, f"{firsts[0][p]:.0f}", f"{firsts[1][p]:.0f}"] for p in URLS]
    app.print_table(rows, ["URL", f"@{args.small:,}", f"@{args.large:,}"])
    return 1 if args.strict and not ok else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--small", type=int, default=1_000, help="public cases, first size")
    parser.add_argument("--large", type=int, default=100_000, help="public cases, second size")
    parser.add_argument("--requests", type=int, default=30, help="timed requests per URL")
    parser.add_argument("--warmup", type=int, default=2, help="untimed rounds per size")
    parser.add_argument("--quick", action="store_true", help="smoke test: 200 -> 5,000, 5 req")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target fails")
    args = parser.parse_args(argv)
    if args.quick:
        args.small, args.large, args.requests, args.warmup = 200, 5_000, 5, 1
    if not 0 < args.small < args.large:
        parser.error("need 0 < --small < --large")
    url = os.environ.get("DATABASE_URL", "")
    if urlsplit(url).scheme not in ("postgres", "postgresql"):
        sys.exit("set DATABASE_URL=postgres://user@host:port/db (a user who may CREATE DATABASE)")
    name = f"scalebench_{secrets.token_hex(6)}"
    names = [f"{name}_small", f"{name}_large"]
    started = time.perf_counter()
    try:
        for each in names:
            maintenance(url, "CREATE DATABASE {}", each)
        print(f"scratch databases {', '.join(names)} on {urlsplit(url).netloc.split('@')[-1]}")
        with tempfile.TemporaryDirectory(prefix="scalebench-") as tmp:
            # Settings read the environment once, at django.setup(): set it first.
            target = urlunsplit(urlsplit(url)._replace(path=f"/{names[0]}"))
            env = app.environment(Path(tmp), target, TASKS_BACKEND="immediate", AXES_ENABLED="off")
            os.environ.clear()
            os.environ.update(env)
            sys.path.insert(0, str(app.ROOT))
            return run(args, names)
    finally:
        if "django" in sys.modules:
            from django.db import connections

            connections.close_all()
        for each in names:
            try:  # FORCE: a connection left open by a crash must not keep the data on disk
                maintenance(url, "DROP DATABASE IF EXISTS {} WITH (FORCE)", each)
                print(f"dropped {each}; {time.perf_counter() - started:.0f} s in all")
            except Exception as exc:  # reported, not raised: it would hide the first error
                print(f"could not drop {each} ({exc}); drop it by hand", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
