"""How sure are serverbench's comparisons on this machine? A/A, A/B and the smallest difference
it can detect.

Three copies of the seed app on bjoern, under the quick-moderate load (as in issue 11):
  base    the seed app
  same    the same code under another name (A/A)
  slower  the seed app plus a busy-wait of --busy-us microseconds per request (A/B; 9 us is
          about 10 % of a request's cost here)

1. Paired: ONE run measures the three in the same shuffled rounds (--rounds, default 20). A
   trial draws --trial-rounds rounds (default 6) from them, again and again (--trials), and
   compares by round: A/A (base vs same) must say "no significant difference" in at least 95 %
   of trials; A/B (base vs slower) must say "slower" with an interval holding the true slowdown
   (the estimate from every round) in at least 90 %.
2. Separate runs: --separate-runs runs of base and as many of slower, each with the default
   run's 3 repeats, compared pairwise without pairing (what `compare a b` of two runs does):
   the A/A and A/B rates, and the drift between runs that pairing cancels.
3. The minimum detectable difference: the smallest slowdown, applied to recorded A/A data,
   that is detected in at least 80 % of trials, for both designs.

    .venv/bin/python benchmarks/precision.py [--rounds 20] [--separate-runs 6] [--out DIR]
    .venv/bin/python benchmarks/precision.py --reuse DIR     # recompute from recorded runs
"""

from __future__ import annotations

import argparse
import itertools
import math
import random
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path

from serverbench.results.inference import (
    SEPARATE_RUNS_DRIFT_PCT,
    Change,
    pair_by_round,
    paired_change,
    unpaired_change,
)
from serverbench.results.model import RunRecord
from serverbench.results.store import load

APPS_SOURCE = '''"""Three copies of the seed app for benchmarks/precision.py."""

import time

from flask import Flask, jsonify

BUSY_NS = {busy_ns}


def make():
    app = Flask(__name__)

    @app.route("/api/v2/<msisdn>", methods=["GET"])
    def get_status(msisdn):
        return jsonify({{"msisdn": msisdn, "status": "ok"}})

    return app


base = make()
same = make()
_slow = make()


def slower(environ, start_response):
    end = time.perf_counter_ns() + BUSY_NS
    while time.perf_counter_ns() < end:
        pass
    return _slow(environ, start_response)
'''
APPS = {"base": "precision_apps:base", "same": "precision_apps:same"}
SLOWER = "precision_apps:slower"
POWER = 0.80  # the share of trials a detectable difference must be detected in
PROFILE = "quick-moderate"


def serverbench_run(out: Path, app_dir: Path, apps: Sequence[str], repeats: int) -> Path:
    argv = [sys.executable, "-m", "serverbench", "run", "--stack", "bjoern", "--profile", PROFILE]
    for app in apps:
        argv += ["--app", app]
    argv += ["--app-dir", str(app_dir), "--path", "/api/v2/{msisdn}"]
    argv += ["--expect-json", '{"msisdn": "{msisdn}", "status": "ok"}']
    argv += ["--repeats", str(repeats), "--no-references", "--out", str(out)]
    child = subprocess.Popen(argv, stdout=subprocess.DEVNULL)
    try:
        code = child.wait()
    except KeyboardInterrupt:
        # serverbench stops every server it started on SIGINT; give it the time to
        child.send_signal(signal.SIGINT)
        child.wait(timeout=60)
        raise
    if code != 0:
        raise SystemExit(f"serverbench run failed with exit code {code}: {' '.join(argv)}")
    return out / "results.json"


def rps(run: RunRecord) -> float:
    return run.measurement.requests_per_sec if run.measurement else math.nan


def per_cpu_s(run: RunRecord) -> float:
    """Good responses per CPU-second of the server: what CPU contention changes least."""
    cpu_s = sum(c.cpu_seconds for c in run.usage.server.components) if run.usage else 0.0
    good = run.measurement.good_responses if run.measurement else 0
    return good / cpu_s if cpu_s > 0 else math.nan


METRICS: dict[str, Callable[[RunRecord], float]] = {
    "req/s": rps,
    "good responses per server CPU-second": per_cpu_s,
}


def by_round(
    results: Path, app: str, quiet_only: bool = False, metric: str = "req/s"
) -> dict[int, float]:
    """A metric per round; `quiet_only` keeps the windows the noise probe found undisturbed."""
    return {
        run.round: METRICS[metric](run)
        for run in load(results).runs
        if run.app == app
        and run.status == "ok"
        and not (quiet_only and run.noise is not None and run.noise.disturbances)
    }


def job_seconds(results: Path) -> float:
    """Median wall time of one job, start to start (start-up, primer, warm-up, load, checks)."""
    starts = [
        datetime.fromisoformat(run.started_at) for run in load(results).runs if run.started_at
    ]
    spans = [(b - a).total_seconds() for a, b in itertools.pairwise(starts)]
    return statistics.median(spans) if spans else math.nan


def significant(change: Change | None) -> bool:
    return change is not None and change.significant


def slower_beyond(change: Change | None) -> bool:
    return change is not None and change.significant and change.ratio < 1


def rate(hits: int, trials: int) -> str:
    return f"{hits}/{trials} = {hits / trials * 100:.1f} %"


def paired_trials(
    a: dict[int, float],
    b: dict[int, float],
    rounds: int,
    trials: int,
    rng: random.Random,
    *,
    with_replacement: bool = False,
) -> list[Change]:
    """Trials of `rounds` rounds each, compared by round; drawn with replacement, a trial may
    be longer than the recording."""
    common = sorted(a.keys() & b.keys())
    found = []
    for _ in range(trials):
        chosen = rng.choices(common, k=rounds) if with_replacement else rng.sample(common, rounds)
        change = paired_change([a[r] for r in chosen], [b[r] for r in chosen])
        if change is not None:
            found.append(change)
    return found


def rounds_needed(
    base: dict[int, float],
    same: dict[int, float],
    slow: dict[int, float],
    truth: Change,
    trials: int,
    seed: int,
    per_job_s: float,
) -> None:
    """How long a paired comparison must run here to meet the goals: A/A quiet in >= 95 %,
    A/B (the real slower app, and the same app made exactly 10 % slower) found in >= 90 %.

    Drawing with replacement samples the recorded rounds as they are, so the A/A pairs are
    first centred (their median difference removed): the synthetic A/A then has a true ratio
    of exactly 1 and the synthetic A/B of exactly 0.9, with the round-to-round noise measured."""
    common = sorted(base.keys() & same.keys())
    offset = statistics.median(math.log(same[r] / base[r]) for r in common)
    null = {r: same[r] * math.exp(-offset) for r in common}
    ten_pct_slower = {r: v * 0.9 for r, v in null.items()}
    print(f"  trials of more rounds (drawn with replacement from the {len(base)} recorded):")
    print(f"  {'rounds':>6} {'time':>7} {'A/A quiet':>10} {'A/B real':>9} {'A/B 10 %':>9}")
    for rounds in (6, 10, 15, 20, 30, 40):
        rng = random.Random(seed)
        aa = paired_trials(base, null, rounds, trials, rng, with_replacement=True)
        ab = paired_trials(base, slow, rounds, trials, rng, with_replacement=True)
        ab10 = paired_trials(base, ten_pct_slower, rounds, trials, rng, with_replacement=True)
        quiet = sum(not c.significant for c in aa) / len(aa)
        found = sum(slower_beyond(c) and c.low <= truth.ratio <= c.high for c in ab) / len(ab)
        found10 = sum(slower_beyond(c) and c.low <= 0.9 <= c.high for c in ab10) / len(ab10)
        minutes = 2 * rounds * per_job_s / 60
        print(f"  {rounds:>6} {minutes:>5.1f} m {quiet:>9.0%} {found:>9.0%} {found10:>9.0%}")


def _pct(value: int | None, searched: int) -> str:
    return f"{value} %" if value is not None else f"above {searched} % (searched up to there)"


def minimum_detectable(detect_rate: dict[int, float]) -> int | None:
    return next((d for d, share in sorted(detect_rate.items()) if share >= POWER), None)


def paired_mdd(
    a: dict[int, float], b: dict[int, float], rounds: int, trials: int, seed: int
) -> tuple[int | None, dict[int, float]]:
    shares = {}
    for pct in range(1, 41):
        rng = random.Random(seed)
        scaled = {r: v * (1 - pct / 100) for r, v in b.items()}
        changes = paired_trials(a, scaled, rounds, trials, rng)
        shares[pct] = sum(slower_beyond(c) for c in changes) / len(changes)
        if shares[pct] >= POWER:
            break
    return minimum_detectable(shares), shares


def unpaired_mdd(runs: Sequence[list[float]]) -> tuple[int | None, dict[int, float]]:
    shares = {}
    pairs = [(x, y) for x, y in itertools.permutations(range(len(runs)), 2)]
    for pct in range(1, 61):
        hits = 0
        for x, y in pairs:
            change = unpaired_change(runs[x], [v * (1 - pct / 100) for v in runs[y]])
            hits += slower_beyond(change)
        shares[pct] = hits / len(pairs)
        if shares[pct] >= POWER:
            break
    return minimum_detectable(shares), shares


def drift_between_runs_pct(runs: Sequence[list[float]]) -> float:
    """One-way random effects on log values: the standard deviation of a run's level."""
    logs = [[math.log(v) for v in run] for run in runs if len(run) >= 2]
    if len(logs) < 2:
        return math.nan
    n = statistics.mean(len(run) for run in logs)
    within = statistics.mean(statistics.variance(run) for run in logs)
    between = statistics.variance([statistics.mean(run) for run in logs])
    return (math.exp(math.sqrt(max(0.0, between - within / n))) - 1) * 100


def paired_report(
    paired: Path, quiet_only: bool, metric: str, k: int, trials: int, seed: int, per_job_s: float
) -> None:
    base = by_round(paired, APPS["base"], quiet_only, metric)
    same = by_round(paired, APPS["same"], quiet_only, metric)
    slow = by_round(paired, SLOWER, quiet_only, metric)
    which = "rounds whose windows the noise probe found undisturbed" if quiet_only else "rounds"
    both_aa, both_ab = len(base.keys() & same.keys()), len(base.keys() & slow.keys())
    print(f"\n{metric}, paired, all {which} (A/A {both_aa}, A/B {both_ab}):")
    if min(both_aa, both_ab) < k:
        print(f"  fewer than {k} such rounds: no trials")
        return
    print(f"  base: {', '.join(f'{base[r]:,.0f}' for r in sorted(base))}")
    truth = paired_change(*pair_by_round(base, slow))
    assert truth is not None
    print(
        f"  true slowdown (every such round, paired): {truth.change_pct:+.1f} % "
        f"(CI {truth.low_pct:+.1f} to {truth.high_pct:+.1f} %)"
    )
    rng = random.Random(seed)
    aa = paired_trials(base, same, k, trials, rng)
    ab = paired_trials(base, slow, k, trials, rng)
    aa_quiet = sum(not c.significant for c in aa)
    ab_found = sum(slower_beyond(c) and c.low <= truth.ratio <= c.high for c in ab)
    print(f"  trials of {k} rounds ({2 * k} jobs, about {2 * k * per_job_s:.0f} s):")
    print(f"  A/A no significant difference: {rate(aa_quiet, len(aa))} (goal >= 95 %)")
    print(f"  A/B slower, CI holds the true slowdown: {rate(ab_found, len(ab))} (goal >= 90 %)")
    mdd, _ = paired_mdd(base, same, k, min(trials, 500), seed)
    print(f"  minimum detectable difference (detected in >= {POWER:.0%}): {_pct(mdd, 40)}")
    rounds_needed(base, same, slow, truth, min(trials, 1000), seed, per_job_s)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--trial-rounds", type=int, default=6)
    parser.add_argument("--trials", type=int, default=2000)
    parser.add_argument("--separate-runs", type=int, default=6)
    parser.add_argument("--busy-us", type=float, default=9.0)
    parser.add_argument("--out", type=Path, default=Path("serverbench-results/precision"))
    parser.add_argument("--reuse", type=Path, help="a folder this script wrote: recompute only")
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    out = args.reuse or args.out / datetime.now().strftime("%Y%m%d-%H%M%S")
    app_dir = out / "apps"
    started = time.monotonic()
    if args.reuse is None:
        app_dir.mkdir(parents=True)
        (app_dir / "precision_apps.py").write_text(
            APPS_SOURCE.format(busy_ns=int(args.busy_us * 1000))
        )
        print(f"paired: one run, {args.rounds} rounds of base, same and slower -> {out}")
        serverbench_run(out / "paired", app_dir, [*APPS.values(), SLOWER], args.rounds)
        for i in range(args.separate_runs):
            for name, app in (("base", APPS["base"]), ("slower", SLOWER)):
                print(f"separate run {i + 1}/{args.separate_runs}: {name}")
                serverbench_run(out / f"separate-{name}-{i + 1}", app_dir, [app], 3)
    paired = out / "paired" / "results.json"
    per_job_s = job_seconds(paired)
    print(f"\nmeasured in {time.monotonic() - started:.0f} s; one job takes {per_job_s:.1f} s")
    for metric in METRICS:
        for quiet_only in (False, True):
            paired_report(
                paired, quiet_only, metric, args.trial_rounds, args.trials, args.seed, per_job_s
            )

    runs_base = [
        list(by_round(out / f"separate-base-{i + 1}" / "results.json", APPS["base"]).values())
        for i in range(args.separate_runs)
    ]
    runs_slow = [
        list(by_round(out / f"separate-slower-{i + 1}" / "results.json", SLOWER).values())
        for i in range(args.separate_runs)
    ]
    if all(runs_base) and all(runs_slow) and len(runs_base) >= 2:
        drift = drift_between_runs_pct(runs_base + runs_slow)
        print("\nseparate runs, 3 repeats each (the default run's design, what `compare` sees):")
        print(f"  drift of a run's level between runs (sd): {drift:.1f} %")
        pairs_aa = list(itertools.combinations(runs_base, 2))
        for allowed in (SEPARATE_RUNS_DRIFT_PCT, drift):
            quiet = sum(
                not significant(unpaired_change(x, y, drift_pct=allowed)) for x, y in pairs_aa
            )
            found = sum(
                slower_beyond(unpaired_change(x, y, drift_pct=allowed))
                for x in runs_base
                for y in runs_slow
            )
            print(f"  --run-drift {allowed:.1f}:")
            print(f"    A/A no significant difference: {rate(quiet, len(pairs_aa))}")
            print(f"    A/B slower: {rate(found, len(runs_base) * len(runs_slow))}")
        mdd_unpaired, _ = unpaired_mdd(runs_base)
        print(
            f"  minimum detectable difference (detected in >= {POWER:.0%}, "
            f"--run-drift {SEPARATE_RUNS_DRIFT_PCT:g}): {_pct(mdd_unpaired, 60)}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
