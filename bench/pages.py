#!/usr/bin/env python
"""The public list and case pages under gunicorn against the cheapest view and the same
HTML as a static file; what a phone downloads; the slider's script. See bench/README.md."""

from __future__ import annotations

import argparse
import gzip
import os
import secrets
import statistics
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import app

TARGET_PAGE_RATIO = 0.6  # page req/s / cheapest view req/s, at least
TARGET_PHONE_KB = 300.0  # bytes on the wire for a phone's initial view, at most
TARGET_SLIDER_KB = 10.0  # compare.js, at most
KB = 1000  # as DevTools counts
SLIDER_JS = app.ROOT / "static" / "gallery" / "compare.js"
PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 3}
# (page, anchor): the ratio of their rates; targets on the first two.
PAIRS = [("list", "cheapest"), ("case", "cheapest"), ("list", "static-list")]
PAIRS += [("case", "static-case"), ("static-list", "cheapest")]


def measure(server: app.Server, path: str, seconds: int, conns: int, bust: str = "") -> app.Load:
    return app.wrk_wait(app.wrk_start(server.base + path, seconds, conns, bust))


def phone_weight(browser: Any, url: str) -> tuple[Counter, Counter]:
    """Bytes on the wire and responses by resource type of a first visit (a fresh context,
    until the network is idle): encodedDataLength of CDP's loadingFinished."""
    context = browser.new_context(is_mobile=True, has_touch=True, **PHONE)
    page = context.new_page()
    cdp = context.new_cdp_session(page)
    kinds: dict[str, str] = {}  # request id: resource type
    weight, count = Counter(), Counter()

    def on_finished(event: dict) -> None:
        kind = kinds.get(event["requestId"], "Other")
        weight[kind] += int(event["encodedDataLength"])
        count[kind] += 1

    cdp.on("Network.responseReceived", lambda e: kinds.update({e["requestId"]: e["type"]}))
    cdp.on("Network.loadingFinished", on_finished)
    cdp.on("Network.loadingFailed", lambda e: print(f"  failed: {url}: {e}"))
    cdp.send("Network.enable")
    page.goto(url, wait_until="networkidle", timeout=30000)
    page.wait_for_timeout(500)  # late CDP events
    context.close()
    return weight, count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=15, help="alternating rounds (>= 1)")
    parser.add_argument("--duration", type=int, default=1, help="seconds per target (wrk)")
    parser.add_argument("--connections", type=int, default=8, help="concurrent connections")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn sync workers")
    parser.add_argument("--count", type=int, default=30, help="demo cases to seed")
    parser.add_argument("--quick", action="store_true", help="1 round of 1 s (smoke test)")
    parser.add_argument("--strict", action="store_true", help="exit 1 if a target fails")
    parser.add_argument("--no-browser", action="store_true", help="skip the phone weight")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.duration = 1, 1
    app.require_wrk()
    with app.scratch("bench-pages-", args.count, os.environ.get("DATABASE_URL", "")) as (env, tmp):
        return run(args, env, tmp)


def run(args: argparse.Namespace, env: dict[str, str], tmp: Path) -> int:
    # WhiteNoise indexes STATIC_ROOT when a worker starts: a first server renders the pages
    # whose static copies the measured server serves.
    with app.gunicorn(env, tmp, workers=1) as server:
        case_path = app.first_case_path(server)
        targets = {"list": "/gallery/", "case": case_path, "cheapest": "/robots.txt"}
        pages = {name: app.get(server.port, targets[name])[2] for name in ("list", "case")}
    (tmp / "staticfiles" / "bench").mkdir(parents=True, exist_ok=True)
    for name, html in pages.items():
        (tmp / "staticfiles" / "bench" / f"{name}.html").write_bytes(html)
        targets[f"static-{name}"] = f"/static/bench/{name}.html"

    rounds, weights = [], {}  # rounds: {target: app.Load} each
    with app.gunicorn(env, tmp, workers=args.workers) as server:
        print(f"gunicorn on {server.base}: {args.workers} sync workers; case page {case_path}")
        for name in pages:
            _, headers, html = app.get(server.port, targets[name])
            copy = app.get(server.port, targets[f"static-{name}"])[2]
            same = "identical" if html == pages[name] == copy else "NOT IDENTICAL"
            cache = headers.get("x-cache", "miss")
            print(f"  {name}: view {len(html)} B (X-Cache {cache}), static {len(copy)} B: {same}")
        print(f"  load average before the rounds: {app.loadavg()}")
        names, conns = list(targets), args.connections
        for path in targets.values():  # warm-up: imports, templates, the page cache
            measure(server, path, 1, conns)
        for r in range(args.rounds):
            order = names[r % len(names) :] + names[: r % len(names)]
            rounds.append({n: measure(server, targets[n], args.duration, conns) for n in order})
        # Last, since each miss writes a cache entry and the file cache culls a third of
        # its entries at 300; longer, since a miss takes far longer than a hit.
        window = args.duration if args.quick else max(2, args.duration)
        bust = {n: secrets.token_hex(4) if n in pages else "" for n in names}
        busted = {n: measure(server, targets[n], window, conns, bust[n]) for n in names}
        print(f"  load average after the rounds: {app.loadavg()} (other processes)")
        if not args.no_browser:
            from playwright.sync_api import sync_playwright

            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=app.CHROMIUM, args=app.CHROMIUM_ARGS)
                weights = {
                    targets[n]: phone_weight(browser, server.base + targets[n]) for n in pages
                }
                browser.close()
    return report(args, rounds, busted, weights)


def kb(n: float) -> str:
    return f"{n / KB:.1f} kB"


def ratio(samples: dict[str, app.Load], page: str, anchor: str) -> float:
    return samples[page].rps / samples[anchor].rps if samples[anchor].rps else float("nan")


def report(args: argparse.Namespace, rounds: list, busted: dict, weights: dict) -> int:
    print(
        f"\nPer target ({len(rounds)} warm rounds of {args.duration} s, {args.connections} "
        f"connections, {args.workers} sync workers; then the uncached round's list and case):"
    )
    groups = [(n, [s[n] for s in rounds]) for n in busted]
    groups += [(f"{n} uncached", [busted[n]]) for n in ("list", "case")]
    rows = []
    for label, samples in groups:
        total = sum(samples, app.Load(0))
        requests = max(1, total.requests)
        cells = [label, f"{statistics.median(s.rps for s in samples):.0f}"]
        cells += [f"{app.quantile(total.hist, q) * 1000:.1f}" for q in (0.5, 0.95)]
        cells += [f"{total.body / requests / KB:.1f}"]
        cells += ["-" if "static" in label else f"{100 * total.hits / requests:.0f}%"]
        rows.append([*cells, str(total.requests), total.error_text()])
    head = ["target", "median req/s", "p50 ms", "p95 ms", "body kB", "cache hit", "answers"]
    app.print_table(rows, [*head, "errors"])

    print("\nRatios, page req/s / anchor req/s (warm: median and IQR of the per-round ratios):")
    rows, verdicts = [], []
    for page, anchor in PAIRS:
        paired = [ratio(s, page, anchor) for s in rounds]
        median = statistics.median(paired)
        iqr = "n/a"  # how much to trust a median taken on a busy machine
        if len(paired) >= 4:
            q1, _, q3 = statistics.quantiles(paired, n=4)
            iqr = f"{q1:.2f}-{q3:.2f}"
        label = f"{page}/{anchor}"
        rows.append([label, f"{median:.2f}x", iqr, f"{ratio(busted, page, anchor):.2f}x"])
        if anchor == "cheapest" and page in ("list", "case"):
            name = f"{page} page / cheapest view, req/s (median of {len(rounds)} paired)"
            target, ok = f">= {TARGET_PAGE_RATIO:.2f}x", median >= TARGET_PAGE_RATIO
            verdicts.append((name, f"{median:.2f}x (IQR {iqr})", target, ok))
    app.print_table(rows, ["ratio", "warm median", "warm IQR", "uncached"])
    print("  uncached: every request misses the page cache (a unique Accept).")

    if weights:
        print("\nPhone (390x844 @3x, fresh cache, until network idle), bytes on the wire:")
        types = sorted({t for weight, _ in weights.values() for t in weight})
        rows = []
        for path, (weight, count) in weights.items():
            rows.append([path, *(f"{kb(weight[t])} ({count[t]})" for t in types)])
            rows[-1].append(kb(weight.total()))
            ok = weight.total() <= TARGET_PHONE_KB * KB
            verdicts.append((f"phone initial view {path}", kb(weight.total()), "<= 300 kB", ok))
        app.print_table(rows, ["page", *types, "total"])
    raw = SLIDER_JS.read_bytes()
    name = (
        f"slider JS {SLIDER_JS.relative_to(app.ROOT)} (raw; gzip {kb(len(gzip.compress(raw, 9)))})"
    )
    verdicts.append((name, kb(len(raw)), "<= 10 kB", len(raw) <= TARGET_SLIDER_KB * KB))
    app.print_verdicts(verdicts, "target")
    return 1 if args.strict and any(ok is not True for *_, ok in verdicts) else 0


if __name__ == "__main__":
    sys.exit(main())
