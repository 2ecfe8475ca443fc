"""Idempotency-Key on reserve, purchase and cancel: a retry gets the first answer."""

import threading
import time
from datetime import timedelta

from django.db import connection, connections
from django.utils import timezone

import pytest
from rest_framework.test import APIClient

from accounts.tests.factories import UserFactory
from drops.tests.factories import DropFactory
from inventory_project.testing import assert_json_error, assert_stock_adds_up
from reservations import idempotency, services
from reservations import publisher as publishing
from reservations.models import IdempotencyKey, Purchase, Reservation
from reservations.tasks import purge_idempotency_keys_task
from reservations.tests.helpers import ACTIVE, available, lapse, token_client

KEY = "2f1c7e0a-5b7d-4c1e-9a3f-0d6b8e4f2a11"
DAY = timedelta(hours=24)


def keyed(client, path, key=KEY, **kwargs):
    return client.post(path, HTTP_IDEMPOTENCY_KEY=key, **kwargs)


def assert_replay_of(first, retry):
    assert retry.status_code == first.status_code
    assert retry.content == first.content  # byte for byte: same ids, same key order
    assert retry[idempotency.REPLAYED_HEADER] == "true"
    assert not first.has_header(idempotency.REPLAYED_HEADER)


def age_keys(by: timedelta) -> None:
    IdempotencyKey.objects.update(created_at=timezone.now() - by)


@pytest.mark.django_db
class TestReplay:
    def test_reserve_retry_gets_the_first_answer_and_holds_one_unit(self, auth_client, drop):
        first = keyed(auth_client, f"/api/reserve/{drop.pk}")
        retry = keyed(auth_client, f"/api/reserve/{drop.pk}")

        assert first.status_code == 201
        assert_replay_of(first, retry)
        held = Reservation.objects.get()
        assert first.json()["reservation"]["id"] == held.pk
        assert available(drop) == 4
        assert_stock_adds_up()

    def test_purchase_retry_gets_the_same_sale(self, auth_client, user, drop):
        held = services.reserve(user=user, drop_id=drop.pk)

        first = keyed(auth_client, f"/api/purchase/{held.pk}")
        retry = keyed(auth_client, f"/api/purchase/{held.pk}")

        assert first.status_code == 201
        assert_replay_of(first, retry)
        assert first.json()["purchase"]["id"] == Purchase.objects.get().pk
        assert available(drop) == 4
        assert_stock_adds_up()

    def test_cancel_retry_gets_the_same_answer_and_returns_the_unit_once(
        self, auth_client, user, drop
    ):
        held = services.reserve(user=user, drop_id=drop.pk)

        first = keyed(auth_client, f"/api/reservations/{held.pk}/cancel")
        retry = keyed(auth_client, f"/api/reservations/{held.pk}/cancel")

        assert first.status_code == 200
        assert_replay_of(first, retry)
        assert first.json()["reservation"]["id"] == held.pk
        # Without the key, a second cancel is refused: the replay is not a new attempt.
        assert_json_error(auth_client.post(f"/api/reservations/{held.pk}/cancel"), 409)
        assert available(drop) == 5
        assert_stock_adds_up()

    def test_a_refusal_replays_even_after_a_unit_comes_back(self, auth_client, other_user, drop):
        drop.sizes.update(total_stock=1, available_stock=1)
        other_hold = services.reserve(user=other_user, drop_id=drop.pk)

        first = keyed(auth_client, f"/api/reserve/{drop.pk}")
        services.cancel(user=other_user, reservation_id=other_hold.pk)
        retry = keyed(auth_client, f"/api/reserve/{drop.pk}")

        assert_json_error(first, 409)
        assert_replay_of(first, retry)
        assert not Reservation.objects.filter(status=ACTIVE).exists()
        assert available(drop) == 1
        assert_stock_adds_up()

    def test_a_refusal_that_released_a_lapsed_hold_replays_without_releasing_twice(
        self, auth_client, user, drop
    ):
        held = services.reserve(user=user, drop_id=drop.pk)
        lapse(held)

        first = keyed(auth_client, f"/api/purchase/{held.pk}")
        retry = keyed(auth_client, f"/api/purchase/{held.pk}")

        assert_json_error(first, 410)
        assert_replay_of(first, retry)
        held.refresh_from_db()
        assert held.status == Reservation.Status.EXPIRED
        assert available(drop) == 5
        assert_stock_adds_up()

    def test_two_buyers_may_use_the_same_key(self, auth_client, other_client, drop):
        mine = keyed(auth_client, f"/api/reserve/{drop.pk}")
        theirs = keyed(other_client, f"/api/reserve/{drop.pk}")

        assert mine.status_code == theirs.status_code == 201
        assert mine.json()["reservation"]["id"] != theirs.json()["reservation"]["id"]
        assert not theirs.has_header(idempotency.REPLAYED_HEADER)
        assert Reservation.objects.filter(status=ACTIVE).count() == 2
        assert available(drop) == 3
        assert_stock_adds_up()

    def test_requests_without_a_key_store_nothing(self, auth_client, user, drop):
        held = auth_client.post(f"/api/reserve/{drop.pk}").json()["reservation"]
        auth_client.post(f"/api/purchase/{held['id']}")

        assert not IdempotencyKey.objects.exists()

    def test_a_fault_before_the_answer_is_stored_leaves_neither_hold_nor_key(
        self, auth_client, drop, monkeypatch
    ):
        class Crash(Exception):
            pass

        class CrashingEncoder(idempotency.JSONEncoder):
            def encode(self, o):
                raise Crash()

        monkeypatch.setattr(idempotency, "JSONEncoder", CrashingEncoder)
        with pytest.raises(Crash):
            keyed(auth_client, f"/api/reserve/{drop.pk}")
        assert not Reservation.objects.exists()
        assert not IdempotencyKey.objects.exists()
        assert available(drop) == 5

        monkeypatch.undo()
        retry = keyed(auth_client, f"/api/reserve/{drop.pk}")
        assert retry.status_code == 201
        assert not retry.has_header(idempotency.REPLAYED_HEADER)
        assert Reservation.objects.count() == 1
        assert_stock_adds_up()


@pytest.mark.django_db
class TestRefusedKeys:
    def test_a_key_reused_for_another_drop_is_422_and_holds_nothing(self, auth_client, drop):
        other_drop = DropFactory(total_stock=5)
        keyed(auth_client, f"/api/reserve/{drop.pk}")

        body = assert_json_error(keyed(auth_client, f"/api/reserve/{other_drop.pk}"), 422)

        assert "Idempotency-Key" in body["error"]
        assert not Reservation.objects.filter(drop=other_drop).exists()
        assert available(other_drop) == 5

    def test_a_key_reused_on_another_endpoint_is_422(self, auth_client, drop):
        held = keyed(auth_client, f"/api/reserve/{drop.pk}").json()["reservation"]

        assert_json_error(keyed(auth_client, f"/api/purchase/{held['id']}"), 422)

        assert not Purchase.objects.exists()

    def test_a_key_reused_with_another_body_is_422(self, auth_client, user, drop):
        keyed(auth_client, f"/api/reserve/{drop.pk}")

        response = keyed(
            auth_client, f"/api/reserve/{drop.pk}", data={"userId": user.pk}, format="json"
        )

        assert_json_error(response, 422)

    def test_a_body_with_a_lone_surrogate_is_keyed_and_replayed(self, auth_client, drop):
        path, body = f"/api/reserve/{drop.pk}", '{"note": "\\ud800"}'

        first = keyed(auth_client, path, data=body, content_type="application/json")
        retry = keyed(auth_client, path, data=body, content_type="application/json")

        assert first.status_code == 201
        assert_replay_of(first, retry)

    @pytest.mark.parametrize(
        "key",
        ["", " ", " leading", "trailing ", "x" * 256, "ctl\x01", "tab\there", "caf\xe9"],
        ids=["empty", "space", "leading", "trailing", "256", "control", "tab", "latin1"],
    )
    def test_a_malformed_key_is_a_json_400(self, auth_client, drop, key):
        body = assert_json_error(keyed(auth_client, f"/api/reserve/{drop.pk}", key=key), 400)

        assert "Idempotency-Key" in body["error"]
        assert not Reservation.objects.exists()
        assert not IdempotencyKey.objects.exists()

    def test_a_key_of_255_printable_characters_is_accepted(self, auth_client, drop):
        key = "k" + " ~" * 126 + "x!"

        assert len(key) == 255
        assert keyed(auth_client, f"/api/reserve/{drop.pk}", key=key).status_code == 201
        assert IdempotencyKey.objects.get().key == key


@pytest.mark.django_db
class TestExpiry:
    def test_a_key_older_than_a_day_counts_as_new(self, auth_client, user, drop):
        first = keyed(auth_client, f"/api/reserve/{drop.pk}")
        services.cancel(user=user, reservation_id=first.json()["reservation"]["id"])
        age_keys(DAY + timedelta(seconds=1))

        again = keyed(auth_client, f"/api/reserve/{drop.pk}")
        elsewhere = DropFactory(total_stock=5)
        age_keys(DAY + timedelta(seconds=1))
        reused = keyed(auth_client, f"/api/reserve/{elsewhere.pk}")

        assert again.status_code == 201
        assert not again.has_header(idempotency.REPLAYED_HEADER)
        assert again.json()["reservation"]["id"] != first.json()["reservation"]["id"]
        assert reused.status_code == 201  # not 422: the old request is forgotten
        assert IdempotencyKey.objects.count() == 1
        assert_stock_adds_up()

    def test_a_key_younger_than_a_day_still_replays(self, auth_client, drop):
        first = keyed(auth_client, f"/api/reserve/{drop.pk}")
        age_keys(DAY - timedelta(minutes=1))

        assert_replay_of(first, keyed(auth_client, f"/api/reserve/{drop.pk}"))

    def test_the_purge_deletes_keys_older_than_a_day(self, auth_client, user, drop):
        keyed(auth_client, f"/api/reserve/{drop.pk}", key="old")
        age_keys(DAY + timedelta(seconds=1))
        keyed(auth_client, f"/api/reserve/{drop.pk}", key="new")

        assert purge_idempotency_keys_task() == 1

        assert list(IdempotencyKey.objects.values_list("key", flat=True)) == ["new"]
        assert purge_idempotency_keys_task() == 0

    def test_the_purge_works_through_more_keys_than_one_chunk(self, user, monkeypatch):
        monkeypatch.setattr(idempotency, "PURGE_CHUNK", 3)
        old = timezone.now() - DAY - timedelta(seconds=1)
        IdempotencyKey.objects.bulk_create(
            IdempotencyKey(user=user, key=f"k{n}", fingerprint="f", created_at=old)
            for n in range(7)
        )

        assert purge_idempotency_keys_task() == 7
        assert not IdempotencyKey.objects.exists()


@pytest.mark.django_db
def test_a_keyed_reserve_by_a_buyer_whose_hold_lapsed_takes_a_new_hold(auth_client, user, drop):
    lapse(services.reserve(user=user, drop_id=drop.pk))

    response = keyed(auth_client, f"/api/reserve/{drop.pk}")

    assert response.status_code == 201
    assert Reservation.objects.filter(status=ACTIVE).count() == 1
    assert_stock_adds_up()


@pytest.mark.django_db
def test_a_keyed_reserve_of_a_drop_sold_to_lapsed_holds_takes_one_back(
    auth_client, other_user, drop
):
    drop.sizes.update(total_stock=1, available_stock=1)
    lapse(services.reserve(user=other_user, drop_id=drop.pk))

    response = keyed(auth_client, f"/api/reserve/{drop.pk}")

    assert response.status_code == 201
    assert Reservation.objects.filter(status=ACTIVE).count() == 1
    assert_stock_adds_up()


# Races, on separate connections: transactional tests.


def wait_for_lock_waiters(count: int, timeout: float = 30.0) -> bool:
    """Until ``count`` other sessions of this database wait for a lock (on a connection
    of its own, so each look is a fresh snapshot)."""
    observer = connections.create_connection("default")
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with observer.cursor() as cursor:
                cursor.execute(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
                if cursor.fetchone()[0] >= count:
                    return True
            time.sleep(0.01)
        return False
    finally:
        observer.close()


def post_concurrently(user, path: str, *, threads: int, key: str | None) -> list:
    """``threads`` POSTs by ``user``, each on its own connection, released together."""
    barrier = threading.Barrier(threads)
    responses: list = [None] * threads

    def post(index: int) -> None:
        try:
            client = APIClient()
            client.force_authenticate(user)
            barrier.wait()
            headers = {} if key is None else {"HTTP_IDEMPOTENCY_KEY": key}
            responses[index] = client.post(path, **headers)
        except Exception as exc:  # collected and asserted by the test
            responses[index] = exc
        finally:
            connection.close()

    pool = [threading.Thread(target=post, args=(n,)) for n in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return responses


def hold_first_caller_until_others_wait(monkeypatch, name: str, others: int) -> list[bool]:
    """The first request into ``services.<name>`` waits there, its key claimed, until
    ``others`` sessions wait for a lock; whether they did is recorded."""
    original = getattr(services, name)
    first = threading.Lock()
    waited: list[bool] = []

    def held(**kwargs):
        if first.acquire(blocking=False):
            waited.append(wait_for_lock_waiters(others))
        return original(**kwargs)

    monkeypatch.setattr(services, name, held)
    return waited


THREADS = 8


@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(120)
class TestConcurrentRetries:
    def test_retries_with_one_key_make_one_hold_and_get_one_answer(self, monkeypatch):
        user, drop = UserFactory(), DropFactory(total_stock=5)
        waited = hold_first_caller_until_others_wait(monkeypatch, "reserve", THREADS - 1)

        responses = post_concurrently(user, f"/api/reserve/{drop.pk}", threads=THREADS, key=KEY)

        assert waited == [True]  # the retries really arrived while the first was running
        assert [r.status_code for r in responses] == [201] * THREADS
        assert len({r.content for r in responses}) == 1
        replayed = [r for r in responses if r.has_header(idempotency.REPLAYED_HEADER)]
        assert len(replayed) == THREADS - 1
        assert Reservation.objects.filter(status=ACTIVE).count() == 1
        assert available(drop) == 4
        assert_stock_adds_up()

    def test_retries_with_one_key_make_one_sale(self, monkeypatch):
        user, drop = UserFactory(), DropFactory(total_stock=5)
        held = services.reserve(user=user, drop_id=drop.pk)
        waited = hold_first_caller_until_others_wait(monkeypatch, "purchase", THREADS - 1)

        responses = post_concurrently(user, f"/api/purchase/{held.pk}", threads=THREADS, key=KEY)

        assert waited == [True]
        assert [r.status_code for r in responses] == [201] * THREADS
        assert len({r.content for r in responses}) == 1
        assert Purchase.objects.count() == 1
        assert_stock_adds_up()

    def test_without_a_key_the_same_retries_get_different_answers(self):
        # The control: the harness does tell a replay from a second attempt.
        user, drop = UserFactory(), DropFactory(total_stock=5)

        responses = post_concurrently(user, f"/api/reserve/{drop.pk}", threads=THREADS, key=None)

        assert sorted(r.status_code for r in responses) == [201] + [409] * (THREADS - 1)
        assert Reservation.objects.filter(status=ACTIVE).count() == 1
        assert_stock_adds_up()

    def test_a_keyed_reserve_announces_its_stock_only_after_commit(self, monkeypatch):
        user, drop = UserFactory(), DropFactory(total_stock=5)
        seen = []
        put_stock = lambda payload: seen.append(  # noqa: E731
            (payload["availableStock"], connection.in_atomic_block)
        )
        monkeypatch.setattr(publishing.publisher, "put_stock", put_stock)
        assert keyed(token_client(user), f"/api/reserve/{drop.pk}").status_code == 201
        assert seen == [(4, False)]
