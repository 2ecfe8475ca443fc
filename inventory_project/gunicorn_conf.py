"""Gunicorn hooks, for every start of the web server:

    gunicorn inventory_project.wsgi --config python:inventory_project.gunicorn_conf ...

Workers, bind address and logging stay on the command line (Procfile,
docker-compose.yml, README's production section).
"""

import os

# A worker busy with one request this long is replaced. Every wait on PostgreSQL is
# bounded by its connect, statement and lock timeouts (settings), all shorter than
# this, except a statement sent to a server that froze outright (a paused VM, a
# SIGSTOP): only this timeout frees those workers, so it is short. 30 s (gunicorn's
# default) let a 10 s freeze hold every worker for all of it.
timeout = int(os.environ.get("WEB_TIMEOUT", "4"))


def child_exit(server, worker):
    """A worker that exited (crashed, timed out, recycled) takes its live gauges with
    it; its counters stay, so totals never go backwards (inventory_project/metrics.py).
    Runs in the master, which never imports Django."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
