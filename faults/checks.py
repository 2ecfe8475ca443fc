"""What several fault tests look at: the burst selling, holds lapsing, health's word.

Each fault test (faults/test_*.py) injects one fault of the fault table (README,
"Fault suite") while BUYERS buyers reserve, purchase, cancel and let holds lapse, then
checks what every fault ends with (harness.finish: the stock invariant, every 2xx id in
the database, 5xx only while the fault lasted, recovery without a restart) and the
fault's own expectations. Expectations are checked softly, so a failing test names
every one that failed, and results go to var/faults/results.jsonl.
"""

from __future__ import annotations

import json
import time
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from faults.burst import Answer, Burst
from faults.harness import (
    GRACE_S,
    RECOVERY_S,
    RESULTS,
    SWEEP_S,
    FaultStack,
    Window,
    poll,
)


class Expectations:
    """The expectations of one fault test, checked softly: every one is evaluated and
    reported (results.jsonl), and verify() fails the test naming all that failed."""

    def __init__(self, name: str):
        self.name = name
        self.failed: list[str] = []
        self.figures: dict = {}

    def __call__(self, ok: bool, what: str) -> bool:
        if not ok:
            self.failed.append(what)
        return ok

    def verify(self, log_dir: Path) -> None:
        if self.failed:
            lines = "\n".join(f"- {what}" for what in self.failed)
            raise AssertionError(
                f"{len(self.failed)} expectation(s) failed:\n{lines}\n(logs: {log_dir})"
            )


def finish(
    fs: FaultStack,
    expect: Expectations,
    answers: list[Answer],
    window: Window,
    *,
    recovery_drop: int,
    grace: float = GRACE_S,
    failures_allowed: bool = True,
) -> None:
    """The checks every fault ends with, and the figures for the results table.

    - recovery: with nothing restarted, a new buyer's reserve and purchase succeed
      within RECOVERY_S of the fault's end;
    - the stock invariant holds (manage.py check_stock);
    - every 2xx reservation and purchase is in the database as answered;
    - 5xx (and answers that never came) only while the fault was in force, plus grace;
      none at all when failures_allowed is False (faults the web path must not feel).
    """
    expect.figures.update(describe(answers, window, grace))
    recovered_s = recover(fs, recovery_drop, since=window.end)
    expect.figures["recovered_s"] = recovered_s
    expect(
        recovered_s is not None,
        f"no reserve and purchase succeeded within {RECOVERY_S} s of the fault's end",
    )
    try:
        fs.check_stock()
        consistent = True
    except RuntimeError as error:
        consistent = False
        expect.figures["check_stock"] = str(error)[-2000:]
    expect(consistent, "manage.py check_stock: the stock invariant is broken")
    problems = id_problems(fs, answers)
    expect(not problems, f"2xx answers not in the database as answered: {problems}")
    outside = [
        a for a in answers if a.failed and not (failures_allowed and window.covers(a, grace))
    ]
    where = f"outside the fault window (+{grace} s)" if failures_allowed else "at all"
    expect(
        not outside,
        f"{len(outside)} answers were 5xx or never came, {where}: {examples(outside, window)}",
    )


def recover(fs: FaultStack, drop_id: int, *, since: float | None) -> float | None:
    """Seconds from `since` until a new buyer's reserve, then purchase, succeeded; None
    if that did not happen within RECOVERY_S."""
    client = fs.buyer()
    deadline = time.monotonic() + RECOVERY_S
    try:
        while time.monotonic() < deadline:
            reserve = client.reserve(drop_id)
            if reserve.status == 201:
                purchase = client.purchase(reserve.body["reservation"]["id"])
                if purchase.status == 201:
                    return round(time.monotonic() - (since or time.monotonic()), 2)
            time.sleep(0.2)  # a client's retry interval, not a condition to wait for
        return None
    finally:
        client.close()


def id_problems(fs: FaultStack, answers: list[Answer]) -> list[str]:
    """Whether every 2xx is in the database as answered: a hold's row exists, a purchase
    exists for the reservation it named (now PURCHASED), a cancelled hold is CANCELLED."""
    held = {a.body["reservation"]["id"] for a in answers if a.kind == "reserve" and a.status == 201}
    bought = {
        a.body["purchase"]["id"]: a.body["purchase"]["reservationId"]
        for a in answers
        if a.kind == "purchase" and a.status == 201
    }
    cancelled = {
        a.body["reservation"]["id"] for a in answers if a.kind == "cancel" and a.status == 200
    }
    problems = []
    found = {row[0] for row in fs.query(
        "SELECT id FROM reservations_reservation WHERE id = ANY(%s)", (list(held),)
    )}  # fmt: skip
    if held - found:
        problems.append(f"holds missing: {sorted(held - found)[:10]}")
    rows = fs.query(
        "SELECT p.id, p.reservation_id, r.status FROM reservations_purchase p"
        " JOIN reservations_reservation r ON r.id = p.reservation_id WHERE p.id = ANY(%s)",
        (list(bought),),
    )
    stored = {pid: (rid, status) for pid, rid, status in rows}
    wrong = {
        pid: stored.get(pid) for pid, rid in bought.items() if stored.get(pid) != (rid, "PURCHASED")
    }
    if wrong:
        problems.append(f"purchases not stored as answered: {dict(list(wrong.items())[:10])}")
    rows = fs.query(
        "SELECT id, status FROM reservations_reservation WHERE id = ANY(%s)", (list(cancelled),)
    )
    not_cancelled = {rid: status for rid, status in rows if status != "CANCELLED"}
    if not_cancelled or cancelled - {rid for rid, _ in rows}:
        problems.append(f"cancelled holds not CANCELLED: {not_cancelled}")
    return problems


def describe(answers: list[Answer], window: Window, grace: float = GRACE_S) -> dict:
    """Statuses per kind inside the fault window (+grace) and outside, the slowest answer
    inside, and how many answers there were: what the results table reports."""
    table: dict[str, dict[str, Counter]] = defaultdict(lambda: defaultdict(Counter))
    slowest = 0.0
    for a in answers:
        inside = window.covers(a, grace)
        table["inside" if inside else "outside"][a.kind][str(a.status)] += 1
        if inside:
            slowest = max(slowest, a.seconds)
    return {
        "answers": len(answers),
        "fault_s": round(window.end - window.start, 2) if window.end and window.start else None,
        "slowest_inside_s": round(slowest, 2),
        "statuses": {
            where: {k: dict(c) for k, c in kinds.items()} for where, kinds in table.items()
        },
    }


def record(name: str, figures: dict) -> None:
    """Append one test's figures to var/faults/results.jsonl (the re-measured table)."""
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    line = {"fault": name, "at": time.strftime("%Y-%m-%dT%H:%M:%S"), **figures}
    with open(RESULTS, "a") as out:
        out.write(json.dumps(line, default=str) + "\n")


def examples(answers: list[Answer], window: Window, n: int = 5) -> list[str]:
    """A few answers, timed from the fault's start, for a failure message."""
    base = window.start or 0.0
    return [
        f"{a.kind} {a.status or a.error} at {a.started - base:+.2f}..{a.ended - base:+.2f} s: "
        f"{str(a.body)[:120]}"
        for a in answers[:n]
    ]


def mentions(body, *words: str) -> bool:
    """Whether a JSON answer says each word somewhere (keys or values, any case)."""
    text = json.dumps(body).lower()
    return all(word in text for word in words)


# Every fault test: starts real servers, shares the process's layout (xdist group).
FAULT_TEST = [
    pytest.mark.faults,
    pytest.mark.processes,
    pytest.mark.xdist_group("faults"),
    pytest.mark.timeout(240),
]

# A sweep that has not run for 3 intervals is stale (what /api/health is to report).
STALE_AFTER_S = 3 * SWEEP_S


def warm(burst: Burst) -> None:
    """Wait until the burst is selling, so the fault lands in a running burst."""
    sold = poll(lambda: any(a.status == 201 for a in burst.answers), timeout=60)
    assert sold, f"the burst never got a hold: {examples(burst.answers, Window())}"


def hold_all(fs, drop_id: int, count: int, record: list[Answer]) -> list[int]:
    """count new buyers take a hold each of drop_id; their reservation ids."""
    ids = []
    for _ in range(count):
        client = fs.buyer()
        answer = client.reserve(drop_id, record)
        client.close()
        assert answer.status == 201, (answer.status, answer.body)
        ids.append(answer.body["reservation"]["id"])
    return ids


def holds_lapsed(fs, ids: list[int]) -> bool:
    """Whether every one of these holds is past expires_at, by the database's clock."""
    [(left,)] = fs.query(
        "SELECT count(*) FROM reservations_reservation WHERE id = ANY(%s) AND expires_at > now()",
        (ids,),
    )
    return left == 0


def statuses_of(fs, ids: list[int]) -> dict[str, int]:
    rows = fs.query(
        "SELECT status, count(*) FROM reservations_reservation WHERE id = ANY(%s) GROUP BY 1",
        (ids,),
    )
    return dict(rows)


def reports_stale(fs) -> Answer | None:
    """/api/health answering 200 and saying the sweep is stale (None otherwise)."""
    answer = fs.health()
    return answer if answer.status == 200 and mentions(answer.body, "stale") else None


def newcomers_reserve(fs, drop_id: int, count: int, record: list[Answer]) -> list[Answer]:
    answers = []
    for _ in range(count):
        client = fs.buyer()
        answers.append(client.reserve(drop_id, record))
        client.close()
    return answers


def lapsed_units_come_back(fs, expect, drop_id: int, stock: int, record: list[Answer]) -> None:
    """With no sweep, new buyers of a drop whose every unit is held by a lapsed hold
    still get those units (a reserve takes lapsed holds back), and then it is sold out."""
    answers = newcomers_reserve(fs, drop_id, stock, record)
    expect.figures["newcomers_on_lapsed_drop"] = [a.status for a in answers]
    expect(
        all(a.status == 201 for a in answers),
        f"with no sweep, new buyers of a drop held only by lapsed holds were answered "
        f"{[(a.status, a.json_error()) for a in answers]}, not 201 (lapsed units must come back)",
    )
    after = newcomers_reserve(fs, drop_id, 1, record)[0]
    expect(after.status == 409, f"once every unit is held again, a reserve got {after.status}")
