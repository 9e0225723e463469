"""Sphinx configuration for the geventio documentation.

Build with ``tox -e docs`` (warnings are errors, then the doctests), or
directly with ``sphinx-build -W -b html docs docs/_build/html`` and
``sphinx-build -W -b doctest docs docs/_build/doctest`` from a venv that
has the ``docs`` extra installed. The entry page is
``docs/_build/html/index.html``.
"""

import configparser
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

# Let autodoc import the package from this checkout even when it was not
# installed into the venv that runs Sphinx; _ext holds our own extension.
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE / "_ext"))

# One source for the version: the [metadata] section of setup.cfg.
_setup_cfg = configparser.ConfigParser()
_setup_cfg.read(ROOT / "setup.cfg", encoding="utf-8")

project = "geventio"
author = "the geventio developers"
copyright = "2026, the geventio developers"
release = _setup_cfg.get("metadata", "version", fallback="0.0.0")
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.intersphinx",
    "sphinx.ext.doctest",
    # Renders zope.interface declarations (geventio.interfaces, the event
    # interfaces), which autodoc alone shows as plain values.
    "zope_interfaces",
]

exclude_patterns = ["_build", "_ext"]

# Code samples are runnable files in examples/, shown with literalinclude
# and run by tests/test_examples.py; the few ``>>>`` samples are run by the
# doctest builder (tox -e docs). Both keep the docs honest.

# -- autodoc / napoleon ------------------------------------------------------

autodoc_member_order = "bysource"
autodoc_typehints = "description"
napoleon_google_docstring = True
napoleon_numpy_docstring = False

# -- intersphinx -------------------------------------------------------------

# Links into the Python and gevent docs need their object inventories, which
# Sphinx downloads at build time. Our build machines have no network beyond
# package registries, and a failed download is a warning, which -W turns
# into a failed build. So the mapping is only switched on when
# GEVENTIO_DOCS_INTERSPHINX=1 is set (do that where the network is open);
# offline builds simply leave such references as plain text.
#
# nitpicky mode (every unresolved reference is a warning) goes with it: with
# no inventories, references to gevent or the standard library cannot
# resolve, and the warnings would say nothing about our own docs.
_online = os.environ.get("GEVENTIO_DOCS_INTERSPHINX") == "1"
intersphinx_mapping = (
    {
        "python": ("https://docs.python.org/3", None),
        "gevent": ("https://www.gevent.org/", None),
    }
    if _online
    else {}
)
intersphinx_timeout = 5
nitpicky = _online
# Names that only appear in type annotations of private parameters or
# aliases; they have no page to link to.
nitpick_ignore = [
    ("py:class", "_Cell"),
    ("py:class", "_ReplyHandle"),
    ("py:class", "Setup"),
    ("py:class", "OnRestart"),
]

# -- HTML --------------------------------------------------------------------

try:
    import furo  # noqa: F401  (only probing whether the theme is installed)
except ImportError:
    html_theme = "alabaster"
else:
    html_theme = "furo"

html_title = f"geventio {release}"

# -- doctest -----------------------------------------------------------------

# Each doctest group starts from a fresh namespace with geventio imported.
doctest_global_setup = "import geventio"
