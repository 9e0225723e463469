"""Monkey-patched programs: fresh interpreters that patch before importing.

The whole suite also runs patched (``tox -e monkey``); these tests pin down
what only a fresh process shows: import order, native threads, logging.
"""

import subprocess
import sys
import textwrap

import pytest


def _run_python(code, timeout=60):
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.splitlines()


@pytest.mark.timeout(90)
def test_importing_geventio_patches_nothing():
    out = _run_python(
        """
        import geventio, gevent.monkey
        print(gevent.monkey.is_anything_patched())
        """
    )

    assert out == ["False"]


@pytest.mark.timeout(90)
def test_after_patch_all_workers_are_native_threads_and_logging_works():
    out = _run_python(
        """
        from gevent import monkey; monkey.patch_all()
        import logging, os, sys, threading
        import geventio

        records = []
        class Keep(logging.Handler):
            def emit(self, record):
                records.append(record.getMessage())
        logging.getLogger("geventio").addHandler(Keep())
        logging.getLogger("geventio").setLevel(logging.DEBUG)

        class Ident(geventio.Task):
            def receive(self, message):
                if message == "fail":
                    raise RuntimeError("logged from a worker")
                self.sender.tell(threading.get_native_id())

        before = len(os.listdir("/proc/self/task"))
        with geventio.IOSystem("patched", workers=2) as io:
            print(len(os.listdir("/proc/self/task")) - before)
            a = Ident.start(io).ask("who", timeout=10)
            b = Ident.start(io).ask("who", timeout=10)
            print(len({a, b, threading.get_native_id()}))
            failing = Ident.start(io)
            try:
                failing.ask("fail", timeout=10)
            except RuntimeError as exc:
                print("ask got", exc)
        print(any("failed" in r for r in records))
        # A joined worker has finished its Python code; the OS may take a
        # moment more to reap the thread itself.
        from geventio import _native
        deadline = _native.monotonic() + 10
        def extra():
            return len(os.listdir("/proc/self/task")) - before
        while extra() > 0 and _native.monotonic() < deadline:
            _native.sleep(0.001)
        print(extra())
        """
    )

    # Two workers and one blocking monitor, all gone after shutdown.
    assert out == ["3", "3", "ask got logged from a worker", "True", "0"]


@pytest.mark.timeout(90)
def test_a_patched_main_thread_asks_cooperatively_while_its_greenlets_run():
    out = _run_python(
        """
        from gevent import monkey; monkey.patch_all()
        import gevent, time, geventio

        class Slow(geventio.Task):
            def receive(self, message):
                gevent.sleep(0.2)
                self.sender.tell("done")

        ticks = []
        def ticker():
            for _ in range(3):
                ticks.append(1)
                time.sleep(0.01)  # patched: cooperative

        with geventio.IOSystem("patched", workers=1) as io:
            g = gevent.spawn(ticker)
            print(Slow.start(io).ask("go", timeout=10))
            print(len(ticks))
        """
    )

    assert out == ["done", "3"]
