"""``make bench``: run every benchmark script under tests/benchmarks and print their figures.

Select some with ``python -m tests.benchmarks import matching`` (names without the bench_ prefix).
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    here = Path(__file__).parent
    names = sorted(m.name for m in pkgutil.iter_modules([str(here)]) if m.name.startswith("bench_"))
    wanted = [f"bench_{a}" for a in argv] or names
    for name in wanted:
        if name not in names:
            print(f"unknown benchmark {name}; have: {', '.join(names)}", file=sys.stderr)
            return 2
        print(f"== {name} ==", flush=True)
        importlib.import_module(f"tests.benchmarks.{name}").main()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
