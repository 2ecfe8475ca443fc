"""One PNG per scenario (matplotlib, no display needed), from the records of all runs."""

from __future__ import annotations

import statistics
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

PERCENTILES = ("p50", "p90", "p99", "p99.9", "max")


def plot_all(records: list[dict], out_dir: Path) -> dict[str, Path]:
    """Draw every scenario that has records; returns scenario -> PNG path."""
    by_scenario: dict[str, list[dict]] = {}
    for record in records:
        by_scenario.setdefault(record["scenario"], []).append(record)
    out_dir.mkdir(parents=True, exist_ok=True)
    drawn = {}
    for scenario, recs in by_scenario.items():
        draw = DRAWERS.get(scenario)
        if draw is None:
            continue
        figure = draw(recs)
        if figure is None:
            continue
        path = out_dir / f"{scenario}.png"
        figure.savefig(path, dpi=110, bbox_inches="tight")
        plt.close(figure)
        drawn[scenario] = path
    return drawn


def _runs(records: list[dict]) -> str:
    return f"{len(records)} run{'s' if len(records) > 1 else ''}"


def ceiling(records: list[dict]):
    figure, ax = plt.subplots(figsize=(6, 4))
    for record in records:
        levels = record["figures"]["levels"]
        ax.plot(
            [lv["clients"] for lv in levels],
            [lv["tps"] for lv in levels],
            "o-",
            alpha=0.7,
            label=f"run {record['run']}",
        )
    ax.set(
        xlabel="pgbench clients",
        ylabel="transactions/s",
        ylim=(0, None),
        title=f"Raw SQL ceiling: lock, decrement, insert on one row ({_runs(records)})",
    )
    clients = [lv["clients"] for lv in records[0]["figures"]["levels"]]
    ax.set_xscale("log", base=2)
    ax.set_xticks(clients, [str(c) for c in clients])
    ax.legend()
    ax.grid(alpha=0.3)
    return figure


def hot(records: list[dict]):
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    connections = [lv["connections"] for lv in records[0]["figures"]["levels"]]
    by_level = {c: [] for c in connections}
    for record in records:
        for level in record["figures"]["levels"]:
            by_level.setdefault(level["connections"], []).append(level)
    for record in records:
        levels = record["figures"]["levels"]
        left.plot(
            [lv["connections"] for lv in levels],
            [lv["rps"] for lv in levels],
            "o",
            color="grey",
            alpha=0.5,
        )
    medians = [statistics.median(lv["rps"] for lv in by_level[c]) for c in connections]
    left.plot(connections, medians, "o-", color="C0", label="median")
    left.set(
        xlabel="connections",
        ylabel="reservations/s",
        ylim=(0, None),
        title="Hot drop: throughput against connections",
    )
    for name in ("p50", "p90", "p99"):
        values = [
            statistics.median(lv["latency_ms"][name] for lv in by_level[c]) for c in connections
        ]
        right.plot(connections, values, "o-", label=name)
    right.axhline(100, color="red", linestyle="--", linewidth=1, label="p99 target")
    right.set(
        xlabel="connections",
        ylabel="ms",
        ylim=(0, None),
        title="Hot drop: latency percentiles (median of runs)",
    )
    for ax in (left, right):
        ax.set_xscale("log", base=2)
        ax.set_xticks(connections, [str(c) for c in connections])
        ax.grid(alpha=0.3)
        ax.legend()
    return figure


def _latency_bars(ax, records: list[dict], title: str, target_ms: float) -> None:
    width = 0.8 / len(records)
    for n, record in enumerate(records):
        values = [record["figures"]["latency_ms"][p] or 0 for p in PERCENTILES]
        ax.bar(
            [i + n * width for i in range(len(PERCENTILES))],
            values,
            width,
            label=f"run {record['run']}: {record['figures']['rps']:,.0f} answers/s",
        )
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(PERCENTILES))], PERCENTILES)
    ax.axhline(target_ms, color="red", linestyle="--", linewidth=1, label="p99 target")
    ax.set(ylabel="ms", title=title, ylim=(0, None))
    ax.legend()
    ax.grid(alpha=0.3, axis="y")


def sizes(records: list[dict]):
    """Units taken per size against the share the weights ask for; latency beside."""
    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 4))
    weights = records[0]["parameters"]["weights"]
    labels = list(weights)
    width = 0.8 / len(records)
    for n, record in enumerate(records):
        taken = record["figures"]["taken_by_size"]
        left.bar(
            [i + n * width for i in range(len(labels))],
            [taken.get(label, 0) for label in labels],
            width,
            label=f"run {record['run']}",
        )
    # What the weights ask for, from the median run's total of units taken.
    total = statistics.median(sum(r["figures"]["taken_by_size"].values()) for r in records)
    share = sum(weights.values())
    left.plot(
        [i + 0.4 - width / 2 for i in range(len(labels))],
        [total * weights[label] / share for label in labels],
        "k_",
        markersize=14,
        label="by the weights",
    )
    left.set_xticks([i + 0.4 - width / 2 for i in range(len(labels))], labels, rotation=45)
    left.set(
        ylabel="units taken",
        title=f"Sized drop: {len(labels)} sizes, {records[0]['parameters']['connections']}"
        " connections",
    )
    left.legend()
    left.grid(alpha=0.3, axis="y")
    _latency_bars(right, records, "Sized drop: latency", 100)
    return figure


def storm(records: list[dict]):
    stock = records[0]["parameters"]["stock"]
    connections = records[0]["parameters"]["connections"]
    figure, ax = plt.subplots(figsize=(7, 4))
    title = f"Sold-out storm: {stock} units, {connections} connections: latency"
    _latency_bars(ax, records, title, 150)
    return figure


def spike(records: list[dict]):
    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 4))
    for record in records:
        times = record["figures"]["timeline_s"]
        left.step(
            times,
            range(1, len(times) + 1),
            where="post",
            label=f"run {record['run']}: sold out in {record['figures']['sellout_s']} s",
        )
    parameters = records[0]["parameters"]
    left.set(
        xlabel="seconds since the load started",
        ylabel="holds (cumulative)",
        title=f"Sell-out spike: {parameters['buyers']:,} buyers, {parameters['stock']} units",
    )
    left.legend()
    left.grid(alpha=0.3)
    _latency_bars(right, records, "Sell-out spike: latency of all answers", 1000)
    return figure


def expiry(records: list[dict]):
    figure, ax = plt.subplots(figsize=(7, 4))
    for record in records:
        timeline = record["figures"]["timeline"]
        ax.plot(
            [t for t, _, _ in timeline],
            [left for _, _, left in timeline],
            label=f"run {record['run']}: all back {record['figures']['all_back_s']} s",
        )
    parameters = records[0]["parameters"]
    holds = parameters["holds"]
    start = parameters["reserves_from_s"]
    ax.axvspan(
        start,
        start + parameters["window_s"],
        color="C1",
        alpha=0.1,
        label=f"new buyers reserving ({parameters['connections']} connections)",
    )
    ax.axvline(0, color="grey", linewidth=1)
    ax.axvline(2, color="red", linestyle="--", linewidth=1, label="target (2 s)")
    ax.set(
        xlabel="seconds since the holds lapsed",
        ylabel="lapsed holds not yet back",
        title=f"Expiry: {holds:,} holds lapsing at once (polled every 50 ms)",
    )
    ax.legend()
    ax.grid(alpha=0.3)
    return figure


def live(records: list[dict]):
    delays = [r["figures"].get("delays_ms") for r in records]
    if not any(isinstance(d, list) and d for d in delays):
        return None
    figure, ax = plt.subplots(figsize=(7, 4))
    for record, values in zip(records, delays, strict=True):
        if values:
            ordered = sorted(values)
            share = [(i + 1) / len(ordered) for i in range(len(ordered))]
            ax.plot(ordered, share, label=f"run {record['run']} ({len(ordered)} watchers)")
    ax.axvline(500, color="red", linestyle="--", linewidth=1, label="p99 target")
    ax.set(
        xlabel="ms from the last commit to the watcher showing it",
        ylabel="share of watchers",
        title="Live at scale: watchers' delay distribution",
    )
    ax.legend()
    ax.grid(alpha=0.3)
    return figure


def abuse(records: list[dict]):
    """The others' p50 in each phase, per run, against 1.2 x their p50 alone."""
    figure, ax = plt.subplots(figsize=(7, 4))
    phases = [("alone_before", "alone"), (None, "one token hammering"), ("alone_after", "alone")]
    width = 0.8 / len(records)
    for n, record in enumerate(records):
        f = record["figures"]
        values = [(f[key] if key else f)["latency_ms"]["p50"] or 0 for key, _ in phases]
        ax.bar(
            [i + n * width for i in range(len(phases))],
            values,
            width,
            label=f"run {record['run']}: hammer got {f['hammer']['statuses']['429']:,} x 429",
        )
        ax.hlines(1.2 * f["p50_alone_ms"], -0.4, len(phases) - 0.6, colors="red", linestyles="--")
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(phases))], [label for _, label in phases])
    ax.set(
        ylabel="others' reserve p50, ms",
        ylim=(0, None),
        title=f"Abuse: other buyers' p50 (dashed: 1.2 x alone; {_runs(records)})",
    )
    ax.legend()
    ax.grid(alpha=0.3, axis="y")
    return figure


DRAWERS = {
    "ceiling": ceiling,
    "hot": hot,
    "sizes": sizes,
    "storm": storm,
    "spike": spike,
    "expiry": expiry,
    "live": live,
    "abuse": abuse,
}
