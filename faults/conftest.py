"""Fixtures of the fault suite: one production layout per module, restored before each test.

Every test is marked `faults`; the quick ones also `faults_fast`. Unless the run selects
the `faults` marker itself (`make faults` runs `pytest -m faults faults`), only the
quick ones are collected, so `make test` runs them and not the whole suite.
"""

import pytest

from faults.harness import LOGS, Expectations, fault_stack, record


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


@pytest.fixture(scope="module")
def module_stack():
    with fault_stack(LOGS) as fs:
        yield fs


@pytest.fixture
def fs(module_stack):
    """The module's layout, everything running and sweeping, as no earlier test left it."""
    module_stack.restore()
    return module_stack


@pytest.fixture
def expect(request, module_stack):
    """The test's soft expectations; what it saw goes to var/faults/results.jsonl."""
    expectations = Expectations(request.node.name)
    yield expectations
    record(
        expectations.name,
        {"failed": expectations.failed, "logs": str(module_stack.log_dir), **expectations.figures},
    )
