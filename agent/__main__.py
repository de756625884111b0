"""`python -m agent join|list|create …`: the agent commands without the rest of `shoal`."""
from __future__ import annotations

import sys

from agent.cli import register
from shoal.flags import Parser, add_global_flags


def main(argv: list[str] | None = None) -> int:
    """Parse and run one agent command; its exit code."""
    parser = Parser(prog="shoal", description="Shoal agent commands")
    add_global_flags(parser)
    register(parser.add_subparsers(dest="command", required=True, metavar="COMMAND"))
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
