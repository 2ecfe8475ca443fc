"""Live stock of a drop of several sizes: merged per size, in a process and in Redis."""

import json

import pytest

from reservations import events
from reservations.publisher import Publisher
from reservations.tests.test_events import _drop_ids, listening, pacing, until  # noqa: F401

pytestmark = pytest.mark.timeout(60)


def sizes(**versions: int) -> list[events.SizeStock]:
    """Sizes 1 and 2 ("A", "B") at the given versions; each sale took a unit of 10."""
    return [
        events.size_stock(size_id, label, 10 - versions[label], 10, versions[label])
        for size_id, label in ((1, "A"), (2, "B"))
    ]


def test_newest_stock_keeps_each_size_from_whichever_frame_knew_it_newest():
    a_sold = events.stock_payload(drop_id=7, sizes=sizes(A=1, B=0))
    b_sold = events.stock_payload(drop_id=7, sizes=sizes(A=0, B=1))
    merged = events.newest_stock(a_sold, b_sold)
    assert merged == events.stock_payload(drop_id=7, sizes=sizes(A=1, B=1))
    assert (merged["availableStock"], merged["totalStock"], merged["version"]) == (18, 20, 2)
    assert events.newest_stock(b_sold, a_sold) == merged


@pytest.mark.asyncio
async def test_two_processes_each_knowing_only_their_own_size_are_both_heard(pacing):  # noqa: F811
    drop_id = next(_drop_ids)
    group = events.drop_group(drop_id)
    async with listening(drop_id) as heard:
        # Two processes commit sales on different sizes at once; each statement saw
        # the other size as it was before.
        Publisher().put_stock(events.stock_payload(drop_id=drop_id, sizes=sizes(A=1, B=0)))
        Publisher().put_stock(events.stock_payload(drop_id=drop_id, sizes=sizes(A=0, B=1)))
        await until(lambda: 2 in [m["version"] for _, m in heard if m["group"] == group], 3)
    last = [m for _, m in heard if m["group"] == group][-1]
    frame = json.loads(last["text"])
    assert frame == events.stock_payload(drop_id=drop_id, sizes=sizes(A=1, B=1))
    assert last["version"] == frame["version"] == 2


@pytest.mark.asyncio
async def test_a_size_taken_out_of_the_run_leaves_the_frames(pacing):  # noqa: F811
    drop_id = next(_drop_ids)
    group = events.drop_group(drop_id)
    publisher = Publisher()
    async with listening(drop_id) as heard:
        publisher.put_stock(events.stock_payload(drop_id=drop_id, sizes=sizes(A=1, B=0)))
        await until(lambda: [m for _, m in heard if m["group"] == group], 3)
        # B, never sold, is removed; a later sale of A is announced with A alone.
        only_a = [size for size in sizes(A=2, B=0) if size["label"] == "A"]
        publisher.put_stock(events.stock_payload(drop_id=drop_id, sizes=only_a))
        await until(lambda: 2 in [m["version"] for _, m in heard if m["group"] == group], 3)
    frame = json.loads([m for _, m in heard if m["group"] == group][-1]["text"])
    assert [size["label"] for size in frame["sizes"]] == ["A"]
    assert (frame["availableStock"], frame["totalStock"]) == (8, 10)
