"""Where a request's time goes: CPU per request of the hot endpoints, in process.

    .venv/bin/python -m bench.profile_request [--requests 3000] [--profile]

Calls Django's WSGI application directly (no server, no network), as gunicorn's
worker would, against a throwaway database on DATABASE_URL's server, and prints the
CPU this process spent per request (``time.process_time``: unlike wall time, it
barely moves when other work shares the machine; the request thread's share is shown
apart, since another thread sends live events) for: a reserve that sells (of a drop
with one stock, and of a size named in the body), a reserve refused as sold out, and
an unknown /api/ path (what Django and its middleware cost before any view).
``--profile`` adds a cProfile listing (CPU-timed) per case.
"""

import argparse
import cProfile
import io
import os
import pstats
import secrets
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()

    server = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test")
    name = f"bench_profile_{secrets.token_hex(3)}"
    subprocess.run(["psql", server, "-qc", f"CREATE DATABASE {name}"], check=True)
    os.environ.update(
        DATABASE_URL=f"{server.rsplit('/', 1)[0]}/{name}",
        DJANGO_SETTINGS_MODULE="inventory_project.settings",
        DEBUG="0",
        SECRET_KEY=secrets.token_hex(32),
        SECURE_SSL_REDIRECT="0",
        LOG_LEVEL="ERROR",
        CHANNEL_LAYER_PREFIX=f"profile-{secrets.token_hex(3)}",
    )
    try:
        profile(args.requests, args.profile)
    finally:
        subprocess.run(
            ["psql", server, "-qc", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"], check=True
        )


def profile(requests: int, with_profile: bool) -> None:
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command
    from django.core.wsgi import get_wsgi_application

    from drops.models import Size, size_run
    from reservations import services

    call_command("migrate", verbosity=0)
    tokens_file = ROOT / "var" / "bench" / "profile-tokens.txt"
    tokens_file.parent.mkdir(parents=True, exist_ok=True)
    # Per case: 100 to warm up, the measured batch, 300 more for --profile.
    buyers = 4 * (100 + requests + 300)
    call_command("seed_buyers", buyers, out=str(tokens_file), stderr=io.StringIO())
    tokens = tokens_file.read_text().split()
    hot = services.create_drop(name="Hot", price="100.00", total_stock=10 * requests)
    run = [(label, 10 * requests) for label in size_run(7, 11.5)]
    sized = services.create_drop(name="Sized", price="100.00", sizes=run)
    sold_out = services.create_drop(name="Gone", price="100.00", total_stock=1)
    Size.objects.filter(drop=sold_out).update(available_stock=0)
    application = get_wsgi_application()

    cases = [
        ("reserve, sells", f"/api/reserve/{hot.pk}", b""),
        ("reserve a size, sells", f"/api/reserve/{sized.pk}", b'{"size": "US 9.5"}'),
        ("reserve, sold out", f"/api/reserve/{sold_out.pk}", b""),
        ("unknown /api/ path (404)", "/api/no-such-endpoint", b""),
    ]
    unused = iter(tokens)
    for label, path, body in cases:
        # Warm up: imports, prepared statements, the connection.
        call(application, path, [next(unused) for _ in range(100)], body)
        batch = [next(unused) for _ in range(requests)]
        started = time.process_time(), time.thread_time(), time.perf_counter()
        statuses = call(application, path, batch, body)
        cpu, thread_cpu, wall = (
            (now - then) * 1000 / requests
            for now, then in zip(
                (time.process_time(), time.thread_time(), time.perf_counter()), started, strict=True
            )
        )
        print(
            f"{label:28} CPU {cpu:.3f} ms/request ({thread_cpu:.3f} in the request thread), "
            f"wall {wall:.3f} ms/request  {statuses}"
        )
        if with_profile:
            profiler = cProfile.Profile(time.thread_time)
            profiler.runcall(call, application, path, [next(unused) for _ in range(300)], body)
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(40)


def call(application, path: str, tokens: list[str], body: bytes = b"") -> dict[str, int]:
    statuses: dict[str, int] = {}

    def start_response(status, headers, exc_info=None):
        statuses[status] = statuses.get(status, 0) + 1

    for token in tokens:
        environ = {
            "REQUEST_METHOD": "POST",
            "PATH_INFO": path,
            "QUERY_STRING": "",
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "8000",
            "HTTP_HOST": "127.0.0.1",
            "REMOTE_ADDR": "127.0.0.1",
            "CONTENT_LENGTH": str(len(body)),
            "CONTENT_TYPE": "application/json" if body else "",
            "HTTP_AUTHORIZATION": f"Token {token}",
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": sys.stderr,
        }
        response = application(environ, start_response)
        b"".join(response)
        response.close()
    return statuses


if __name__ == "__main__":
    main()
