"""Fixtures of the fault suite: one production layout per test process, restored before
each test.

Every test is marked `faults`; the quick ones also `faults_fast`. Unless the run selects
the `faults` marker itself (`make faults` runs `pytest -m faults faults`), only the
quick ones are collected, so `make test` runs them and not the whole suite.
"""

import pytest

from faults.checks import Expectations, record
from faults.harness import LOGS, fault_stack


def pytest_collection_modifyitems(config, items):
    if "faults" in (config.getoption("markexpr") or ""):
        return
    slow = [
        item
        for item in items
        if item.get_closest_marker("faults") and not item.get_closest_marker("faults_fast")
    ]
    if slow:
        config.hook.pytest_deselected(items=slow)
        dropped = {id(item) for item in slow}
        items[:] = [item for item in items if id(item) not in dropped]


@pytest.fixture(scope="session")
def fault_layout():
    with fault_stack(LOGS) as fs:
        yield fs


@pytest.fixture
def fs(fault_layout):
    """The module's layout, everything running and sweeping, as no earlier test left it."""
    fault_layout.restore()
    return fault_layout


@pytest.fixture
def expect(request, fault_layout):
    """The test's soft expectations; what it saw goes to var/faults/results.jsonl."""
    expectations = Expectations(request.node.name)
    yield expectations
    record(
        expectations.name,
        {"failed": expectations.failed, "logs": str(fault_layout.log_dir), **expectations.figures},
    )
