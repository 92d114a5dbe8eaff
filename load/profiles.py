"""Summarize a py-spy profile in collapsed-stack form (`--format raw`, as bench --profile writes).

    python -m load.profiles /tmp/prof/collector-batch-bench1234.txt [--top 15]

Prints each function's share of the samples: inclusive (the function or anything it
called was running) and self (the function itself was running).
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

from stack.servers import PROJECT_ROOT

FRAME = re.compile(r"^(?P<name>.*) \((?P<path>.*?)(?::\d+)?\)$")


def frame_name(frame: str) -> str:
    """'func (/…/site-packages/pkg/mod.py:12)' -> 'func (pkg/mod.py)'; project paths relative."""
    match = FRAME.match(frame)
    if match is None:
        return frame
    path = match["path"].split("site-packages/")[-1].removeprefix(f"{PROJECT_ROOT}/")
    return f"{match['name']} ({path})"


def shares(path: Path) -> tuple[int, Counter[str], Counter[str]]:
    """Return (samples, inclusive counts, self counts) per function."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        samples = int(count)
        total += samples
        frames = [frame_name(f) for f in stack.split(";") if f]
        for frame in set(frames):
            inclusive[frame] += samples
        own[frames[-1] if frames else "(no Python frame)"] += samples
    return total, inclusive, own


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m load.profiles", description=__doc__)
    parser.add_argument("profile", type=Path)
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args()
    total, inclusive, own = shares(args.profile)
    print(f"{total} samples")
    for title, counts in (("inclusive", inclusive), ("self", own)):
        print(f"-- {title}")
        for frame, samples in counts.most_common(args.top):
            print(f"{100 * samples / total:5.1f}%  {frame}")


if __name__ == "__main__":
    main()
