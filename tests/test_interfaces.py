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
