"""Does a capacity figure repeat within the spread its report states?

Runs `serverbench capacity` twice back to back with the same arguments (by default three
stacks, three searches each: `--repeats` is what states a spread), then compares the two runs
as `serverbench compare` does: per stack, each run's median capacity, the change from run A
to run B, what compare allows a change by noise alone (the larger of the search's resolution
and the spread each run's searches measured, combined with the drift of a run's level between
separate runs, `--run-drift`), and the ratio of the change to that allowance. The goal: every
ratio at most 1, i.e. two runs agree within the run-to-run spread the tool states.

    .venv/bin/python benchmarks/capacity_repeatability.py [--out DIR] [-- CAPACITY ARGS...]
    .venv/bin/python benchmarks/capacity_repeatability.py --results A.json B.json

About 16 minutes with the default arguments on the 2-CPU VM. `--results` compares two results
files already measured (e.g. with other arguments) without measuring again.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from serverbench.report.capacity_compare import compare_capacity, figure_text
from serverbench.results.store import load

DEFAULT_ARGS = [
    "--slo", "p99=100ms", "--repeats", "3", "--step-duration", "2", "--warmup", "1",
    "--stack", "uvicorn,bjoern,gunicorn",
]  # fmt: skip
SERVERBENCH = Path(sys.executable).with_name("serverbench")


def measure(out: Path, arguments: list[str]) -> Path:
    """One `serverbench capacity` run into `out` (its console output in `out`.log); its
    results file."""
    log = out.with_suffix(".log")
    print(f"measuring: serverbench capacity {' '.join(arguments)} --out {out} (log: {log})")
    out.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as sink:
        subprocess.run(
            [str(SERVERBENCH), "capacity", *arguments, "--out", str(out)],
            check=True,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    return out / "results.json"


def report(a_path: Path, b_path: Path) -> int:
    a, b = load(a_path), load(b_path)
    comparison = compare_capacity(
        a.capacity.searches if a.capacity else [], b.capacity.searches if b.capacity else []
    )
    print(f"A: {a_path}\nB: {b_path}")
    print(f"{'stack':<12} {'A':<50} {'B':<50} {'change':>8} {'allowed':>8} {'ratio':>6}")
    worst = 0.0
    for delta in comparison.deltas:
        change = delta.change_pct
        ratio = abs(change) / delta.noise_pct if change is not None else None
        worst = max(worst, ratio or 0.0)
        print(
            f"{delta.a.stack:<12} {figure_text(delta.a):<50} {figure_text(delta.b):<50} "
            + ("       -" if change is None else f"{change:+7.1f}%")
            + f" {delta.noise_pct:7.0f}%"
            + ("      -" if ratio is None else f" {ratio:6.2f}")
        )
    verdict = "within" if worst <= 1 else "BEYOND"
    print(f"largest |change| / allowed: {worst:.2f} ({verdict} what compare allows)")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="keep both runs here (default: a temp dir)")
    parser.add_argument("--results", nargs=2, type=Path, metavar=("A", "B"))
    parser.add_argument("capacity_args", nargs="*", help="after --: serverbench capacity's")
    args = parser.parse_args()
    if args.results:
        return report(*args.results)
    arguments = args.capacity_args or DEFAULT_ARGS
    with tempfile.TemporaryDirectory(prefix="capacity-repeatability-") as tmp:
        root = args.out or Path(tmp)
        first = measure(root / "A", arguments)
        second = measure(root / "B", arguments)
        return report(first, second)


if __name__ == "__main__":
    sys.exit(main())
