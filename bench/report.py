"""What the suite writes: JSON lines, the targets and the results table in markdown."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import re
import socket
import statistics
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import psutil
import redis

from bench import load
from bench.stack import ROOT, Stack

START, END = "<!-- results:start -->", "<!-- results:end -->"
ROLES = ("wrk", "pgbench", "gunicorn", "daphne", "celery", "postgres", "redis")
BASELINE_RPS = 621  # reserves/s before the benchmark issue; the target is 1.5x this


def machine() -> dict:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "hostname": socket.gethostname(),
        "cores": os.cpu_count(),
        "cpu": model,
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "load_1m": round(os.getloadavg()[0], 2),
    }


def versions(stack: Stack) -> dict:
    found = {"python": platform.python_version()}
    for package in ("Django", "gunicorn", "daphne", "channels", "celery", "psycopg"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            found[package.lower()] = metadata.version(package)
    [(found["postgres"],)] = stack.sql("SHOW server_version")
    found["redis"] = redis.Redis.from_url(stack.redis_url).info("server")["redis_version"]
    found["wrk"] = load.wrk_version()
    pgbench = subprocess.run([load.find_pgbench(), "--version"], capture_output=True, text=True)
    number = re.search(r"\d+(\.\d+)+", pgbench.stdout)
    found["pgbench"] = number.group(0) if number else pgbench.stdout.strip()
    return found


def git() -> dict:
    def out(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
        return done.stdout.strip() if done.returncode == 0 else ""

    return {"commit": out("rev-parse", "HEAD") or None, "dirty": bool(out("status", "--porcelain"))}


def append_jsonl(path: Path, record: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as file:
        file.write(json.dumps(record, default=str) + "\n")


# Targets -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    scenario: str
    label: str  # the figure, as the table shows it
    goal: str  # the target, as the table shows it
    value: Callable[[dict, dict], float | bool | None]  # (record, same run's records)
    ok: Callable[[float | bool], bool] | None = None  # None: reported, no target
    exact: bool = False  # must hold in every run, not only in the median


def _fig(*path: str):
    def get(record: dict, run: dict):
        value = record["figures"]
        for key in path:
            if not isinstance(value, dict) or key not in value:
                return None
            value = value[key]
        return value

    return get


def _hot_ratio(record: dict, run: dict):
    ceiling = run.get("ceiling")
    if not ceiling or not ceiling["figures"].get("tps"):
        return None
    return record["figures"]["rps"] / ceiling["figures"]["tps"]


def _sizes_ratio(record: dict, run: dict):
    """The drop sold by size against the hot drop of the same run, at the same connections."""
    hot = run.get("hot")
    if not hot or not hot["figures"].get("rps"):
        return None
    return record["figures"]["rps"] / hot["figures"]["rps"]


def _only_201_409(record: dict, run: dict) -> bool:
    """Every buyer answered, each 201 or 409, a 201 for every hold; no socket errors."""
    f = record["figures"]
    s = f["statuses"]
    clean = s["201"] + s["409"] == f["answered"] == record["parameters"]["buyers"]
    return clean and s["201"] == f["holds"] and not any(f["errors"].values())


def _sold_exactly(key: str):
    return lambda record, run: record["figures"][key] == record["parameters"]["stock"]


def _live_delay_p99(record: dict, run: dict):
    f = record["figures"]
    return (f.get("delay_ms") or {}).get("p99", f.get("delay_p99_ms"))


def _live_all_watchers(record: dict, run: dict):
    f = record["figures"]
    on_final = f.get("watchers_on_final")
    return None if on_final is None else on_final == record["parameters"]["watchers"]


def _hammer_throttled(record: dict, run: dict) -> bool:
    return record["figures"]["hammer"]["statuses"]["429"] > 0


def _at_least(limit: float):
    return lambda value: value >= limit


def _at_most(limit: float):
    return lambda value: value <= limit


def _stock_checked(scenario: str) -> Target:
    return Target(scenario, "check_stock", "passes", _fig("check_stock"), bool, exact=True)


P99 = _fig("latency_ms", "p99")
TARGETS = [
    Target("ceiling", "pgbench tps, best of the client counts", "(reference)", _fig("tps")),
    Target("hot", "reserves/s at 64 connections ÷ ceiling", "≥ 0.6", _hot_ratio, _at_least(0.6)),
    Target("hot", "reserves/s at 64 connections", f"≥ {1.5 * BASELINE_RPS:.0f}", _fig("rps"),
           _at_least(1.5 * BASELINE_RPS)),
    Target("hot", "p99 ms at 64 connections", "≤ 100", P99, _at_most(100)),
    _stock_checked("hot"),
    Target("sizes", "reserves/s at 64 connections ÷ hot's, same run", "≥ 1.0", _sizes_ratio,
           _at_least(1.0)),
    Target("sizes", "reserves/s at 64 connections", "(reported)", _fig("rps")),
    Target("sizes", "p99 ms at 64 connections", "≤ 100", P99, _at_most(100)),
    Target("sizes", "every size: total = available + holds + purchases", "all",
           _fig("sizes_consistent"), bool, exact=True),
    _stock_checked("sizes"),
    Target("storm", "answers/s", "≥ 2,000", _fig("rps"), _at_least(2000)),
    Target("storm", "p99 ms", "≤ 150", P99, _at_most(150)),
    Target("storm", "sold = stock (ACTIVE holds)", "exactly", _sold_exactly("sold"), bool,
           exact=True),
    _stock_checked("storm"),
    Target("spike", "holds = stock", "exactly", _sold_exactly("holds"), bool, exact=True),
    Target("spike", "every buyer answered 201 or 409", "all", _only_201_409, bool, exact=True),
    Target("spike", "p99 ms", "≤ 1,000", P99, _at_most(1000)),
    Target("spike", "time to sell out, s (first to last hold)", "(reported)", _fig("sellout_s")),
    _stock_checked("spike"),
    Target("live", "reserves/s during the watch", "≥ 500", _fig("reserves_per_s"),
           _at_least(500)),
    Target("live", "watcher delay after the last commit, p99 ms", "≤ 500", _live_delay_p99,
           _at_most(500)),
    Target("live", "every watcher ends on the committed stock", "all", _live_all_watchers, bool,
           exact=True),
    Target("expiry", "all holds back in stock, s after the lapse", "≤ 2", _fig("all_back_s"),
           _at_most(2)),
    Target("expiry", "reserve p99 ms during the sweep", "≤ 150", P99, _at_most(150)),
    _stock_checked("expiry"),
    Target("abuse", "others' reserve p50 while one token hammers ÷ alone", "≤ 1.20",
           _fig("p50_ratio"), _at_most(1.2)),
    Target("abuse", "the hammering token is answered 429", "yes", _hammer_throttled, bool,
           exact=True),
    _stock_checked("abuse"),
]  # fmt: skip


def evaluate(records: list[dict]) -> list[dict]:
    """One row per target: the value of every run, their median, pass or fail."""
    runs: dict[int, dict[str, dict]] = {}
    for record in records:
        runs.setdefault(record["run"], {})[record["scenario"]] = record
    rows = []
    for target in TARGETS:
        values = [
            target.value(run[target.scenario], run)
            for _, run in sorted(runs.items())
            if target.scenario in run
        ]
        if not values:
            continue
        median, passed = _judge(target, values)
        rows.append(
            {
                "scenario": target.scenario,
                "figure": target.label,
                "target": target.goal,
                "values": values,
                "median": median,
                "pass": passed,
            }
        )
    return rows


def _judge(target: Target, values: list) -> tuple:
    """(median or all-true, pass) of one target's values across runs."""
    if any(v is None for v in values):
        return None, (None if target.ok is None else False)
    if all(isinstance(v, bool) for v in values):
        return all(values), (None if target.ok is None else all(values))
    median = statistics.median(values)
    if target.ok is None:
        return median, None
    passed = target.ok(median)
    if target.exact:
        passed = passed and all(target.ok(v) for v in values)
    return median, passed


def cpu_medians(records: list[dict]) -> dict[str, dict[str, float]]:
    """scenario -> role -> median % of one core across runs."""
    found: dict[str, dict[str, list[float]]] = {}
    for record in records:
        for role, used in (record.get("cpu") or {}).items():
            if isinstance(used, dict):
                found.setdefault(record["scenario"], {}).setdefault(role, []).append(
                    used["core_pct"]
                )
    return {
        scenario: {role: statistics.median(values) for role, values in roles.items()}
        for scenario, roles in found.items()
    }


# Markdown ----------------------------------------------------------------------------


def _show(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) < 10 else f"{value:,.0f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def results_markdown(
    records: list[dict],
    *,
    command: str,
    plots: dict[str, str],
    context: dict,
) -> str:
    """The results section: how it was measured, targets against medians, CPU, plots."""
    lines = []
    if context:
        m, g = context["machine"], context["git"]
        runs = len({r["run"] for r in records})
        lines += [
            f"Measured {context['date']} with `{command}`: {runs} run(s); the median, then"
            " each run's value in parentheses.",
            "",
            f"Machine: {m['hostname']}, {m['cores']} cores ({m['cpu'] or 'unknown CPU'}),"
            f" {m['memory_gib']} GiB, 1-minute load {m['load_1m']} at the start; the load"
            " generator runs on the same machine as the servers.",
            "Versions: " + ", ".join(f"{k} {v}" for k, v in context["versions"].items()) + ".",
            f"Commit: `{g['commit']}`" + (" with local changes." if g["dirty"] else "."),
            "",
        ]
    lines += [
        "| scenario | figure | target | median (runs) | met |",
        "| --- | --- | --- | --- | --- |",
    ]
    for row in evaluate(records):
        each = ", ".join(_show(v) for v in row["values"])
        met = {True: "yes", False: "**no**", None: ""}[row["pass"]]
        lines.append(
            f"| {row['scenario']} | {row['figure']} | {row['target']} |"
            f" {_show(row['median'])} ({each}) | {met} |"
        )
    cpu = cpu_medians(records)
    if cpu:
        roles = [r for r in ROLES if any(r in used for used in cpu.values())]
        lines += [
            "",
            "CPU during each scenario's load, % of one core (median of runs; for hot, the"
            " 64-connection level; postgres and redis are the whole servers):",
            "",
            "| scenario | " + " | ".join(roles) + " |",
            "| --- |" + " --- |" * len(roles),
        ]
        for scenario, used in cpu.items():
            cells = " | ".join(
                "–" if used.get(role) is None else f"{used[role]:.0f}" for role in roles
            )
            lines.append(f"| {scenario} | {cells} |")
    if plots:
        lines.append("")
        lines += [f"![{name}]({path})" for name, path in plots.items()]
    return "\n".join(lines) + "\n"


def write_results(path: Path, table: str) -> None:
    """Replace what is between the result markers of path, creating the file if missing."""
    text = path.read_text() if path.exists() else f"{START}\n{END}\n"
    if START not in text or END not in text:
        text = text.rstrip("\n") + f"\n\n{START}\n{END}\n"
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{head}{START}\n{table}{END}{tail}")


# Progress ----------------------------------------------------------------------------


def summary(scenario: str, figures: dict) -> str:
    """One line of what a scenario measured, for the progress output."""
    f = figures
    p99 = f"p99 {_show((f.get('latency_ms') or {}).get('p99'))} ms"
    if scenario == "ceiling":
        return f"{f['tps']:,.0f} tps (best at {f['best_clients']} clients)"
    if scenario == "hot":
        levels = ", ".join(f"{lv['connections']}c {lv['rps']:,.0f}/s" for lv in f["levels"])
        return f"{levels}; {p99} at {f['connections']}c; check_stock {_show(f['check_stock'])}"
    if scenario == "sizes":
        taken = ", ".join(f"{label} {n:,}" for label, n in f["taken_by_size"].items())
        return (
            f"{f['rps']:,.0f}/s at {f['connections']}c, {p99}; taken by size: {taken};"
            f" every size consistent {_show(f['sizes_consistent'])}"
        )
    if scenario == "storm":
        return f"{f['rps']:,.0f} answers/s, {p99}, sold {f['sold']}"
    if scenario == "spike":
        s = f["statuses"]
        return (
            f"{f['holds']} holds, {f['answered']:,} answered ({s['201']} x 201, {s['409']:,} x 409,"
            f" {f['answered'] - s['201'] - s['409']} other), {p99},"
            f" sold out in {_show(f['sellout_s'])} s"
        )
    if scenario == "expiry":
        return (
            f"holds back {_show(f['all_back_s'])} s after the lapse;"
            f" reserves meanwhile {f['rps']:,.0f}/s, {p99}"
        )
    if scenario == "abuse":
        h = f["hammer"]
        return (
            f"others' p50 {_show(f['p50_hammered_ms'])} ms hammered against"
            f" {_show(f['p50_alone_ms'])} ms alone (x {_show(f['p50_ratio'])});"
            f" the hammer {h['rps']:,.0f} requests/s, {h['statuses']['429']:,} x 429,"
            f" {h['statuses']['2xx']} x 2xx"
        )
    keys = [k for k, v in f.items() if isinstance(v, int | float)][:6]
    return ", ".join(f"{k} {_show(f[k])}" for k in keys)
