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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import app

TARGET_PAGE_RATIO = 0.6  # page req/s / cheapest view req/s, at least
TARGET_PHONE_KB = 300.0  # bytes on the wire for a phone's initial view, at most
TARGET_SLIDER_KB = 10.0  # compare.js, at most
KB = 1000  # as DevTools counts
SLIDER_JS = app.ROOT / "static" / "gallery" / "compare.js"
PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 3}
# (label, page, anchor): the ratio of their rates.
PAIRS = [("list/cheapest", "list", "cheapest"), ("case/cheapest", "case", "cheapest")]
PAIRS += [("list/static", "list", "static-list"), ("case/static", "case", "static-case")]
PAIRS += [("static-list/cheapest", "static-list", "cheapest")]


def measure(server: app.Server, path: str, seconds: int, conns: int, bust: str = "") -> app.Load:
    """One target for ``seconds``: wrk's figures and the workers' CPU meanwhile."""
    cpu0 = server.cpu()
    load = app.wrk_wait(app.wrk_start(server.base + path, seconds, conns, bust))
    load.server_cpu = server.cpu() - cpu0
    return load


@dataclass
class PageWeight:
    """Bytes on the wire of a first visit: encodedDataLength of CDP's loadingFinished."""

    path: str
    by_type: Counter = field(default_factory=Counter)
    count_by_type: Counter = field(default_factory=Counter)
    document: tuple[int, str] = (0, "")  # bytes, Content-Encoding
    failed: list[str] = field(default_factory=list)
    images: dict[str, Any] = field(default_factory=dict)


IMAGES_JS = """() => {
  const imgs = [...document.images], fold = window.innerHeight;
  return {total: imgs.length, loaded: imgs.filter(i => i.complete && i.naturalWidth).length,
          above_fold: imgs.filter(i => i.getBoundingClientRect().top < fold).length,
          lazy: imgs.filter(i => i.loading === 'lazy').length,
          height: document.documentElement.scrollHeight};
}"""


def phone_weight(browser: Any, base: str, path: str) -> PageWeight:
    """One page in a fresh context (empty HTTP cache), loaded until the network is idle."""
    context = browser.new_context(is_mobile=True, has_touch=True, **PHONE)
    page = context.new_page()
    cdp = context.new_cdp_session(page)
    weight = PageWeight(path)
    kinds: dict[str, tuple[str, str]] = {}  # request id: resource type, Content-Encoding

    def on_response(e: dict) -> None:
        headers = {k.lower(): v for k, v in e["response"]["headers"].items()}
        kinds[e["requestId"]] = (e.get("type", "Other"), headers.get("content-encoding", "none"))

    def on_finished(e: dict) -> None:
        kind, encoding = kinds.get(e["requestId"], ("Other", ""))
        weight.by_type[kind] += int(e["encodedDataLength"])
        weight.count_by_type[kind] += 1
        if kind == "Document":
            weight.document = (int(e["encodedDataLength"]), encoding)

    cdp.on("Network.responseReceived", on_response)
    cdp.on("Network.loadingFinished", on_finished)
    cdp.on("Network.loadingFailed", lambda e: weight.failed.append(str(e)))
    cdp.send("Network.enable")
    page.goto(base + path, wait_until="networkidle", timeout=30000)
    page.wait_for_timeout(500)  # late CDP events
    weight.images = page.evaluate(IMAGES_JS)
    context.close()
    return weight


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

    rounds = []  # (the target measured first, {target: app.Load})
    checks, weights = [], []
    with app.gunicorn(env, tmp, workers=args.workers) as server:
        print(f"gunicorn on {server.base}: {args.workers} sync workers; case page {case_path}")
        for name in ("list", "case"):
            _, headers, html = app.get(server.port, targets[name])
            copy = app.get(server.port, targets[f"static-{name}"])[2]
            same = "yes" if html == pages[name] == copy else "NO"
            checks.append(
                f"{name}: view {len(html)} B (X-Cache {headers.get('x-cache', 'miss')}), "
                f"static copy {len(copy)} B, identical: {same}"
            )
        checks.append(f"load average before the rounds: {app.loadavg()}")
        for path in targets.values():  # warm-up: imports, templates, the page cache
            measure(server, path, 1, args.connections)
        names = list(targets)
        for r in range(args.rounds):
            order = names[r % len(names) :] + names[: r % len(names)]
            samples = {
                n: measure(server, targets[n], args.duration, args.connections) for n in order
            }
            rounds.append((order[0], samples))
            print(f"  round {r + 1}/{args.rounds} done", flush=True)
        # Last, since each miss writes a cache entry and the file cache culls a third of
        # its entries at 300; longer, since a miss takes far longer than a hit.
        window = args.duration if args.quick else max(2, args.duration)
        token = secrets.token_hex(4)
        busted = {
            n: measure(server, targets[n], window, args.connections, token if n in pages else "")
            for n in names
        }
        checks.append(f"load average after the rounds: {app.loadavg()} (other processes)")
        if not args.no_browser:
            from playwright.sync_api import sync_playwright

            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=app.CHROMIUM, args=app.CHROMIUM_ARGS)
                weights = [phone_weight(browser, server.base, targets[n]) for n in pages]
                browser.close()
    print("\nChecks:\n  " + "\n  ".join(checks))
    return report(args, rounds, busted, weights, pages)


def kb(n: float) -> str:
    return f"{n / KB:.1f} kB"


def ratio(samples: dict[str, app.Load], a: str, b: str, by_cpu: bool = False) -> float:
    """Page rate / anchor rate; by CPU: anchor CPU ms / page CPU ms, the ratio for a
    server with the CPUs to itself."""
    if by_cpu:
        return samples[b].cpu_ms / samples[a].cpu_ms
    return samples[a].rps / samples[b].rps if samples[b].rps else float("nan")


def spread(values: list[float]) -> str:
    """Interquartile range: how much to trust a median taken on a busy machine."""
    if len(values) < 4:
        return "n/a"
    q1, _, q3 = statistics.quantiles(values, n=4)
    return f"{q1:.2f}-{q3:.2f}"


def report(
    args: argparse.Namespace,
    rounds: list[tuple[str, dict[str, app.Load]]],
    busted: dict[str, app.Load],
    weights: list[PageWeight],
    pages: dict[str, bytes],
) -> int:
    names = list(busted)
    print(
        f"\nRequests/second per round ({args.connections} connections, {args.duration} s per "
        f"target, gunicorn {args.workers} sync workers, warm page cache):"
    )
    labelled = [(f"{i + 1} ({first} first)", s) for i, (first, s) in enumerate(rounds)]
    rows = []
    for label, s in [*labelled, ("uncached", busted)]:
        ratios = [f"{ratio(s, a, b):.2f}" for _, a, b in PAIRS]
        rows.append([label, *(f"{s[n].rps:.0f}" for n in names), *ratios])
    app.print_table(rows, ["round", *names, *(label for label, _, _ in PAIRS)])

    print("\nPer target over all warm rounds (and the uncached round's list and case):")
    groups = [(n, [s[n] for _, s in rounds]) for n in names]
    groups += [(f"{n} uncached", [busted[n]]) for n in ("list", "case")]
    rows = []
    for label, samples in groups:
        total = sum(samples, app.Load(0))
        requests = max(1, total.requests)
        cells = [label, f"{statistics.median(s.rps for s in samples):.0f}"]
        cells += [f"{app.quantile(total.hist, q) * 1000:.1f}" for q in (0.5, 0.95)]
        cells += [f"{total.body / requests / KB:.1f}"]
        cells += ["-" if "static" in label else f"{100 * total.hits / requests:.0f}%"]
        cells += [f"{statistics.median(s.server_cpu / s.seconds for s in samples):.2f}"]
        cells += [f"{statistics.median(s.cpu_ms for s in samples):.2f}"]
        cells += [f"{total.client_cpu / (len(samples) * args.duration):.2f}"]
        rows.append([*cells, str(total.requests), total.error_text()])
    head = ["target", "median req/s", "p50 ms", "p95 ms", "body kB", "cache hit", "server CPUs"]
    app.print_table(rows, [*head, "CPU ms/req", "client CPUs", "answers", "errors"])
    print(
        "  server / client CPUs: cores used by the gunicorn workers / by wrk "
        f"({os.cpu_count()} on this machine); CPU ms/req: the workers' CPU time per answer."
    )

    paired = {label: [ratio(s, a, b) for _, s in rounds] for label, a, b in PAIRS}
    medians = {label: statistics.median(values) for label, values in paired.items()}
    verdicts = []
    for page in ("list", "case"):
        m = medians[f"{page}/cheapest"]
        name = f"{page} page / cheapest view, req/s (median of {len(rounds)} paired)"
        measured = f"{m:.2f}x (IQR {spread(paired[f'{page}/cheapest'])})"
        verdicts.append((name, measured, f">= {TARGET_PAGE_RATIO:.2f}x", m >= TARGET_PAGE_RATIO))
    for w in weights:
        total = sum(w.by_type.values())
        ok = total <= TARGET_PHONE_KB * KB
        verdicts.append((f"phone initial view {w.path}", kb(total), "<= 300 kB", ok))
    if not weights:
        verdicts += [
            (f"phone initial view ({p})", "--no-browser", "<= 300 kB", None) for p in pages
        ]
    raw = SLIDER_JS.read_bytes()
    gz = kb(len(gzip.compress(raw, 9)))
    name = f"slider JS {SLIDER_JS.relative_to(app.ROOT)} (raw; gzip {gz})"
    verdicts.append((name, kb(len(raw)), "<= 10 kB", len(raw) <= TARGET_SLIDER_KB * KB))

    if weights:
        print_weights(weights, pages)
    print("\nAll ratios (page req/s / anchor req/s; targets only on the first two):")
    rows = []
    for label, a, b in PAIRS:
        by_cpu = statistics.median(ratio(s, a, b, by_cpu=True) for _, s in rounds)
        cells = [label, f"{medians[label]:.2f}x", spread(paired[label]), f"{by_cpu:.2f}x"]
        cells += [f"{ratio(busted, a, b):.2f}x", f"{ratio(busted, a, b, by_cpu=True):.2f}x"]
        rows.append(cells)
    head = ["ratio", "warm median", "warm IQR", "warm by CPU", "uncached", "uncached by CPU"]
    app.print_table(rows, head)
    print(
        "  warm: median of the paired per-round ratios. by CPU: anchor CPU ms / page CPU ms, "
        "the ratio for a\n  server with the CPUs to itself. uncached: every request misses "
        "the page cache (a unique Accept)."
    )
    app.print_verdicts(verdicts, "target")
    return 1 if args.strict and any(ok is not True for *_, ok in verdicts) else 0


def print_weights(weights: list[PageWeight], pages: dict[str, bytes]) -> None:
    print("\nPhone (390x844 @3x, fresh cache, until network idle), bytes on the wire:")
    types = sorted({t for w in weights for t in w.by_type})
    rows = []
    for w in weights:
        cells = [f"{kb(w.by_type[t])} ({w.count_by_type[t]})" for t in types]
        rows.append([w.path, *cells, kb(sum(w.by_type.values()))])
    app.print_table(rows, ["page", *types, "total"])
    for w, html in zip(weights, pages.values(), strict=True):
        size, encoding = w.document
        gz = f", gzip would be {kb(len(gzip.compress(html, 6)))}" if encoding == "none" else ""
        i = w.images
        print(
            f"  {w.path}: document {kb(size)} (Content-Encoding: {encoding}{gz}); images loaded "
            f"{i['loaded']} of {i['total']} ({i['above_fold']} start above the fold, {i['lazy']} "
            f"lazy; page {i['height']} CSS px tall)"
        )
        for failure in w.failed:
            print(f"    failed: {failure}")


if __name__ == "__main__":
    sys.exit(main())
