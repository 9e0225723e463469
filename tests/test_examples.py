"""Every program in ``examples/`` runs, finishes quickly and prints what its
docstring promises.

The documentation shows these files with ``literalinclude``, so what the
docs show is what runs here. Each example's module docstring ends with an
``It prints::`` block; the test compares the program's output with that
block, line by line. With ``GEVENTIO_TEST_MONKEY=1`` (``tox -e monkey``)
every example also runs after ``gevent.monkey.patch_all()``.
"""

import ast
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import geventio

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
DOCS = ROOT / "docs"
MONKEY = os.environ.get("GEVENTIO_TEST_MONKEY") == "1"

# Each example finishes in well under a second; this bound only stops a hung
# one from holding up the suite (pytest-timeout's 30 s would kill the run).
RUN_TIMEOUT = 20

# Examples whose output varies from run to run (addresses, thread ids):
# checked by a test of their own below instead of an "It prints::" block.
UNSTABLE_OUTPUT = {"dump_and_stats.py"}

# Pytest files meant to be run by pytest, not as programs.
PYTEST_EXAMPLES = {p.name for p in EXAMPLES.glob("test_*.py")}

PROGRAMS = sorted(
    p.name for p in EXAMPLES.glob("*.py") if p.name not in PYTEST_EXAMPLES
)


def _env():
    """The environment for a child interpreter: this checkout's geventio."""
    env = dict(os.environ)
    package_root = str(Path(geventio.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (package_root, env.get("PYTHONPATH")) if p
    )
    env.pop("GEVENTIO_TEST_MONKEY", None)
    return env


def _command(path, patched):
    if not patched:
        return [sys.executable, str(path)]
    # As a legacy service would: patch first, then run the program.
    code = (
        "from gevent import monkey; monkey.patch_all()\n"
        "import runpy, sys\n"
        f"sys.argv = [{str(path)!r}]\n"
        f"runpy.run_path({str(path)!r}, run_name='__main__')\n"
    )
    return [sys.executable, "-c", code]


def run_example(name, patched=False, args=()):
    path = EXAMPLES / name
    result = subprocess.run(
        [*_command(path, patched), *args],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        env=_env(),
        cwd=ROOT,
    )
    assert result.returncode == 0, f"{name} failed:\n{result.stdout}{result.stderr}"
    assert result.stderr == "", f"{name} wrote to stderr:\n{result.stderr}"
    return result.stdout


def promised_output(name):
    """The lines of the literal block after "It prints::" in the docstring."""
    docstring = ast.get_docstring(ast.parse((EXAMPLES / name).read_text()))
    assert docstring, f"{name} has no module docstring"
    _, found, after = docstring.partition("It prints::\n")
    assert found, f"{name}'s docstring has no 'It prints::' block"
    block = []
    for line in after.split("\n")[1:]:  # skip the blank line after "::"
        if line and not line.startswith(" "):
            break
        block.append(line)
    return textwrap.dedent("\n".join(block)).strip("\n").split("\n")


@pytest.mark.parametrize("name", sorted(set(PROGRAMS) - UNSTABLE_OUTPUT))
def test_example_prints_what_its_docstring_says(name):
    expected = promised_output(name)

    out = run_example(name, patched=MONKEY)

    assert out.rstrip("\n").split("\n") == expected


def test_dump_and_stats_example_shows_the_tasks_and_the_waiting_stack():
    out = run_example("dump_and_stats.py", patched=MONKEY)

    assert out.startswith("worker inspect-worker-0: 2 task(s), 1 message(s) queued\n")
    assert "<IOSystem 'inspect' running, 1 worker(s)>" in out
    assert re.search(r"task Sleeper 'sleeper' .*: mailbox 1, handling str", out)
    assert re.search(r"task Idle .*: mailbox 0, handling nothing", out)
    assert "gevent.sleep(10)  # suspended here when the dump is taken" in out


@pytest.mark.parametrize("name", sorted(PYTEST_EXAMPLES))
def test_pytest_example_passes_with_the_plugin(name):
    args = ["-p", "geventio.testing.plugin", "-p", "no:cacheprovider", "-q"]
    if MONKEY:
        args.append("--timeout-method=signal")
    args.append(str(EXAMPLES / name))
    code = f"import sys, pytest\nsys.exit(pytest.main({args!r}))\n"
    if MONKEY:
        code = "from gevent import monkey; monkey.patch_all()\n" + code

    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        env=_env(),
        cwd=ROOT,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"^\d+ passed in ", result.stdout, flags=re.M), result.stdout
    assert "failed" not in result.stdout and "error" not in result.stdout


def test_every_example_program_is_checked():
    """A new example needs an "It prints::" block or an entry above."""
    for name in PROGRAMS:
        if name not in UNSTABLE_OUTPUT:
            assert promised_output(name), name


def test_every_example_is_shown_in_the_docs_and_every_include_exists():
    included = set()
    for page in DOCS.rglob("*.rst"):
        for target in re.findall(
            r"^\.\. literalinclude:: (\S+)", page.read_text(), flags=re.M
        ):
            path = (page.parent / target).resolve()
            assert path.is_file(), f"{page.name} includes a missing {target}"
            included.add(path)

    missing = [p.name for p in EXAMPLES.glob("*.py") if p.resolve() not in included]

    assert missing == []


def test_quickstart_page_shows_the_quickstart_example():
    page = (DOCS / "quickstart.rst").read_text()

    assert ".. literalinclude:: ../examples/quickstart.py" in page
