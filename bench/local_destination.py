"""Cost of never following links: ``LocalDestination`` writes against a path-based baseline
doing the same atomic write (temporary file, fsync, rename, folder fsync) by path, measured in
the same run, in alternating rounds (the best of each kept); prints ratios, never asserts.

    .venv/bin/python bench/local_destination.py                  # 2,000 files, 6 folders deep
    .venv/bin/python bench/local_destination.py --files 500 --depth 12
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import uuid
from pathlib import Path

from industrydata.lake import LocalDestination


def _path_based(root: Path, path: str, data: bytes) -> None:
    """The write before descriptors: the same steps by path (links followed)."""
    target = root.joinpath(*path.split("/"))
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".tmp-{target.name}-{uuid.uuid4().hex}")
    with open(temporary, "xb") as stream:
        stream.write(data)
        stream.flush()
        os.fsync(stream.fileno())
    os.replace(temporary, target)
    descriptor = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _seconds(write, root: Path, files: int, depth: int) -> float:  # type: ignore[no-untyped-def]
    folders = "/".join(f"level{index}" for index in range(depth))
    data = b"x" * 4096
    started = time.perf_counter()
    for index in range(files):
        write(root, f"{folders}/part-{index:05d}.csv", data)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--depth", type=int, default=6, help="folders below the root")
    parser.add_argument("--repeat", type=int, default=3, help="alternating rounds; best kept")
    arguments = parser.parse_args()
    baseline = walked = float("inf")
    with tempfile.TemporaryDirectory() as scratch:
        base = Path(scratch).resolve()
        for round in range(arguments.repeat):
            baseline = min(
                baseline,
                _seconds(_path_based, base / f"baseline{round}", arguments.files, arguments.depth),
            )
            walked = min(
                walked,
                _seconds(
                    lambda root, path, data: LocalDestination(root).write_bytes(path, data),
                    base / f"walked{round}",
                    arguments.files,
                    arguments.depth,
                ),
            )
    root_depth = len(base.parts) + arguments.depth
    print(f"{arguments.files} files of 4 KiB, {root_depth} folders from / to each")
    print(f"path-based baseline   {baseline:8.3f} s")
    print(f"LocalDestination      {walked:8.3f} s   ratio {walked / baseline:.2f}")


if __name__ == "__main__":
    main()
