"""Print what a workflow run cost: core-hours by rule, the critical path, and the wall time it took.

    python scripts/study_time.py                       # from the repository root, after `snakemake ...`
    python scripts/study_time.py --since 2026-12-06T18:00 --top 10
    python scripts/study_time.py --csv results/tables/study_time.csv   # also as a table (rule snapshot)

Reads two records a Snakemake run leaves behind:

* ``results/benchmarks/**/*.tsv``: every rule's ``benchmark:`` file, one per job (columns ``s``, the
  job's wall time [s]; ``cpu_time``, user + system CPU time of the job's processes [s]; ``max_rss``
  [MB]; ...). The **core-hours** of a rule are what its jobs held: the sum of wall time x threads
  (every rule runs 1 thread, train and search_trial ``training.torch_threads``, default 1: say
  ``--threads train=4`` otherwise). The measured ``cpu_time`` is printed beside them as cpu-h, but it
  undercounts: Snakemake samples the processes every 30 s, so the CPU a job used after its last sample
  (all of it, for a job shorter than that) is missing.
* ``.snakemake/metadata/``: Snakemake's record of the job that made each output file (rule, input
  files, log files, start and end time [Unix s]). It names the rule of each benchmark file (matched
  through the job's log, ``results/logs/X.log`` <-> ``results/benchmarks/X.tsv``, the convention of
  every rule in workflow/rules/), gives the DAG (job B depends on job A when one of B's inputs is
  one of A's outputs) and the start and end times.

The **critical path** is the longest chain of jobs through that DAG, each job weighted by its wall
time: no number of cores could run the study in less time. The **wall time** is from the first
job's start to the last job's end. Metadata holds the newest job of each output only, so a run
resumed or partly rerun spans several sittings; ``--since`` keeps the jobs started after a time.
Without metadata (another working directory, a cleaned ``.snakemake``) the jobs are the benchmark
files, grouped by their folder, timed by the files' modification times (written when the job
ended), and there is no critical path.
"""

from __future__ import annotations

import argparse
import base64
import csv
import json
import math
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path


@dataclass
class Job:
    """One job of the run: from its metadata and, if found, its benchmark file."""

    rule: str
    start: float  #: [Unix s]
    end: float  #: [Unix s]
    outputs: set[str] = field(default_factory=set)
    inputs: set[str] = field(default_factory=set)
    logs: tuple[str, ...] = ()
    threads: int = 1
    wall_s: float = math.nan  #: benchmark ``s`` [s]
    cpu_s: float = math.nan  #: benchmark ``cpu_time`` [s]
    max_rss_mb: float = math.nan
    benchmark: str | None = None

    @property
    def seconds(self) -> float:
        """The job's wall time [s]: the benchmark's when known, else end - start."""
        return self.wall_s if math.isfinite(self.wall_s) else self.end - self.start

    @property
    def label(self) -> str:
        names = sorted(self.outputs) or [self.benchmark or ""]
        return f"{self.rule} ({names[0]}{', ...' if len(names) > 1 else ''})"


def _number(text: str | None) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):  # "NA": the job ended before the first sample
        return math.nan


def read_benchmarks(folder: Path) -> dict[str, dict[str, float]]:
    """``{path relative to folder: {"s", "cpu_time", "max_rss", "mtime"}}`` of every ``*.tsv`` below
    ``folder`` (its last row: Snakemake's ``repeat`` writes one row per repetition)."""
    out = {}
    for path in sorted(folder.rglob("*.tsv")):
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle, delimiter="\t"))
        if not rows or "s" not in rows[-1]:
            print(f"study_time: {path}: not a Snakemake benchmark file (no column 's'); skipped", file=sys.stderr)
            continue
        row = rows[-1]
        out[path.relative_to(folder).as_posix()] = {
            "s": _number(row.get("s")),
            "cpu_time": _number(row.get("cpu_time")),
            "max_rss": _number(row.get("max_rss")),
            "mtime": path.stat().st_mtime,
        }
    return out


def _decode_record_name(parts: tuple[str, ...]) -> str:
    """The output path a metadata file stands for: its path below ``metadata/`` is the output's
    urlsafe base64, cut into folders (all but the last prefixed with ``@``) when it is long."""
    return base64.urlsafe_b64decode("".join(p.removeprefix("@") for p in parts).encode()).decode()


#: How far apart [s] the end times of one job's output records may lie (a few ms are seen)
JOB_END_SPREAD_S = 1.0


def read_metadata(folder: Path) -> list[Job]:
    """The finished jobs recorded in Snakemake's ``.snakemake/metadata`` folder (one record per output;
    the outputs of one job share rule, job hash, log and end time)."""
    records = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
            output = _decode_record_name(path.relative_to(folder).parts)
        except (OSError, ValueError, UnicodeDecodeError):
            continue  # a record being written, or not one of Snakemake's
        start, end = record.get("starttime"), record.get("endtime")
        if record.get("incomplete") or start is None or end is None or not record.get("rule"):
            continue
        records.append((float(end), float(start), output, record))
    # One job's outputs share rule, job hash and log; their start and end times differ by up to a few
    # milliseconds (Snakemake stamps each output's record in turn), so records of the same rule, hash and
    # log whose end times lie within JOB_END_SPREAD_S of each other are one job.
    jobs: dict[tuple, list[Job]] = {}
    for end, start, output, record in sorted(records, key=lambda r: r[0]):
        logs = tuple(record.get("log") or ())
        same = jobs.setdefault((record["rule"], record.get("job_hash"), logs), [])
        if not same or end - same[-1].end > JOB_END_SPREAD_S:
            same.append(Job(record["rule"], start, end, logs=logs))
        job = same[-1]
        job.start, job.end = min(job.start, start), max(job.end, end)
        job.outputs.add(output)
        job.inputs.update(record.get("input") or ())
    return sorted((j for same in jobs.values() for j in same), key=lambda j: (j.start, j.end))


def attach_benchmarks(jobs: list[Job], benchmarks: dict[str, dict[str, float]], logs_dir: str) -> list[str]:
    """Give each job its benchmark (``logs_dir/X.log`` <-> ``X.tsv``); returns the benchmarks no job claimed."""
    claimed = set()
    for job in jobs:
        for log in job.logs:
            rel = Path(log)
            try:
                key = rel.relative_to(logs_dir).with_suffix(".tsv").as_posix()
            except ValueError:
                continue
            if key in benchmarks:
                b = benchmarks[key]
                job.wall_s, job.cpu_s, job.max_rss_mb, job.benchmark = b["s"], b["cpu_time"], b["max_rss"], key
                claimed.add(key)
                break
    return sorted(set(benchmarks) - claimed)


def jobs_from_benchmarks(benchmarks: dict[str, dict[str, float]], keys) -> list[Job]:
    """Jobs known only from their benchmark files: the rule is the file's folder (or name at the top),
    the end its modification time, the start that less its ``s``."""
    jobs = []
    for key in keys:
        b = benchmarks[key]
        group = key.split("/")[0].removesuffix(".tsv")
        wall = b["s"] if math.isfinite(b["s"]) else 0.0
        jobs.append(
            Job(
                f"[{group}]",
                b["mtime"] - wall,
                b["mtime"],
                wall_s=b["s"],
                cpu_s=b["cpu_time"],
                max_rss_mb=b["max_rss"],
                benchmark=key,
            )
        )
    return sorted(jobs, key=lambda j: (j.start, j.end))


def by_rule(jobs: list[Job]) -> list[dict]:
    """Per rule: jobs, job-hours (sum of wall times), core-hours (wall times x threads), measured CPU
    hours, peak RSS, longest job; the most core-hours first."""
    groups: dict[str, list[Job]] = defaultdict(list)
    for job in jobs:
        groups[job.rule].append(job)
    rows = []
    for rule, members in groups.items():
        wall = sum(j.seconds for j in members)
        cpu = sum(j.cpu_s for j in members if math.isfinite(j.cpu_s))
        rss = [j.max_rss_mb for j in members if math.isfinite(j.max_rss_mb)]
        core = sum(j.seconds * j.threads for j in members)
        rows.append(
            {
                "rule": rule,
                "jobs": len(members),
                "job_hours": wall / 3600.0,
                "core_hours": core / 3600.0,
                "cpu_hours": cpu / 3600.0,
                "max_rss_mb": max(rss) if rss else math.nan,
                "longest_s": max(j.seconds for j in members),
                "no_cpu": sum(not math.isfinite(j.cpu_s) for j in members),
            }
        )
    return sorted(rows, key=lambda r: (-r["core_hours"], r["rule"]))


def critical_path(jobs: list[Job], tolerance_s: float = 1.0) -> tuple[float, list[Job]]:
    """(length [s], jobs in order) of the longest chain through the jobs' DAG, each job weighted by its wall
    time. Job B depends on job A when an input of B is an output of A and A ended before B started
    (``tolerance_s`` for clock granularity; an A that ended later belongs to a later sitting)."""
    producer: dict[str, Job] = {}
    for job in jobs:
        for out in job.outputs:
            producer[out] = job
    order = sorted(jobs, key=lambda j: (j.start, j.end))  # a dependency ends before its dependant starts
    best: dict[int, tuple[float, Job | None]] = {}
    for job in order:
        parents = {
            id(p): p
            for p in (producer.get(i) for i in job.inputs)
            if p is not None and p is not job and p.end <= job.start + tolerance_s and id(p) in best
        }
        prev = max(parents.values(), key=lambda p: best[id(p)][0], default=None)
        best[id(job)] = ((best[id(prev)][0] if prev else 0.0) + job.seconds, prev)
    if not best:
        return 0.0, []
    by_id = {id(j): j for j in jobs}
    last = max(best, key=lambda k: best[k][0])
    length, chain, cur = best[last][0], [], by_id[last]
    while cur is not None:
        chain.append(cur)
        cur = best[id(cur)][1]
    return length, chain[::-1]


def _hms(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "n/a"
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def _when(t: float) -> str:
    return datetime.fromtimestamp(t, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def report(jobs: list[Job], *, source: str, with_dag: bool, top: int) -> str:
    """The printed report: core-hours by rule, the critical path, the wall time."""
    if not jobs:
        return "study_time: no jobs found (run the workflow first, from the folder it ran in)\n"
    lines = [
        f"Jobs: {len(jobs)} ({source})",
        "",
        "Core-hours by rule (core-h = wall time x threads; cpu-h = "
        "measured cpu_time, which misses each job's CPU after its last 30 s sample):",
        "",
    ]
    rows = by_rule(jobs)
    width = max(len("rule"), *(len(r["rule"]) for r in rows))
    lines.append(f"{'rule':<{width}}  {'jobs':>5}  {'core-h':>8}  {'cpu-h':>8}  {'longest':>8}  {'max RSS MB':>10}")
    for r in rows:
        rss = "n/a" if not math.isfinite(r["max_rss_mb"]) else f"{r['max_rss_mb']:.0f}"
        note = f"  ({r['no_cpu']} without CPU time: ended before the first sample)" if r["no_cpu"] else ""
        lines.append(
            f"{r['rule']:<{width}}  {r['jobs']:>5}  {r['core_hours']:>8.3f}  {r['cpu_hours']:>8.3f}  "
            f"{_hms(r['longest_s']):>8}  {rss:>10}{note}"
        )
    core = sum(r["core_hours"] for r in rows)
    job_h = sum(r["job_hours"] for r in rows)
    lines.append(f"{'total':<{width}}  {len(jobs):>5}  {core:>8.3f}  {sum(r['cpu_hours'] for r in rows):>8.3f}")
    start, end = min(j.start for j in jobs), max(j.end for j in jobs)
    wall = end - start
    lines += ["", f"Wall time: {_hms(wall)} ({wall:.0f} s), first job started {_when(start)}, last ended {_when(end)}."]
    if wall > 0:
        lines.append(f"Job time / wall time: {job_h * 3600 / wall:.2f} jobs running on average.")
    if with_dag:
        length, chain = critical_path(jobs)
        lines += [
            "",
            f"Critical path: {_hms(length)} ({length:.0f} s, {len(chain)} jobs): the least wall time with "
            f"unlimited cores{f'; {100 * length / wall:.0f} % of this run' if wall > 0 else ''}.",
        ]
        shown = chain if len(chain) <= top else chain[: top // 2] + [None] + chain[-(top - top // 2) :]
        for job in shown:
            lines.append("  ..." if job is None else f"  {_hms(job.seconds):>8}  {job.label}")
    else:
        lines += ["", "Critical path: n/a (no Snakemake metadata: the DAG is not known)."]
    return "\n".join(lines) + "\n"


#: core counts of the ``least_wall_time_N_cores`` rows: max(critical path, core-hours / N), a lower
#: bound on the wall time of the same jobs on N cores (``--cores N``, or N Slurm job slots)
SCALING_CORES = (2, 8, 64)

#: columns of ``--csv``: one row per rule and quantity, then the run's ("all") wall time and critical path
CSV_COLUMNS = ("rule", "quantity", "value", "unit")


def table(jobs: list[Job], *, with_dag: bool) -> list[dict]:
    """The report as rows of :data:`CSV_COLUMNS`: per rule its jobs, core-hours, measured CPU hours and
    longest job; for the whole run ("all") the same, its wall time, job time over wall time and, with
    the DAG, the critical path."""
    rows = []
    per_rule = by_rule(jobs)
    for r in per_rule:
        rows += [
            {"rule": r["rule"], "quantity": "jobs", "value": r["jobs"], "unit": "-"},
            {"rule": r["rule"], "quantity": "core_hours", "value": r["core_hours"], "unit": "h"},
            {"rule": r["rule"], "quantity": "cpu_hours", "value": r["cpu_hours"], "unit": "h"},
            {"rule": r["rule"], "quantity": "longest_job", "value": r["longest_s"], "unit": "s"},
        ]
    start, end = min(j.start for j in jobs), max(j.end for j in jobs)
    wall = end - start
    job_h = sum(r["job_hours"] for r in per_rule)
    rows += [
        {"rule": "all", "quantity": "jobs", "value": len(jobs), "unit": "-"},
        {"rule": "all", "quantity": "core_hours", "value": sum(r["core_hours"] for r in per_rule), "unit": "h"},
        {"rule": "all", "quantity": "cpu_hours", "value": sum(r["cpu_hours"] for r in per_rule), "unit": "h"},
        {"rule": "all", "quantity": "wall_time", "value": wall, "unit": "s"},
        {
            "rule": "all",
            "quantity": "jobs_running",
            "value": job_h * 3600 / wall if wall > 0 else math.nan,
            "unit": "-",
        },
    ]
    if with_dag:
        path_s = critical_path(jobs)[0]
        rows.append({"rule": "all", "quantity": "critical_path", "value": path_s, "unit": "s"})
        core_s = 3600.0 * sum(r["core_hours"] for r in per_rule)
        for cores in SCALING_CORES:  # no schedule on `cores` cores beats the path or the work shared out evenly
            rows.append(
                {
                    "rule": "all",
                    "quantity": f"least_wall_time_{cores}_cores",
                    "value": max(path_s, core_s / cores),
                    "unit": "s",
                }
            )
    return rows


def write_csv(rows: list[dict], path: Path) -> None:
    """``rows`` (:func:`table`) as CSV, written whole or not at all."""
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        writer.writerows({**r, "value": f"{r['value']:.6g}"} for r in rows)
    tmp.replace(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--benchmarks", type=Path, default=Path("results/benchmarks"), help="the benchmark folder (default %(default)s)"
    )
    parser.add_argument(
        "--logs", default="results/logs", help="the log folder the rules' log paths start with (default %(default)s)"
    )
    parser.add_argument(
        "--metadata",
        type=Path,
        default=Path(".snakemake/metadata"),
        help="Snakemake's metadata folder (default %(default)s)",
    )
    parser.add_argument(
        "--since",
        type=datetime.fromisoformat,
        metavar="ISO_TIME",
        help="only jobs started at or after this time (UTC unless it names a zone), e.g. 2026-12-06T18:00",
    )
    parser.add_argument(
        "--threads",
        nargs="*",
        default=[],
        metavar="RULE=N",
        help="threads of a rule's jobs when not 1, e.g. train=4 (training.torch_threads)",
    )
    parser.add_argument("--top", type=int, default=12, help="critical-path jobs to list (default %(default)s)")
    parser.add_argument(
        "--csv",
        type=Path,
        metavar="FILE",
        help="also write the figures as a table (columns rule, quantity, value, unit)",
    )
    args = parser.parse_args(argv)
    threads = {}
    for item in args.threads:
        rule, _, n = item.partition("=")
        if not rule or not n.isdigit() or int(n) < 1:
            print(f"study_time: error: --threads {item!r}: write RULE=N with N >= 1, e.g. train=4", file=sys.stderr)
            return 2
        threads[rule] = int(n)
    if not args.benchmarks.is_dir():
        print(
            f"study_time: error: --benchmarks {args.benchmarks} is not a folder (run the workflow first)",
            file=sys.stderr,
        )
        return 2
    benchmarks = read_benchmarks(args.benchmarks)
    jobs = read_metadata(args.metadata) if args.metadata.is_dir() else []
    if jobs:
        unclaimed = attach_benchmarks(jobs, benchmarks, args.logs)
        source = f"Snakemake metadata {args.metadata}, benchmarks {args.benchmarks}"
        if unclaimed:
            source += f"; {len(unclaimed)} benchmark files of no recorded job left out"
        with_dag = True
    else:
        jobs = jobs_from_benchmarks(benchmarks, benchmarks)
        source = f"benchmark files {args.benchmarks} only (no metadata in {args.metadata}): rules are folders"
        with_dag = False
    for job in jobs:
        job.threads = threads.get(job.rule.strip("[]"), 1)
    if args.since is not None:
        since = args.since if args.since.tzinfo else args.since.replace(tzinfo=timezone.utc)
        jobs = [j for j in jobs if j.start >= since.timestamp()]
        source += f"; jobs started since {_when(since.timestamp())}"
    sys.stdout.write(report(jobs, source=source, with_dag=with_dag, top=args.top))
    if args.csv is not None:
        if not jobs:
            print(f"study_time: error: no jobs to write to {args.csv}", file=sys.stderr)
            return 2
        if not args.csv.parent.is_dir():
            print(f"study_time: error: --csv {args.csv}: folder {args.csv.parent} does not exist", file=sys.stderr)
            return 2
        write_csv(table(jobs, with_dag=with_dag), args.csv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
