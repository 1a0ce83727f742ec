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
PEOPLE = "".join(f"&practitioner=practitioner-{n:03d}" for n in (7, 8, 57, 58, 107, 108, 157, 158))
URLS += [f"/gallery/?location=location-07&location=location-08{PEOPLE}"]
# Reported, not part of the target. The newest public case of each database gets this id.
BENCH_CASE_ID = "benchcase01"
OTHER_URLS = ["/", "/treatments/microneedling/", f"/gallery/{BENCH_CASE_ID}/", "/sitemap-cases.xml"]
GENERATIONS: dict[str, Any] = {}  # database name: its publication generation
Views = dict[str, Callable[[], Any]]  # each URL's view, called with a new request
SCAN_NODES = {"Index Scan", "Index Only Scan", "Bitmap Index Scan", "Seq Scan"}

TOKEN = string.ascii_letters + string.digits
AREAS = "face cheeks forehead neck chest abdomen back arms thighs hands".split()
AREA_WEIGHTS = [30, 20, 10, 8, 8, 8, 6, 4, 4, 2]
DEPTHS = [Decimal(d) for d in ("0.25", "0.50", "0.75", "1.00", "1.50", "2.00", "2.50", "3.00")]
SKIN_TYPES = ["normal", "dry", "oily", "combination", "sensitive"]
# A clinic group: 50 locations in the four rule sets' countries, 200 practitioners.
LOCATIONS, PRACTITIONERS, COUNTRIES = 50, 200, ["US", "GB", "DE", "AU"]
HIDDEN_KINDS = ["draft", "withdrawn", "expired", "no_website", "unrendered"]  # each fails public()
FORMATS = (("avif", "avif"), ("webp", "webp"), ("jpeg", "jpg"))


def maintenance(url: str, statement: str, name: str) -> None:
    """CREATE or DROP DATABASE, from the server's maintenance database (autocommit)."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(url, dbname="postgres", autocommit=True, connect_timeout=10) as conn:
        conn.execute(sql.SQL(statement).format(sql.Identifier(name)))


def generate(public: int, hidden: int, form: int, reviewer: int, staff: list) -> dict[Any, list]:
    """Unsaved rows related by object; a fixed seed and draw order give the same cases."""
    from django.utils import timezone

    from consent.models import Consent, Patient
    from gallery.models import Case, Concern, Photo, Treatment

    treatments = list(Treatment.objects.order_by("slug").values_list("pk", flat=True))
    concerns = list(Concern.objects.order_by("slug").values_list("pk", flat=True))
    now, rng, through = timezone.now(), random.Random(20260), Case.concerns.through
    rows: dict[Any, list] = {Patient: [], Consent: [], Case: [], through: [], Photo: []}

    def token(n: int, alphabet: str = TOKEN) -> str:
        return "".join(rng.choices(alphabet, k=n))

    kinds = ["public"] * public + [HIDDEN_KINDS[i % len(HIDDEN_KINDS)] for i in range(hidden)]
    rng.shuffle(kinds)  # hidden cases spread through ids and dates
    for i, kind in enumerate(kinds, start=1):
        published = now - timedelta(seconds=rng.randint(3600, 3 * 365 * 86400))
        signed = published - timedelta(days=rng.randint(7, 60))
        expires = now + timedelta(days=rng.randint(30, 3 * 365))
        consent = {"patient_is_adult": True}
        if kind == "expired":
            expires = now - timedelta(days=rng.randint(1, 300))
            signed = min(signed, expires - timedelta(days=30))
        if kind == "withdrawn":
            withdrawn = now - timedelta(days=rng.randint(0, 20))
            signed = min(signed, withdrawn - timedelta(days=1))
            consent |= {"withdrawn_at": withdrawn, "withdrawal_channel": "staff"}
        deidentified, name = rng.random() < 0.2, f"Synthetic patient {i}"
        consent |= {"allow_website": kind != "no_website", "allow_education": rng.random() < 0.5}
        # De-identified cases only need a consent to de-identified photos.
        consent["identifiable"] = not deidentified or rng.random() < 0.5
        consent |= {"signed_at": signed, "recorded_at": signed, "expires_at": expires}
        patient = Patient(reference=f"SCALE-{i:07d}", full_name=name)
        consent = Consent(patient=patient, form_id=form, signed_by_name=name, **consent)
        treatment, (practitioner, location) = rng.choice(treatments), rng.choice(staff)
        case = {"public_id": token(10), "body_area": rng.choices(AREAS, AREA_WEIGHTS)[0]}
        case |= {"fitzpatrick": rng.randint(1, 6), "skin_type": rng.choice(SKIN_TYPES)}
        case |= {"needle_depth_mm": rng.choice(DEPTHS), "session_count": rng.randint(1, 8)}
        case["session_interval_weeks"] = rng.choice([4, 4, 6])
        case["weeks_after_last_session"] = 4 + rng.choice([0, 2, 4, 8, 12])
        case |= {"sensitive": rng.random() < 0.03, "deidentified": deidentified}
        case |= {"practitioner_id": practitioner, "location_id": location}
        case |= {"treatment_id": treatment, "created_by_id": reviewer}
        case["created_at"] = signed + timedelta(days=1)
        case["device"] = "Synthetic pen" if treatment == treatments[0] else "RF"
        case["aftercare_notes"] = "Gentle cleanser, moisturiser and SPF 50 for two weeks."
        case["side_effects_notes"] = "Redness for two days after each session."
        if kind != "draft":  # a draft keeps the model's defaults: no reviewer, no date
            case |= {"status": "published", "reviewed_by_id": reviewer, "published_at": published}
        case = Case(patient=patient, consent=consent, **case)
        rows[Patient].append(patient)
        rows[Consent].append(consent)
        rows[Case].append(case)
        # One concern, a second for a third of the cases (as the demo seed does).
        for concern in rng.sample(concerns, 2 if rng.random() < 1 / 3 else 1):
            rows[through].append(through(case=case, concern_id=concern))
        for role in ("before", "after"):
            key = token(22)
            renditions = [
                {"format": fmt, "width": w, "height": w * 3 // 4}
                | {"bytes": rng.randint(20_000, 400_000), "name": f"renditions/{key}/{w}.{ext}"}
                for w in (480, 960, 1600)
                for fmt, ext in FORMATS
            ]
            photo = {"original": f"originals/{token(32)}", "sha256": token(64, "0123456789abcdef")}
            # Only a publicly visible case has copies in public storage.
            photo["public_key"] = token(22) if kind == "public" else ""
            if kind != "unrendered":
                photo |= {"renditions": renditions, "rendered_at": published}
            photo |= {"role": role, "view": "front", "taken_at": signed, "created_at": signed}
            photo |= {"original_format": "jpeg", "width": 4000, "height": 3000}
            rows[Photo].append(Photo(case=case, **photo))
    return rows


def clinic_group() -> list[tuple[int, int]]:
    """(practitioner id, location id) per workplace: practitioner n at location n mod 50."""
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
    through = Practitioner.locations.through
    through.objects.bulk_create(through(practitioner_id=p, location_id=loc) for p, loc in staff)
    return staff


@dataclass
class Result:
    times_ms: list[float] = field(default_factory=list)
    sql: list[str] = field(default_factory=list)  # the queries of one request
    check: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.times_ms)


def use(name: str) -> None:
    """Point the connection (opened here, untimed) and the cache's generation at a database."""
    from django.core.cache import cache
    from django.db import connection

    from gallery.cache import GENERATION_KEY

    connection.close()
    connection.settings_dict["NAME"] = name
    if name in GENERATIONS:
        cache.set(GENERATION_KEY, GENERATIONS[name], None)
    connection.ensure_connection()


def fill(name: str, public: int) -> None:
    """Migrate, bulk_create the cases, then list them as the app does, timed."""
    from django.contrib.auth.models import User
    from django.core.cache import cache
    from django.core.management import call_command
    from django.db import connection, transaction

    from consent.models import ConsentForm
    from gallery.cache import GENERATION_KEY, new_generation
    from gallery.listing import sync_listing
    from gallery.models import Case

    use(name)
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
        # VACUUM too: with no visibility map yet, an Index Only Scan would read the heap.
        cursor.execute(f"VACUUM (ANALYZE) {', '.join(m._meta.db_table for m in rows)}")
    got, took = Case.objects.public().count(), f"{time.perf_counter() - t0:.1f} s"
    print(f"{public:,} public cases: {public + hidden:,} cases, {got:,} public, loaded in {took}")
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
    GENERATIONS[name] = cache.get(GENERATION_KEY)


def targets() -> Views:
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


def timed(view: Callable[[], Any], fresh: bool = False) -> float:
    """One request's wall time, ms; fresh: the first after a change to what is public."""
    from gallery.cache import new_generation

    if fresh:
        new_generation()
    t0 = time.perf_counter()
    view()
    return (time.perf_counter() - t0) * 1000


def measure(views: Views, names: list[str], requests: int, warmup: int) -> list[dict[str, Result]]:
    """Interleaved rounds, then one more request per URL: its queries and page check."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    results = [{path: Result() for path in views} for _ in names]
    paths = list(views)
    for name in names:
        use(name)
        for _ in range(warmup):  # connection, template and plan caches, shared buffers
            for view in views.values():
                view()
    for n in range(requests):
        for i in (1, 0) if n % 2 else (0, 1):
            use(names[i])
            views[paths[0]]()  # untimed: the fresh connection's first query
            for path in paths[n % len(paths) :] + paths[: n % len(paths)]:
                results[i][path].times_ms.append(timed(views[path]))
    for i, name in enumerate(names):
        use(name)
        for path, view in views.items():
            with CaptureQueriesContext(connection) as captured:
                response = view()
            results[i][path].sql = [q["sql"] for q in captured.captured_queries]
            results[i][path].check = page_check(path, response)
    return results


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
    """A list or photo query's EXPLAIN (ANALYZE, BUFFERS): time and scans; "" for others."""
    from django.db import connection

    from gallery.models import Case, Photo

    case, photo = Case._meta.db_table, Photo._meta.db_table
    if " UNION ALL " in sql_text:  # the facet counts: a GROUP BY per filter
        label = "facet counts"
    elif sql_text.startswith(f'SELECT "{photo}".'):
        label = "photos prefetch"
    # DISTINCT: django-filter's MultipleChoiceFilter adds it.
    elif sql_text.startswith((f'SELECT "{case}".', f'SELECT DISTINCT "{case}".')):
        label = "page rows"
    else:
        return ""
    with connection.cursor() as cursor:  # parameters are inlined in the captured SQL
        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {sql_text}")
        doc = cursor.fetchone()[0][0]  # psycopg reads the json into a list
    scans, nodes = [], [doc["Plan"]]
    while nodes:
        node = nodes.pop()
        nodes.extend(node.get("Plans", []))
        if node["Node Type"] in SCAN_NODES:
            where = f"{node.get('Index Name', '')} on {node.get('Relation Name', '?')}".strip()
            rows = f"{node.get('Actual Rows', 0)} rows x {node.get('Actual Loops', 0)}"
            scans.append(f"{node['Node Type']} {where} ({rows})")
    seq = any(s.startswith(f"Seq Scan on {case} ") for s in scans)
    ms = f"execution {doc['Execution Time']:.1f} ms, planning {doc['Planning Time']:.1f} ms"
    verdict = "Seq Scan of the cases" if seq else "cases through an index"
    return f"{label}: {ms}; {verdict}; scans: {'; '.join(scans)}"


def run(args: argparse.Namespace, names: list[str]) -> int:
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from gallery.models import reference_data

    call_command("collectstatic", verbosity=0, interactive=False)  # the manifest {% static %} needs
    with connection.cursor() as cursor:  # what the plans depend on
        cursor.execute("SELECT version()")
        print(cursor.fetchone()[0])
    for name, public in zip(names, (args.small, args.large), strict=True):
        fill(name, public)
    reference_data()  # warm: every request reads it, at any size
    views, t0 = targets(), time.perf_counter()
    small, large = measure(views, names, args.requests, args.warmup)
    print(f"measured in {time.perf_counter() - t0:.0f} s; load average {app.loadavg()}")
    for path, r in small.items():
        print(f"  {path}: {r.check} (at {args.small:,}) | {large[path].check} (at {args.large:,})")
    print(f"\nIndex use at {args.large:,} (EXPLAIN (ANALYZE, BUFFERS) of each captured query):")
    use(names[1])
    for path, r in large.items():
        for line in filter(None, map(explain, r.sql)):
            print(f"  {path} | {line}")
    head = ["URL", f"ms @{args.small:,}", f"ms @{args.large:,}", "ratio", "queries"]
    compared = {}
    for p in URLS + OTHER_URLS:
        a, b = small[p], large[p]
        medians = [f"{a.median:.1f}", f"{b.median:.1f}", f"{b.median / a.median:.2f}x"]
        ok = b.median / a.median <= TARGET_RATIO and len(a.sql) == len(b.sql)
        compared[p] = [p, *medians, f"{len(a.sql)}/{len(b.sql)}", "PASS" if ok else "FAIL"]
    print("\nOther public pages, uncached (reported, not part of the target):")
    app.print_table([compared[p][:-1] for p in OTHER_URLS], head)
    ok_all = all(compared[p][-1] == "PASS" for p in URLS)
    sum_a, sum_b = sum(small[p].median for p in URLS), sum(large[p].median for p in URLS)
    overall = [f"{sum_a:.1f}", f"{sum_b:.1f}", f"{sum_b / sum_a:.2f}x", ""]
    print(
        f"\nGallery list, uncached, median of {args.requests} requests per URL: {args.small:,} vs "
        f"{args.large:,} public cases (target <= {TARGET_RATIO}x, same queries):"
    )
    overall_row = ["overall (sum of medians)", *overall, "PASS" if ok_all else "FAIL"]
    app.print_table([*(compared[p] for p in URLS), overall_row], [*head, "result"])
    firsts = []
    for name in names:
        use(name)
        firsts.append({p: [timed(views[p], fresh=True) for _ in range(3)] for p in URLS})
    print("\nFirst request after a change (facet counts taken afresh; median of 3, ms):")
    rows = [[p, *(f"{statistics.median(first[p]):.0f}" for first in firsts)] for p in URLS]
    app.print_table(rows, ["URL", f"@{args.small:,}", f"@{args.large:,}"])
    connection.close()  # DROP ... WITH (FORCE) ends it after a crash
    return 1 if args.strict and not ok_all else 0


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
        for each in names:
            try:  # FORCE: a connection left open by a crash must not keep the data on disk
                maintenance(url, "DROP DATABASE IF EXISTS {} WITH (FORCE)", each)
                print(f"dropped {each}; {time.perf_counter() - started:.0f} s in all")
            except Exception as exc:  # reported, not raised: it would hide the first error
                print(f"could not drop {each} ({exc}); drop it by hand", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
