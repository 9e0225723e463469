"""Stopping a task: stop() overtakes the queue, drain lets it empty first.

``proxy.stop()`` runs the task's ``shutdown_request()`` ahead of everything
still queued (by default it unbinds the task, killing the message being
handled with GreenletExit); the queued messages become dead letters.
``proxy.stop(drain=True)``, the same as telling ``geventio.PoisonPill()``,
stops the task only once the messages queued before it are handled.

Run it with ``python examples/stop_and_drain.py``. It prints::

    stop():           finished [] and 2 dead letter(s)
    stop(drain=True): finished ['job 1', 'job 2', 'job 3'], 0 dead letter(s)
"""

import gevent

import geventio


class Jobs(geventio.Task):
    def __init__(self, finished, seconds_per_job):
        super().__init__()
        self.finished = finished
        self.seconds = seconds_per_job

    def receive(self, message):
        if self.sender is not None:
            self.sender.tell("started")  # the first reply answers an ask
        gevent.sleep(self.seconds)  # the work itself, cooperatively
        self.finished.append(message)


def run(drain):
    finished = []
    with geventio.IOSystem("jobs", workers=1) as io:
        # Long jobs for stop(), so that it surely interrupts the first one.
        jobs = Jobs.start(io, finished, 0.01 if drain else 30)
        jobs.ask("job 1", timeout=5)  # returns once job 1 has started
        jobs.tell("job 2")
        jobs.tell("job 3")

        jobs.stop(drain=drain)
        jobs.join(timeout=5)  # until on_unbind has run
        return finished, io.dead_letters


def main():
    finished, dead = run(drain=False)
    print(f"stop():           finished {finished} and {dead} dead letter(s)")
    finished, dead = run(drain=True)
    print(f"stop(drain=True): finished {finished}, {dead} dead letter(s)")


if __name__ == "__main__":
    main()
