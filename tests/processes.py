"""Process helpers shared by the tests that start and kill real processes."""

from __future__ import annotations

from pathlib import Path


def live_group_members(group: int) -> list[int]:
    """Processes (not zombies) of process group ``group``, from /proc."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        state, process_group = fields[0], int(fields[2])
        if process_group == group and state not in ("Z", "X"):
            members.append(int(stat.parent.name))
    return members
