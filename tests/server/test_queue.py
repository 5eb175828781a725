"""Queue mode hold / release logic with a fake clock (LwM2M-TS-Transport §6.5)."""

from __future__ import annotations

import pytest

from lwm2m.server.queue import QueueFull, QueueMode
from lwm2m.testing import FakeClock


def test_awake_window_after_each_message() -> None:
    clock = FakeClock()
    queue: QueueMode[str] = QueueMode(awake_time=93.0)
    assert queue.get_timer() is None
    queue.track("c", clock())
    assert "c" in queue
    assert len(queue) == 1
    assert queue.clients() == ["c"]
    assert queue.is_awake("c", clock())
    assert queue.awake_until("c") == 93.0
    assert queue.get_timer() == 93.0
    clock.advance(50)
    assert not queue.message_received("c", clock())  # already awake
    assert queue.awake_until("c") == 143.0
    assert queue.get_timer() == 143.0  # the older deadline is stale
    assert queue.handle_timer(clock.advance(50)) == []
    assert queue.handle_timer(clock.set(143.0)) == ["c"]
    assert not queue.is_awake("c", clock())
    assert queue.get_timer() is None
    assert queue.message_received("c", clock())  # woke up
    assert queue.handle_timer(clock()) == []


def test_requests_are_held_while_asleep_and_released_one_at_a_time() -> None:
    clock = FakeClock()
    queue: QueueMode[str] = QueueMode(awake_time=10.0)
    queue.track("c", clock(), awake=False)
    assert not queue.is_awake("c", clock())
    assert not queue.submit("c", "a", clock())
    assert not queue.submit("c", "b", clock())
    assert queue.held("c") == 2
    assert queue.release("c", clock()) is None  # asleep: nothing goes
    assert queue.message_received("c", clock())
    assert queue.release("c", clock()) == "a"
    assert queue.in_flight("c")
    assert queue.release("c", clock()) is None  # one in flight at a time
    assert not queue.submit("c", "c", clock())  # queued behind b, even though awake
    assert queue.completed("c", clock()) == "b"
    assert queue.completed("c", clock()) == "c"
    assert queue.completed("c", clock()) is None
    assert not queue.in_flight("c")
    assert queue.submit("c", "d", clock())  # awake and idle: straight out
    clock.advance(11)
    assert queue.completed("c", clock()) is None
    assert not queue.submit("c", "e", clock())  # the window ended: held again


def test_withdraw_forget_full_and_unknown_clients() -> None:
    clock = FakeClock()
    queue: QueueMode[str] = QueueMode(awake_time=10.0, max_held=2)
    queue.track("c", clock(), awake=False)
    queue.submit("c", "a", clock())
    queue.submit("c", "b", clock())
    with pytest.raises(QueueFull):
        queue.submit("c", "x", clock())
    assert queue.withdraw("c", "a")
    assert not queue.withdraw("c", "a")
    assert not queue.withdraw("nobody", "a")
    with pytest.raises(KeyError):
        queue.submit("nobody", "a", clock())
    assert queue.forget("c") == ["b"]
    assert queue.forget("c") == []
    assert not queue.message_received("c", clock())
    assert queue.release("c", clock()) is None
    assert queue.completed("c", clock()) is None
    assert not queue.timed_out("c", clock())
    assert not queue.is_awake("c", clock())
    assert queue.awake_until("c") is None
    assert queue.held("c") == 0
    assert not queue.in_flight("c")


def test_a_timeout_puts_the_client_to_sleep() -> None:
    clock = FakeClock()
    queue: QueueMode[str] = QueueMode(awake_time=10.0)
    queue.track("c", clock())
    assert queue.submit("c", "a", clock())
    assert queue.timed_out("c", clock())
    assert not queue.is_awake("c", clock())
    assert not queue.timed_out("c", clock())  # already asleep
    assert queue.handle_timer(clock.advance(20)) == []  # no second "sleeping"
    assert not queue.submit("c", "b", clock())
    queue.track("c", clock())  # tracking again wakes it
    assert queue.release("c", clock()) == "b"
