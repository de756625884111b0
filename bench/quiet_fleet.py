"""Run the shared simulated fleet (`shared/tools/simfleet.py`) with Python's garbage collector off.

simfleet is one Python process holding 150,000 containers at 5,000 engines: its own collections
paused every one of its engines for up to 0.6 s (measured with gc callbacks while a manager ran
create+start through it), a pause no dockerd has. It lands on whichever call is running and hits
every manager measured alike, but it is the slowest call of a manager that answers in 5-10 ms.
With the collector off the simulated engines answer in a few ms throughout; they are freed at
the end of the run anyway.

    python -m bench.quiet_fleet PATH/simfleet.py [simfleet's arguments]
"""
from __future__ import annotations

import gc
import runpy
import sys


def main() -> None:
    gc.disable()
    sys.argv = sys.argv[1:]
    runpy.run_path(sys.argv[0], run_name="__main__")


if __name__ == "__main__":
    main()
