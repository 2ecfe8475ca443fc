import sys
import time
from datetime import timedelta
from pathlib import Path

from django.utils import timezone

import pytest

from accounts.tests.factories import UserFactory
from drops.models import Drop, Size
from drops.tests.factories import DropFactory
from reservations import services
from reservations.models import Reservation, SweepRun
from reservations.services.expiry import EXPIRY_JOB
from reservations.tasks import expire_reservations_task, republish_stock_task

CELERY = str(Path(sys.executable).with_name("celery"))


@pytest.mark.django_db
def test_expire_reservations_task_returns_lapsed_units_and_counts_them():
    drop = DropFactory(total_stock=3)
    held = [services.reserve(user=UserFactory(), drop_id=drop.pk) for _ in range(2)]
    Reservation.objects.filter(pk=held[0].pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert expire_reservations_task() == 1
    assert expire_reservations_task() == 0
    drop.refresh_from_db()
    assert drop.available_stock == 2


@pytest.mark.django_db
def test_republish_stock_task_announces_recently_changed_drops_only():
    changed = DropFactory()
    Size.objects.filter(drop=DropFactory()).update(updated_at=timezone.now() - timedelta(hours=1))
    services.reserve(user=UserFactory(), drop_id=changed.pk)
    assert republish_stock_task() == 1


@pytest.mark.processes
@pytest.mark.xdist_group("servers")
@pytest.mark.django_db(transaction=True)
def test_worker_and_beat_return_an_expired_unit_within_two_seconds(
    start_process, server_env, settings, tmp_path
):
    """A real Celery worker with beat, on the Redis broker, sweeps the test database."""
    worker = start_process(
        [
            CELERY,
            "-A",
            "inventory_project",
            "worker",
            "--beat",
            "--concurrency",
            "1",
            "--loglevel",
            "INFO",
            "--without-gossip",
            "--without-mingle",
            "--schedule",
            str(tmp_path / "beat-schedule"),
        ],
        env=server_env,
        name="celery",
    )
    drop = DropFactory(total_stock=2)
    settings.RESERVATION_TTL_SECONDS = 1
    # Wait for the worker to sweep once before timing, so start-up is not measured.
    warmup = services.reserve(user=UserFactory(), drop_id=drop.pk)
    _wait_until(lambda: Reservation.objects.get(pk=warmup.pk).status == "EXPIRED", timeout=60)

    reservation = services.reserve(user=UserFactory(), drop_id=drop.pk)
    _wait_until(lambda: Drop.objects.get(pk=drop.pk).available_stock == 2, timeout=10)
    returned_at = timezone.now()

    assert Reservation.objects.get(pk=reservation.pk).status == Reservation.Status.EXPIRED
    assert returned_at - reservation.expires_at <= timedelta(seconds=2)
    assert worker.poll() is None


@pytest.mark.processes
@pytest.mark.xdist_group("servers")
@pytest.mark.django_db(transaction=True)
def test_worker_and_beat_log_a_sweep_only_when_it_returns_units(
    start_process, server_env, tmp_path
):
    """As make run starts them (--loglevel INFO): idle sweeps and republishes, several a
    second here, add no line; a sweep that returns a unit says so once."""
    env = {**server_env, "EXPIRY_SWEEP_SECONDS": "0.2", "STOCK_REPUBLISH_SECONDS": "0.2"}
    start_process(
        [
            *(CELERY, "-A", "inventory_project", "worker", "--beat", "--loglevel", "INFO"),
            *("--concurrency", "1", "--without-gossip", "--without-mingle"),
            *("--schedule", str(tmp_path / "beat-schedule")),
        ],
        env=env,
        name="celery",
    )
    drop = DropFactory(total_stock=2)
    services.reserve(user=UserFactory(), drop_id=drop.pk)  # something to republish
    sweeps = _count_sweeps(at_least=10, timeout=60)
    held = services.reserve(user=UserFactory(), drop_id=drop.pk)
    Reservation.objects.filter(pk=held.pk).update(expires_at=timezone.now())
    _wait_until(lambda: Reservation.objects.get(pk=held.pk).status == "EXPIRED", timeout=10)
    sweeps += _count_sweeps(at_least=5, timeout=30)

    log = (tmp_path / "celery-0.log").read_text()
    ready = log.index(" ready.")
    after_start = [line for line in log[ready:].splitlines()[1:] if line.strip()]
    assert sweeps >= 15
    assert len(after_start) == 1, after_start
    assert "Expiry sweep: 1 lapsed hold(s) expired" in after_start[0]


def _count_sweeps(*, at_least: int, timeout: float) -> int:
    """Wait until the sweep has finished ``at_least`` more times; returns how many."""
    seen, last = 0, None
    deadline = time.monotonic() + timeout
    while seen < at_least:
        if time.monotonic() > deadline:
            raise AssertionError(f"{seen} sweeps within {timeout}s")
        finished = SweepRun.objects.filter(job=EXPIRY_JOB).values_list("finished_at", flat=True)
        now = finished.first()
        if now is not None and now != last:
            seen += last is not None
            last = now
        time.sleep(0.02)
    return seen


def _wait_until(condition, *, timeout: float, every: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(every)
