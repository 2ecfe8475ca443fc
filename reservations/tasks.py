from celery import shared_task

from reservations import services


@shared_task
def expire_reservations_task() -> int:
    """Beat runs this every EXPIRY_SWEEP_SECONDS; returns how many holds expired."""
    expired = services.expire_due()
    services.record_sweep_run()
    return expired


@shared_task
def republish_stock_task() -> int:
    """Re-announce recently changed stock so no lost event leaves a watcher stale."""
    return services.republish_recent_stock()
