"""Screenshots of every shop page at phone (390x844) and desktop (1280x800) size.

    DATABASE_URL=... REDIS_URL=... .venv/bin/python scripts/screenshots.py OUT_DIR

It creates a throwaway database on DATABASE_URL's server, seeds it, serves it with
gunicorn and daphne (as the browser tests do), drives the system Chromium through
Playwright and writes ``<page>-phone.png`` (what a phone shows without scrolling),
``<page>-phone-full.png`` and ``<page>-desktop.png`` to OUT_DIR, then drops the
database. The browser runs in New York time, so a page showing UTC stands out.
"""

import os
import signal
import subprocess
import sys
import tempfile
import uuid
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from urllib.parse import quote

BASE_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(BASE_DIR))

BIN = Path(sys.executable).parent
CHROMIUM = "/usr/bin/chromium"
PHONE = {
    "viewport": {"width": 390, "height": 844},
    "is_mobile": True,
    "has_touch": True,
}
DESKTOP = {"viewport": {"width": 1280, "height": 800}}
BROWSER_CONTEXT = {"locale": "en-US", "timezone_id": "America/New_York"}
PASSWORD = "sneaker-Fan-2026"


def throwaway_database() -> tuple[dict, str]:
    """Create an empty database beside DATABASE_URL's; return its config and URL."""
    import environ
    import psycopg

    config = environ.Env.db_url_config(
        os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test")
    )
    name = f"screenshots_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(**connect_args(config), autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    auth = quote(config["USER"] or "postgres", safe="")
    if config.get("PASSWORD"):
        auth += ":" + quote(config["PASSWORD"], safe="")
    host = quote(config["HOST"] or "127.0.0.1", safe="")
    port = f":{config['PORT']}" if config.get("PORT") else ""
    return config | {"NAME": name}, f"postgres://{auth}@{host}{port}/{name}"


def connect_args(config: dict) -> dict:
    args = {"dbname": config["NAME"], "user": config["USER"] or "postgres"}
    for key in ("HOST", "PORT", "PASSWORD"):
        if config.get(key):
            args[key.lower()] = config[key]
    return args


def drop_database(config: dict) -> None:
    import psycopg

    admin = connect_args(config) | {"dbname": "postgres"}
    with psycopg.connect(**admin, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{config["NAME"]}" WITH (FORCE)')


def seed() -> dict:
    """Drops in size runs and one of one size, buyers, and one shopper with a purchase,
    an expired and a cancelled hold."""
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from drops.models import size_run
    from reservations import services
    from reservations.models import Reservation

    User = get_user_model()
    now = timezone.now()

    def user(username):
        return User.objects.create_user(username=username, password=PASSWORD)

    def run(first, last, stock, step=0.5):
        return list(zip(size_run(first, last, step), stock, strict=True))

    def buy(buyer, drop, size=None):
        hold = services.reserve(user=buyer, drop_id=drop.pk, size=size)
        return services.purchase(user=buyer, reservation_id=hold.pk)

    shopper = user("jamie_runner")
    buyers = [user(name) for name in ("alexandra", "morgan.k", "sam")]
    live = services.create_drop(
        name="Air Max 1 'Volt Rush'",
        price=Decimal("180.00"),
        sizes=run(7, 12, [2, 4, 6, 10, 14, 16, 16, 14, 10, 6, 4]),
    )
    second = services.create_drop(
        name="Dunk Low 'Harbor Blue'",
        price=Decimal("125.00"),
        sizes=run(8, 12, [6, 10, 12, 10, 6], step=1),
    )
    sold_out = services.create_drop(
        name="Jordan 4 'Midnight Clay'", price=Decimal("225.00"), total_stock=1
    )
    upcoming = services.create_drop(
        name="Air Force 1 'Night Run'",
        price=Decimal("140.00"),
        sizes=run(6, 13, [4, 8, 10, 14, 14, 12, 10, 8], step=1),
        drop_start_time=now + timedelta(hours=2, minutes=14),
    )
    # US 7 of the live drop sells out: its chip shows so.
    for buyer, size in zip(buyers, ["US 7", "US 7", "US 10"], strict=True):
        buy(buyer, live, size)
    services.reserve(user=buyers[0], drop_id=sold_out.pk)

    buy(shopper, second, "US 10")
    lapsed = services.reserve(user=shopper, drop_id=live.pk, size="US 9")
    Reservation.objects.filter(pk=lapsed.pk).update(
        created_at=now - timedelta(minutes=3), expires_at=now - timedelta(minutes=2)
    )
    services.expire_due()
    cancelled = services.reserve(user=shopper, drop_id=live.pk, size="US 9.5")
    services.cancel(user=shopper, reservation_id=cancelled.pk)
    return {"shopper": shopper, "live": live, "upcoming": upcoming, "one_size": sold_out}


def session_cookie(user) -> dict:
    from django.conf import settings
    from django.test import Client

    client = Client()
    client.force_login(user)
    return {
        "name": settings.SESSION_COOKIE_NAME,
        "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
    }


def start(argv: list[str], env: dict, port: int, log_dir: Path) -> subprocess.Popen:
    from inventory_project.devservices import wait_for_port

    log = open(log_dir / f"{Path(argv[0]).name}.log", "wb")
    process = subprocess.Popen(
        argv, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        wait_for_port(port, process, timeout=30, name=argv[0])
    except RuntimeError:
        print((log_dir / f"{Path(argv[0]).name}.log").read_text()[-3000:], file=sys.stderr)
        raise
    return process


def take(page, out: Path, name: str, kind: str) -> None:
    options = {"animations": "disabled", "caret": "hide"}
    if kind == "desktop":
        page.screenshot(path=str(out / f"{name}-desktop.png"), full_page=True, **options)
        shrink(out / f"{name}-desktop.png")
        return
    page.screenshot(path=str(out / f"{name}-phone.png"), **options)
    shrink(out / f"{name}-phone.png")
    # The whole page as one tall screen, so what is fixed to the bottom of the screen
    # (the action bar) shows at the bottom, not where the first screen ended.
    viewport = page.viewport_size
    height = page.evaluate("document.documentElement.scrollHeight")
    page.set_viewport_size({"width": viewport["width"], "height": height})
    page.screenshot(path=str(out / f"{name}-phone-full.png"), **options)
    page.set_viewport_size(viewport)
    shrink(out / f"{name}-phone-full.png")


def shrink(path: Path) -> None:
    """A 256-colour palette: flat UI loses nothing visible, the file a half to two thirds."""
    from PIL import Image  # matplotlib's dependency (requirements-dev.txt)

    with Image.open(path) as image:
        small = image.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    small.save(path, optimize=True)


def shoot(browser, base_url: str, out: Path, data: dict, cookie: dict, kind: str) -> None:
    from playwright.sync_api import expect

    device = PHONE if kind == "phone" else DESKTOP

    def new_page(logged_in: bool):
        context = browser.new_context(base_url=base_url, **device, **BROWSER_CONTEXT)
        if logged_in:
            context.add_cookies([cookie | {"url": base_url}])
        return context.new_page()

    def visit(page, path: str) -> None:
        page.goto(path)
        status = page.locator("#connection-status")
        if status.count():
            expect(status).to_have_attribute("data-state", "live")

    page = new_page(logged_in=True)
    visit(page, "/")
    take(page, out, "drop-list", kind)
    visit(page, f"/drops/{data['upcoming'].pk}/")
    take(page, out, "drop-upcoming", kind)
    visit(page, f"/drops/{data['one_size'].pk}/")
    take(page, out, "drop-one-size", kind)
    visit(page, f"/drops/{data['live'].pk}/")
    take(page, out, "drop-live", kind)
    chosen = page.get_by_test_id("size-chip").filter(has_text="US 9.5")
    left = chosen.inner_text().split()[-2]  # "US 9.5 16 left"
    chosen.click()
    expect(page.locator("#reserve-button")).to_have_text("Reserve US 9.5")
    take(page, out, "drop-live-size", kind)
    page.locator("#reserve-button").click()
    expect(page.locator("#reservation-panel")).to_have_attribute("data-state", "active")
    expect(chosen).to_contain_text(f"{int(left) - 1} left")  # the live update came
    take(page, out, "drop-live-hold", kind)
    page.locator("#cancel-button").click()
    expect(page.locator("#reservation-panel")).to_have_attribute("data-state", "none")
    expect(chosen).to_contain_text(f"{left} left")
    take(page, out, "drop-live-message", kind)
    page.locator("#reserve-button").click()  # an ACTIVE hold for "My orders"
    expect(page.locator("#reservation-panel")).to_have_attribute("data-state", "active")
    visit(page, "/orders/")
    take(page, out, "my-orders", kind)
    page.context.close()

    page = new_page(logged_in=False)
    visit(page, "/accounts/login/")
    take(page, out, "login", kind)
    visit(page, "/accounts/signup/")
    take(page, out, "signup", kind)
    page.locator("input[name=username]").fill("jo")
    page.locator("input[name=password1]").fill("short")
    page.locator("input[name=password2]").fill("different")
    page.locator("form [type=submit]").click()
    page.wait_for_load_state()
    take(page, out, "signup-errors", kind)
    page.context.close()

    # The shopper's hold must not block the next run through the same page.
    from reservations import services
    from reservations.models import Reservation

    for hold in Reservation.objects.filter(user=data["shopper"], status="ACTIVE"):
        services.cancel(user=data["shopper"], reservation_id=hold.pk)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    out = Path(argv[0]).resolve()
    out.mkdir(parents=True, exist_ok=True)
    config, url = throwaway_database()
    prefix = f"shots-{uuid.uuid4().hex[:8]}"
    from inventory_project.devservices import free_port

    web_port, ws_port = free_port(), free_port()
    os.environ.update(
        DATABASE_URL=url,
        DJANGO_SETTINGS_MODULE="inventory_project.settings",
        DEBUG="1",
        CHANNEL_LAYER_PREFIX=prefix,
        CELERY_QUEUE=prefix,
        WEBSOCKET_URL=f"ws://127.0.0.1:{ws_port}/ws/",
        PYTHONPATH=str(BASE_DIR),
    )
    servers = []
    try:
        import django

        django.setup()
        from django.core.management import call_command
        from django.db import connections

        call_command("migrate", verbosity=0)
        data = seed()
        cookie = session_cookie(data["shopper"])
        connections.close_all()
        log_dir = Path(tempfile.mkdtemp(prefix="screenshots-"))
        env = dict(os.environ)
        servers.append(
            start(
                [
                    str(BIN / "daphne"),
                    "--bind",
                    "127.0.0.1",
                    "--port",
                    str(ws_port),
                    "inventory_project.asgi:application",
                ],
                env,
                ws_port,
                log_dir,
            )
        )
        servers.append(
            start(
                [
                    str(BIN / "gunicorn"),
                    "inventory_project.wsgi",
                    "--bind",
                    f"127.0.0.1:{web_port}",
                    "--workers",
                    "2",
                ],
                env,
                web_port,
                log_dir,
            )
        )
        from playwright.sync_api import expect, sync_playwright

        expect.set_options(timeout=15_000)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"]
            )
            try:
                for kind in ("phone", "desktop"):
                    shoot(browser, f"http://127.0.0.1:{web_port}", out, data, cookie, kind)
            finally:
                browser.close()
        print(f"screenshots in {out}")
        return 0
    finally:
        for server in servers:
            os.killpg(server.pid, signal.SIGTERM)
        for server in servers:
            server.wait(timeout=15)
        from django.db import connections

        connections.close_all()
        drop_database(config)


if __name__ == "__main__":
    # Playwright's sync API runs an event loop in this thread, where Django refuses ORM
    # calls; this script alone does ORM work there (the cleanup in shoot()).
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "1")
    sys.exit(main(sys.argv[1:]))
