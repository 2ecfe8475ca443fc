import logging
import time

from celery import shared_task

from inventory_project import metrics
from reservations import idempotency, services

# Celery's own line per task is silenced (settings, LOGGING): these run every second or
# few, so each logs only when it changed something.
logger = logging.getLogger(__name__)


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
    if expired:
        logger.info("Expiry sweep: %d lapsed hold(s) expired, units back on sale", expired)
    return expired


@shared_task
def republish_stock_task() -> int:
    """Re-announce recently changed stock so no lost event leaves a watcher stale."""
    # Not logged: it re-announces the same drops every few seconds after any change.
    return services.republish_recent_stock()


@shared_task
def purge_idempotency_keys_task() -> int:
    """Beat runs this every IDEMPOTENCY_PURGE_SECONDS; returns how many keys it deleted."""
    purged = idempotency.purge_expired_keys()
    if purged:
        logger.info("Idempotency keys: %d older than their lifetime deleted", purged)
    return purged
