"""The `shoal` console script: manage, join, list, create, lab."""
from __future__ import annotations

import sys

from agent import cli as agent_cli
from lab import cli as lab_cli
from manager import cmd as manage_cmd
from shoal.flags import Parser, add_global_flags
from shoal.version import VERSION


def build_parser() -> Parser:
    """The whole command line; each subcommand registers its own flags."""
    parser = Parser(prog="shoal", description="Docker hosts as one Docker endpoint")
    parser.add_argument("-v", "--version", action="version", version=f"shoal version {VERSION}")
    add_global_flags(parser)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    manage_cmd.register(sub)
    agent_cli.register(sub)
    lab_cli.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point: parse, run the subcommand, return its exit code."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args) or 0
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
