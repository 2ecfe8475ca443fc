"""The benchmark suite (`make bench`): the issue's scenarios against the production layout.

    python -m bench [--runs 3] [--smoke] [--only hot,spike] [--out var/bench]

Needs DATABASE_URL and REDIS_URL (`make bench` starts embedded ones when unset). Per run
it starts a fresh stack (bench/stack.py: its own database, gunicorn, daphnes, Celery
worker and beat on free ports), seeds buyers with seed_buyers, then runs: the raw SQL
ceiling (pgbench), hot drop, the hot drop sold by size, sold-out storm, sell-out
spike, live at scale (bench/live.py), expiry at scale and abuse (one token hammering
beside other buyers). One progress line per scenario goes to stderr.

Writes one JSON line per scenario and run to <out>/results.jsonl, a PNG per scenario
and the results table between the markers of docs/benchmarks.md (plots in
docs/benchmarks/). With --smoke or --only, the table and plots go to <out> instead,
so a partial run never replaces the published figures.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shlex
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

from bench import load, plots, report, scenarios
from bench.stack import ROOT, Stack

DOCS = ROOT / "docs" / "benchmarks.md"


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, help="fresh stacks to run (default 3; 1 with --smoke)")
    parser.add_argument("--smoke", action="store_true", help="tiny loads: a check, not figures")
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="NAME",
        help="run only these (repeat or comma-separate): " + ", ".join(scenarios.SCENARIOS),
    )
    parser.add_argument(
        "--out", type=Path, default=ROOT / "var" / "bench", help="results and logs (var/bench)"
    )
    parser.add_argument(
        "--workers", type=int, help="gunicorn sync workers (default 4; 2 with --smoke)"
    )
    parser.add_argument("--daphnes", type=int, default=2, help="daphne processes (default 2)")
    parser.add_argument("--buyers", type=int, help="buyer tokens seeded per run (60,000)")
    parser.add_argument("--seconds", type=float, help="seconds per load (hot, sizes, storm; 10)")
    args = parser.parse_args(argv)
    if args.workers is None:
        args.workers = 2 if args.smoke else 4
    if args.runs is None:
        args.runs = 1 if args.smoke else 3
    args.only = [name for value in args.only for name in value.split(",") if name]
    unknown = set(args.only) - set(scenarios.SCENARIOS)
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(sorted(unknown))}")
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    return args


def progress(message: str) -> None:
    print(f"bench {time.strftime('%H:%M:%S')} {message}", file=sys.stderr, flush=True)


class Suite:
    """The runs of one invocation and what they produced."""

    def __init__(self, args: argparse.Namespace, argv: list[str]):
        self.args = args
        self.scale = scenarios.scale_for(
            smoke=args.smoke,
            buyers=args.buyers,
            hot_seconds=args.seconds,
            storm_seconds=args.seconds,
        )
        self.names = [n for n in scenarios.SCENARIOS if not args.only or n in args.only]
        self.out = args.out.resolve()
        self.id = f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"
        self.command = os.environ.get("BENCH_COMMAND") or shlex.join(
            ["python", "-m", "bench", *argv]
        )
        self.records: list[dict] = []
        self.failed: list[str] = []
        self.context: dict = {}

    def run(self, run: int) -> None:
        args, tag = self.args, f"[run {run}/{self.args.runs}]"
        progress(
            f"{tag} starting the stack ({args.workers} gunicorn workers, {args.daphnes} daphnes)"
        )
        started = time.monotonic()
        with Stack.start(
            workers=args.workers, daphnes=args.daphnes, log_dir=self.out / "logs"
        ) as stack:
            self.context = {
                "date": f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
                "machine": report.machine(),
                "versions": report.versions(stack),
                "git": report.git(),
            }
            pool = stack.seed_buyers(self.scale.buyers)
            progress(
                f"{tag} stack up and {self.scale.buyers:,} buyers seeded"
                f" in {time.monotonic() - started:.0f} s"
            )
            for name in self.names:
                self.scenario(stack, run, name, pool)

    def scenario(self, stack: Stack, run: int, name: str, pool: Path) -> None:
        tag = f"[run {run}/{self.args.runs}]"
        progress(f"{tag} {name}: running")
        started = time.monotonic()
        try:
            outcome = scenarios.SCENARIOS[name](stack, self.scale, pool)
        except Exception as error:  # the other scenarios still run
            traceback.print_exc()
            progress(f"{tag} {name}: FAILED: {error!r:.300}")
            self.failed.append(f"{name} (run {run})")
            stack.check_alive()
            return
        elapsed = time.monotonic() - started
        record = {
            "suite": self.id,
            "run": run,
            "scenario": name,
            "smoke": self.args.smoke,
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
            "elapsed_s": round(elapsed, 1),
            **self.context,
            **outcome,
        }
        report.append_jsonl(self.out / "results.jsonl", record)
        self.records.append(record)
        progress(f"{tag} {name}: {report.summary(name, outcome['figures'])} ({elapsed:.0f} s)")
        levels = [outcome["figures"], *outcome["figures"].get("levels", [])]
        if name != "spike" and any(level.get("tokens_ran_out") for level in levels):
            progress(f"{tag} {name}: WARNING: wrk ran out of buyers early; raise --buyers")

    def write(self) -> Path:
        """Plots and the results table; the published ones only for a full run."""
        publish = not self.args.smoke and not self.args.only
        markdown = DOCS if publish else self.out / "benchmarks.md"
        drawn = plots.plot_all(self.records, markdown.parent / "benchmarks")
        table = report.results_markdown(
            self.records,
            command=self.command,
            plots={n: path.relative_to(markdown.parent).as_posix() for n, path in drawn.items()},
            context=self.context,
        )
        report.write_results(markdown, table)
        return markdown


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse(argv)
    load.ensure_wrk()
    suite = Suite(args, argv)
    try:
        for run in range(1, args.runs + 1):
            suite.run(run)
    except (KeyboardInterrupt, SystemExit):
        progress("interrupted: every server stopped, the bench database dropped")
        raise
    markdown = suite.write()
    progress(f"results: {suite.out / 'results.jsonl'}; table and plots: {markdown}")
    for row in report.evaluate(suite.records):
        if row["pass"] is False:
            progress(f"target missed: {row['scenario']}: {row['figure']} {row['target']}")
    if suite.failed:
        progress(f"failed: {', '.join(suite.failed)}")
        return 1
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
