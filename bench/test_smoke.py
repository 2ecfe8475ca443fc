"""The benchmark suite at tiny sizes, end to end, so that `make bench` cannot rot."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"

pytestmark = [
    pytest.mark.processes,
    pytest.mark.xdist_group("servers"),
    pytest.mark.timeout(300),
]


def server_url() -> str:
    """The PostgreSQL server the tests use; the suite makes a database of its own on it."""
    from django.conf import settings

    db = settings.DATABASES["default"]
    auth = quote(db["USER"] or "postgres", safe="")
    if db["PASSWORD"]:
        auth += ":" + quote(db["PASSWORD"], safe="")
    host = quote(db["HOST"] or "127.0.0.1", safe="")
    port = f":{db['PORT']}" if db["PORT"] else ""
    return f"postgres://{auth}@{host}{port}/{db['NAME']}"


def published() -> dict[str, float]:
    paths = [DOCS / "benchmarks.md", *DOCS.glob("benchmarks/*.png")]
    return {str(path): path.stat().st_mtime for path in paths if path.exists()}


def test_smoke_run_measures_every_scenario(tmp_path):
    if not shutil.which("wrk") and os.geteuid() != 0:
        pytest.skip("wrk is missing and cannot be installed without root")
    from django.conf import settings

    expected = {"ceiling", "hot", "sizes", "storm", "spike", "live", "expiry", "abuse"}
    before = published()
    env = {**os.environ, "DATABASE_URL": server_url(), "REDIS_URL": settings.REDIS_URL}

    done = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--runs", "1", "--out", str(tmp_path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=280,
    )

    assert done.returncode == 0, done.stderr[-5000:]
    records = {}
    for line in (tmp_path / "results.jsonl").read_text().splitlines():
        record = json.loads(line)
        records[record["scenario"]] = record
    assert set(records) == expected, done.stderr[-3000:]
    for name, record in records.items():
        for key in ("machine", "versions", "git", "parameters", "figures", "cpu"):
            assert record[key], (name, key)
        assert record["machine"]["cores"] >= 1
        assert record["versions"]["wrk"] and record["versions"]["postgres"]
        assert record["cpu"]["gunicorn"]["cpu_s"] >= 0
        assert ("pgbench" if name == "ceiling" else "wrk") in record["cpu"], name
    assert records["ceiling"]["figures"]["tps"] > 0
    for name in ("hot", "sizes", "storm", "spike", "expiry"):
        figures = records[name]["figures"]
        assert figures["rps"] > 0, name
        assert figures["check_stock"] is True, name
        assert figures["statuses"]["5xx"] == 0, name
    sized = records["sizes"]["figures"]
    assert sized["statuses"]["other_4xx"] == 0  # every label sent is one of the drop's
    assert sized["sizes_consistent"] is True
    assert list(sized["taken_by_size"]) == list(records["sizes"]["parameters"]["weights"])
    # wrk abandons the requests in flight at its deadline; some of those still commit.
    assert sum(sized["taken_by_size"].values()) >= sized["statuses"]["201"] > 0
    assert records["storm"]["figures"]["sold"] == records["storm"]["parameters"]["stock"]
    spike = records["spike"]
    assert spike["figures"]["holds"] == spike["parameters"]["stock"]
    assert spike["figures"]["answered"] == spike["parameters"]["buyers"]
    assert records["expiry"]["figures"]["holds_left"] == 0
    abuse = records["abuse"]["figures"]
    assert abuse["hammer"]["statuses"]["429"] > 0  # p50_ratio is a figure, not asserted
    assert abuse["hammer"]["statuses"]["5xx"] == 0 and abuse["statuses"]["other_4xx"] == 0
    assert abuse["p50_ratio"] > 0 and abuse["check_stock"] is True

    table = (tmp_path / "benchmarks.md").read_text()
    assert "<!-- results:start -->" in table and "<!-- results:end -->" in table
    assert "| hot |" in table
    assert {p.stem for p in (tmp_path / "benchmarks").glob("*.png")} >= expected - {"live"}
    assert published() == before  # a smoke run never replaces the published figures
