"""OneShot and Inbox: the cross-thread hand-off everything else rests on."""

import gevent
import pytest
from helpers import WAIT, Recorder, run_in_main_hub, run_in_thread

from geventio import AskTimeout, Task, WouldDeadlock, _native
from geventio._mailbox import Inbox, OneShot


def _set_later(shot, value, gate):
    """From a new native thread: wait for *gate*, then set *shot*."""

    def main():
        gate.acquire()
        shot.set(value)

    _native.start_new_thread(main, ())


@pytest.mark.parametrize("where", ["thread", "main_hub"])
def test_a_one_shot_set_from_another_thread_wakes_its_waiter(where):
    shot = OneShot()
    gate = _native.allocate_lock()
    gate.acquire()
    _set_later(shot, "value", gate)

    def wait():
        # The setter may win the race to the lock or lose it: get()
        # returns the value either way, blocking only while it must.
        gate.release()
        return shot.get(WAIT)

    run = run_in_thread if where == "thread" else run_in_main_hub
    assert run(wait) == "value"


def test_a_one_shot_is_set_once_and_refuses_later_values():
    shot = OneShot()

    assert shot.set(1) is True
    assert shot.set(2) is False
    assert shot.fail(ValueError()) is False
    assert shot.get(0) == 1


def test_a_one_shot_that_times_out_expires_and_refuses_a_late_value():
    shot = OneShot()

    with pytest.raises(AskTimeout):
        shot.get(0.01)
    assert shot.set("late") is False


def test_a_failed_one_shot_raises_its_error_to_every_waiter():
    shot = OneShot()
    shot.fail(KeyError("k"))

    for _ in range(2):
        with pytest.raises(KeyError):
            shot.get(0)


def test_waiting_in_the_hub_greenlet_itself_would_deadlock(io):
    result = Recorder()

    class InHub(Task):
        def receive(self, message):
            def in_hub():
                try:
                    OneShot().wait(1)
                except WouldDeadlock as exc:
                    result.append(exc)

            self.worker.loop.run_callback(in_hub)

    InHub.start(io).tell("go")

    assert isinstance(result.wait_for(1)[0], WouldDeadlock)


def test_then_runs_after_registration_and_before_blocking():
    shot = OneShot()
    order = []

    def then():
        order.append("then")
        shot.set("from then")  # settled before the wait blocks: no hang

    assert shot.get(WAIT, then) == "from then"
    assert order == ["then"]


def test_on_settled_callbacks_run_once_outside_the_lock():
    shot = OneShot()
    seen = []

    shot.on_settled(lambda: seen.append(shot.result()))
    shot.set("v")
    shot.on_settled(lambda: seen.append("late"))

    assert seen == ["v", "late"]


def test_many_greenlets_on_one_hub_wait_for_one_shot():
    shot = OneShot()
    gate = _native.allocate_lock()
    gate.acquire()
    _set_later(shot, "all", gate)

    def many():
        waiters = [gevent.spawn(shot.get, WAIT) for _ in range(5)]
        # One turn of the loop so the waiters register first; were one
        # late, get() would find the value already set and return it.
        gevent.sleep(0)
        gate.release()
        return [g.get() for g in waiters]

    assert run_in_main_hub(many) == ["all"] * 5


def test_an_inbox_refuses_calls_once_closed_and_settles_ready_cells():
    settled = []
    inbox = Inbox(settled.append)
    inbox._closed = True  # as close() leaves it, without a hub

    assert inbox.call_soon(print) is False
    inbox.schedule("cell")

    assert settled == ["cell"]
