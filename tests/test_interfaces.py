"""Every public class provides its zope.interface declaration."""

from helpers import WAIT, Recorder
from zope.interface.verify import verifyObject

from geventio import Task
from geventio.interfaces import IIOSystem, IProxyActor, ITask, IWorker


def test_iosystem_and_worker_provide_their_interfaces(io):
    assert verifyObject(IIOSystem, io)
    assert verifyObject(IWorker, io.workers[0])


def test_proxies_and_reply_handles_provide_iproxyactor(io):
    replies = Recorder()

    class Keep(Task):
        def receive(self, message):
            replies.append(self.sender)
            self.sender.tell(self)

    proxy = Keep.start(io)
    task = proxy.ask("x", timeout=WAIT)

    assert verifyObject(IProxyActor, proxy)
    assert verifyObject(IProxyActor, replies.wait_for(1)[0])
    assert verifyObject(ITask, task)


def test_lifecycle_events_reach_zope_event_subscribers_off_the_hub(make_io):
    import zope.event

    from geventio import _native
    from geventio.events import (
        IDeadLetter,
        ITaskBound,
        ITaskFailed,
        ITaskUnbound,
        TaskBound,
        TaskUnbound,
    )

    seen = Recorder()

    def subscriber(event):
        seen.append((event, _native.get_ident()))

    class Fails(Task):
        def receive(self, message):
            raise ValueError("expected")

    make_io.expect_failures()
    zope.event.subscribers.append(subscriber)
    try:
        io = make_io("events")
        proxy = Fails.start(io)
        proxy.tell("boom")
        seen.wait(lambda items: any(ITaskUnbound.providedBy(e) for e, _ in items))
        proxy.tell("after")
        seen.wait(lambda items: any(IDeadLetter.providedBy(e) for e, _ in items))
    finally:
        zope.event.subscribers.remove(subscriber)

    ours = [
        (e, ident) for e, ident in seen.items if hasattr(e, "proxy") or hasattr(e, "to")
    ]
    kinds = [type(e).__name__ for e, _ in ours]
    assert kinds == ["TaskBound", "TaskFailed", "TaskUnbound", "DeadLetter"]
    bound, failed, unbound, dead = (e for e, _ in ours)
    assert isinstance(bound, TaskBound) and ITaskBound.providedBy(bound)
    assert bound.proxy is proxy and bound.worker is io.workers[0]
    assert ITaskFailed.providedBy(failed) and isinstance(failed.error, ValueError)
    assert isinstance(unbound, TaskUnbound) and unbound.reason == "failed"
    assert dead.to is proxy and dead.message == "after"
    assert all(ident != io.workers[0].ident for _, ident in ours)


def test_probes_provide_iproxyactor():
    from geventio.testing import Probe

    assert verifyObject(IProxyActor, Probe())


def test_supervisors_provide_isupervisor(make_io):
    from geventio import Supervisor
    from geventio.interfaces import ISupervisor

    class Idle(Task):
        pass

    with Supervisor(lambda io: Idle.start(io), interval=0.05, timeout=1) as sup:
        assert verifyObject(ISupervisor, sup)
