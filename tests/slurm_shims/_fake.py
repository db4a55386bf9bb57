"""What the fake SLURM commands in this directory share: the call log, and the fake nodes.

tests/test_slurm.py puts this directory first on PATH and runs deploy/slurm/sweep.sbatch
through `sbatch`. Every fake node of the allocation is this machine, on 127.0.0.1: `srun`
runs its command here, in a session of its own as a step on another node would be, and
`hostname --ip-address` answers 127.0.0.1. Each call is appended to $FAKE_SLURM_LOG as one
JSON line, so the test can check what the script asked for and in which order.
"""

from __future__ import annotations

import json
import os
import re
import time
from typing import Any


def record(command: str, argv: list[str], **extra: Any) -> None:
    """Append one call to the log the test reads (nothing when FAKE_SLURM_LOG is unset)."""
    path = os.environ.get("FAKE_SLURM_LOG")
    if not path:
        return
    entry = {"command": command, "argv": argv, "time": time.time(), "pid": os.getpid(), **extra}
    with open(path, "a") as log:
        log.write(json.dumps(entry) + "\n")


def expand_hostlist(hostlist: str) -> list[str]:
    """SLURM's compact host list, e.g. 'node[1-3,7],gpu01' -> node1 node2 node3 node7 gpu01."""
    names: list[str] = []
    for prefix, ranges, plain in re.findall(r"([^,\[]+)\[([^\]]+)\]|([^,\[\]]+)", hostlist):
        if plain:
            names.append(plain)
            continue
        for part in ranges.split(","):
            first, _, last = part.partition("-")
            width = len(first)
            for number in range(int(first), int(last or first) + 1):
                names.append(f"{prefix}{number:0{width}d}")
    return names
