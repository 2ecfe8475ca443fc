import time

from celery import shared_task

from inventory_project import metrics
from reservations import idempotency, services


@shared_task
def expire_reservations_task() -> int:
    """Beat runs this every EXPIRY_SWEEP_SECONDS; returns how many holds expired."""
    started = time.perf_counter()
    expired = services.expire_due()
    services.record_sweep_run()
    metrics.SWEEP_SECONDS.observe(time.perf_counter() - started)
    metrics.SWEEP_UNITS_RETURNED.inc(expired)
    metrics.SWEEP_RUNS.inc()
    metrics.SWEEP_LAST_RUN.set_to_current_time()
    return expired


@shared_task
def republish_stock_task() -> int:
    """Re-announce recently changed stock so no lost event leaves a watcher stale."""
    return services.republish_recent_stock()


@shared_task
def purge_idempotency_keys_task() -> int:
    """Beat runs this every IDEMPOTENCY_PURGE_SECONDS; returns how many keys it deleted."""
    return idempotency.purge_expired_keys()
