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


def test_hooks_that_raise_are_announced_and_logged(io, task_errors):
    from geventio.events import (
        HookFailed,
        IHookFailed,
        subscribe_on_hub,
        unsubscribe_on_hub,
    )

    seen = Recorder()

    class Hooks(Task):
        def receive(self, message):
            raise ValueError("receive")

        def on_failure(self, exc):
            raise KeyError("on_failure")

        def on_unbind(self):
            raise LookupError("on_unbind")

    def stopped(terminated):
        raise ZeroDivisionError("on_stopped")

    subscribe_on_hub(seen.append)
    try:
        proxy = Hooks.start(io)
        proxy.on_stopped(stopped)
        proxy.tell("fail")
        hooks = seen.wait(
            lambda items: len([e for e in items if IHookFailed.providedBy(e)]) == 3
        )
    finally:
        unsubscribe_on_hub(seen.append)

    failed = [e for e in hooks if IHookFailed.providedBy(e)]
    assert all(isinstance(e, HookFailed) and e.proxy is proxy for e in failed)
    assert all(e.task_class is Hooks for e in failed)
    assert [(e.hook, type(e.error)) for e in failed] == [
        ("on_failure", KeyError),
        ("on_unbind", LookupError),
        ("on_stopped", ZeroDivisionError),
    ]
    logged = [r.getMessage() for r in task_errors()]
    assert any(m.startswith("on_failure of ") for m in logged)
    assert any(m.startswith("on_unbind of ") for m in logged)
    assert any(m.startswith("on_stopped callback ") for m in logged)


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
