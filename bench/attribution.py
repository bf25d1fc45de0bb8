"""Benchmark: closedloop's exact Markov vs channelattribution's simulated one, plus heuristics.

One command: ``.venv/bin/python bench/attribution.py [--journeys N] [--repeat R]``.  It writes a CSV of
N un-aggregated journeys (one row each) over 12 channels into a temp dir, then runs, each as a
whole child process from reading the CSV to printing results:

1. channelattribution ``markov_model`` order 1 (pandas read_csv + simulation);
2. ``closedloop attribute PATHS --model markov --format json`` exactly as a user types it: the
   environment's ``closedloop`` console script as a whole process (``markov`` is order 1 by default);
3. all heuristic models of closedloop over the same file (compute time timed inside).

The children run ``--repeat`` times, interleaved, because the machine may be shared: it prints
best and median wall times, their ratios by wall time and by CPU time (user + system; on a machine
shared with other work the wall clock measures the neighbours too, CPU time much less so; wait4
counts any forked reader workers in), peak RSS per child (``os.wait4``),
per-channel credits of both and their differences, and checks closedloop against a dense numpy
solve of the same absorbing chain.  channelattribution (GPL-3) is a benchmark-only extra, never
imported by closedloop itself; without it (or pandas) the benchmark says so, runs closedloop's
side alone and exits 0.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

CHANNELS = (
    "paid_search", "organic_search", "direct", "email", "paid_social", "organic_social",
    "display", "referral", "affiliate", "video", "webinar", "events",
)  # fmt: skip

CHANNELATTRIBUTION_SCRIPT = """
import json, sys, time
import pandas as pd
import ChannelAttribution as ca
data = pd.read_csv(sys.argv[1])
result = ca.markov_model(data, "path", "total_conversions", var_value="total_conversion_value",
                         var_null="total_null", order=1, sep=">", nsim_start=float(sys.argv[2]),
                         verbose=False, flg_pro=False)
print(json.dumps({str(row.channel_name): [float(row.total_conversions),
                  float(row.total_conversion_value)] for row in result.itertuples()}))
"""

HEURISTICS_SCRIPT = """
import json, sys, time
from pathlib import Path
from closedloop.config.names import HEURISTIC_MODEL_NAMES
from closedloop.files.pathfile import read_path_file
from closedloop.attribution.registry import channel_credits
from closedloop.config.attribution import AttributionConfig
config = AttributionConfig()
started = time.perf_counter()
batch = read_path_file(Path(sys.argv[1]))
read = time.perf_counter() - started
started = time.perf_counter()
totals = {name: channel_credits(name, batch, config).conversions.sum()
          for name in HEURISTIC_MODEL_NAMES}
compute = time.perf_counter() - started
print(json.dumps({"read_s": read, "compute_s": compute, "models": len(totals),
                  "unique_paths": batch.path_count}))
"""


def generate(file: Path, journeys: int, seed: int) -> None:
    """Journeys with Zipf-like channel mix, lengths 1..16 and channel-dependent conversion."""
    rng = np.random.default_rng(seed)
    popularity = 1.0 / np.arange(1, len(CHANNELS) + 1) ** 0.8
    popularity /= popularity.sum()
    lift = rng.normal(0.0, 0.6, len(CHANNELS))
    lengths = np.minimum(1 + rng.geometric(0.3, journeys) - 1, 16)
    codes = rng.choice(len(CHANNELS), size=int(lengths.sum()), p=popularity)
    path_of = np.repeat(np.arange(journeys), lengths)
    score = -2.5 + np.bincount(path_of, weights=lift[codes], minlength=journeys) / np.sqrt(lengths)
    converted = rng.random(journeys) < 1.0 / (1.0 + np.exp(-score))
    value = np.where(converted, np.round(rng.lognormal(5.0, 0.8, journeys), 2), 0.0)
    starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
    names = np.array(CHANNELS)
    with file.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "total_conversions", "total_conversion_value", "total_null"])
        for index in range(journeys):
            start, length = starts[index], lengths[index]
            conversion = int(converted[index])
            writer.writerow(
                [
                    " > ".join(names[codes[start : start + length]]),
                    conversion,
                    value[index] if conversion else 0,
                    1 - conversion,
                ]
            )


@dataclass(frozen=True)
class Run:
    wall_s: float
    cpu_s: float  # user + system of the child and of the workers it waited for
    peak_rss_mb: float
    output: str


def run_child(arguments: list[str]) -> Run:
    """Wall and CPU seconds, peak RSS and stdout of one child process."""
    started = time.perf_counter()
    with tempfile.TemporaryFile() as output:
        process = subprocess.Popen(arguments, stdout=output, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(process.pid, 0)
        elapsed = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        error = process.stderr.read().decode() if process.stderr else ""
        if process.returncode != 0:
            raise SystemExit(f"{arguments[:3]} failed ({process.returncode}):\n{error}")
        output.seek(0)
        text = output.read().decode()
    return Run(elapsed, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024.0, text)


def channelattribution_missing() -> str | None:
    """Why the reference cannot run here, or ``None``: it is an optional, benchmark-only extra."""
    for module in ("ChannelAttribution", "pandas"):
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed"
    return None


def dense_markov_credits(file: Path) -> dict[str, float]:
    """Independent check: order-1 removal effects by dense numpy solves, no closedloop code."""
    index = {name: position + 1 for position, name in enumerate(CHANNELS)}
    size = len(CHANNELS) + 3  # start, channels, conversion, null
    conversion, null = size - 2, size - 1
    counts = np.zeros((size, size))
    total = 0.0
    with file.open(newline="") as handle:
        for row in csv.DictReader(handle):
            states = [0] + [index[name.strip()] for name in row["path"].split(">")]
            weight = float(row["total_conversions"]) + float(row["total_null"])
            for before, after in itertools.pairwise(states):
                counts[before, after] += weight
            counts[states[-1], conversion] += float(row["total_conversions"])
            counts[states[-1], null] += float(row["total_null"])
            total += float(row["total_conversions"])
    transient = size - 2
    probability = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1e-300)

    def p_conversion(removed: int | None) -> float:
        keep = [state for state in range(transient) if state != removed]
        q = probability[np.ix_(keep, keep)]
        b = probability[keep, conversion]
        return float(np.linalg.solve(np.eye(len(keep)) - q, b)[0])

    base = p_conversion(None)
    effects = {name: 1.0 - p_conversion(code) / base for name, code in index.items()}
    effect_sum = sum(effects.values())
    return {name: total * effect / effect_sum for name, effect in effects.items()}


def help_times(closedloop: Path, runs: int) -> None:
    """Median wall seconds of the help screens, the start-up cost of every command."""
    for arguments in (["--help"], ["attribute", "--help"]):
        walls = [run_child([str(closedloop), *arguments]).wall_s for _ in range(runs)]
        print(
            f"closedloop {' '.join(arguments)}: median {statistics.median(walls):.3f} s, "
            f"best {min(walls):.3f} s over {runs} runs (target < 0.3 s)"
        )


def summary(runs: list[Run]) -> str:
    walls = [run.wall_s for run in runs]
    cpus = [run.cpu_s for run in runs]
    return (
        f"best {min(walls):.2f} s, median {statistics.median(walls):.2f} s wall; "
        f"median CPU {statistics.median(cpus):.2f} s; peak RSS {max(r.peak_rss_mb for r in runs):.0f} MB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--journeys", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--nsim-start", type=float, default=1e5)
    parser.add_argument("--repeat", type=int, default=5, help="Runs of each child, interleaved")
    args = parser.parse_args()
    python = sys.executable
    closedloop_script = Path(python).parent / "closedloop"
    if not closedloop_script.exists():
        raise SystemExit(f"{closedloop_script} does not exist: pip install -e . into this Python's environment")
    missing = channelattribution_missing()
    if missing:
        print(
            f"note: {missing}, so channelattribution's side is skipped; it is a benchmark-only "
            f'extra: pip install -e ".[bench]"'
        )
    help_times(closedloop_script, max(args.repeat, 7))
    with tempfile.TemporaryDirectory() as directory:
        file = Path(directory) / "paths.csv"
        started = time.perf_counter()
        generate(file, args.journeys, args.seed)
        size_mb = file.stat().st_size / 1e6
        print(
            f"generated {args.journeys:,} journeys, {len(CHANNELS)} channels, "
            f"{size_mb:.1f} MB in {time.perf_counter() - started:.1f} s"
        )
        commands = {
            "ca": [python, "-c", CHANNELATTRIBUTION_SCRIPT, str(file), str(args.nsim_start)],
            "cl": [str(closedloop_script), "attribute", str(file), "--model", "markov", "--format", "json"],
            "heuristics": [python, "-c", HEURISTICS_SCRIPT, str(file)],
        }  # fmt: skip
        if missing:
            del commands["ca"]
        runs: dict[str, list[Run]] = {name: [] for name in commands}
        for _ in range(max(args.repeat, 1)):
            for name, command in commands.items():
                runs[name].append(run_child(command))
        exact = dense_markov_credits(file)
    closedloop = {
        name: figures["conversions"] for name, figures in json.loads(runs["cl"][0].output)["channels"].items()
    }
    heuristics = [json.loads(run.output) for run in runs["heuristics"]]
    print(
        f"\n{args.repeat} interleaved runs of each child, each a whole process from start to exit; "
        "CPU includes forked workers"
    )
    ca: dict[str, float] = {}
    if "ca" in runs:
        ca_json = runs["ca"][0].output[runs["ca"][0].output.index("{") :]
        ca = {name: figures[0] for name, figures in json.loads(ca_json).items()}
        print(f"channelattribution markov order 1 (nsim_start={args.nsim_start:g}): {summary(runs['ca'])}")
    print(f"closedloop attribute PATHS --model markov --format json (exact, order 1): {summary(runs['cl'])}")
    if "ca" in runs:
        best = min(r.wall_s for r in runs["cl"]) / min(r.wall_s for r in runs["ca"])
        median = statistics.median(r.wall_s for r in runs["cl"]) / statistics.median(r.wall_s for r in runs["ca"])
        pairs = sorted(c.wall_s / a.wall_s for c, a in zip(runs["cl"], runs["ca"], strict=True))
        cpu = statistics.median(r.cpu_s for r in runs["cl"]) / statistics.median(r.cpu_s for r in runs["ca"])
        print(
            f"ratio closedloop / channelattribution (target <= 0.25): wall median/median {median:.3f}, "
            f"best/best {best:.3f}, per interleaved pair {min(pairs):.3f}..{max(pairs):.3f}; "
            f"CPU (user+sys) median/median {cpu:.3f}"
        )
        print(
            f"load average while running: {' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} cores "
            "(wall times include waiting for other processes; CPU times do not)"
        )
    compute = [h["compute_s"] for h in heuristics]
    print(
        f"heuristics ({heuristics[0]['models']} models, target < 5 s): compute best {min(compute):.2f} s, "
        f"median {statistics.median(compute):.2f} s; read median "
        f"{statistics.median(h['read_s'] for h in heuristics):.2f} s; whole process: "
        f"{summary(runs['heuristics'])}; {heuristics[0]['unique_paths']:,} unique paths"
    )
    print(f"\n{'channel':<16}{'exact (dense)':>15}{'closedloop':>13}{'rel.err':>10}{'chanattr':>12}{'CA - exact':>12}")
    worst = 0.0
    for name in CHANNELS:
        error = abs(closedloop[name] - exact[name]) / max(exact[name], 1e-12)
        worst = max(worst, error)
        if ca:
            difference = f"{(ca.get(name, 0.0) - exact[name]) / max(exact[name], 1e-12):>+11.2%}"
            theirs = f"{ca.get(name, 0.0):>12.2f}"
        else:
            difference, theirs = f"{'-':>12}", f"{'-':>12}"
        print(f"{name:<16}{exact[name]:>15.2f}{closedloop[name]:>13.2f}{error:>10.1e}{theirs}{difference}")
    print(f"\nworst closedloop relative error vs dense solve: {worst:.1e} (target <= 0.5%)")


if __name__ == "__main__":
    main()
