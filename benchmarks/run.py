"""Run geventio's benchmark suite from a checkout.

    python benchmarks/run.py [--quick | --smoke] [--only a,c] [--json FILE]

The same as ``python -m geventio bench`` with an installed geventio; the
suite itself lives in ``geventio/_bench/`` so that the installed package
carries it. See benchmarks/README.md.
"""

import os
import sys

# Import the geventio of this checkout, whatever else is installed.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from geventio._cli import main

if __name__ == "__main__":
    raise SystemExit(main(["bench", *sys.argv[1:]]))
