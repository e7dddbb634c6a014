"""The ``wildid`` command: no arguments opens the desktop app; subcommands run the core headless.

Exit codes: 0 success, 1 the command ran but achieved nothing (e.g. no photo imported),
2 a user-facing error (bad catalog, missing model...), 130 interrupted with Ctrl-C.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from pathlib import Path

from wildid import __version__
from wildid.errors import WildIdError
from wildid.paths import default_catalog_dir

# Each module registers its subcommands; later modules (matching, sync...) add themselves here.
COMMAND_MODULES = [
    "wildid.cli.catalog_commands",
    "wildid.cli.engine_commands",
    "wildid.cli.review_commands",
]


def build_parser() -> argparse.ArgumentParser:
    help_text = f"catalog folder (default: {default_catalog_dir()})"
    # --catalog works before or after the command; SUPPRESS keeps a subcommand's parser from
    # overwriting a value given before the command with its default.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--catalog", type=Path, default=argparse.SUPPRESS, metavar="PATH",
                        help=help_text)
    parser = argparse.ArgumentParser(
        prog="wildid",
        description="Photo-identification of individual animals. Without a command, opens the "
                    "desktop app.")
    parser.add_argument("--catalog", type=Path, default=None, metavar="PATH", help=help_text)
    parser.add_argument("--version", action="version", version=f"wildid {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log details to stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        module.register(sub, common)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if args.catalog is None:
        args.catalog = default_catalog_dir()
    if args.command is None:
        return _open_gui(parser, args)
    try:
        rc = int(args.func(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, inside the handler below, not at exit
        return rc
    except WildIdError as exc:
        print(f"wildid: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\nwildid: interrupted; work finished so far is saved", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader went away (`wildid photos --json | head`): not an error worth a traceback.
        # Point stdout at devnull so the interpreter's own flush at exit does not raise again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141


def _open_gui(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    try:
        gui = importlib.import_module("wildid.gui.app")
    except ModuleNotFoundError as exc:
        if exc.name not in ("wildid.gui", "wildid.gui.app"):
            raise
        parser.print_help()
        return 0
    return int(gui.run(args.catalog))
