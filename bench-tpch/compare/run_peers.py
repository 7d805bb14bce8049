#!/usr/bin/env python3
"""Side-by-side TPC-H timings: Sluice against DuckDB, Polars and DataFusion.

Runs the 22 queries of ``bench-tpch/queries/`` on every engine over the same Parquet
files with the same thread count, and prints a Markdown table of per-query medians with
the Sluice / best-peer ratio (also written to ``--out``). See ``README.md`` beside this
file; ``compare.sh`` sets up the virtualenv and calls this script.

Method:

* Each Python engine runs in its own worker process (so that ``POLARS_MAX_THREADS`` is
  set before Polars is imported, a hung query can be killed after ``--timeout`` seconds,
  and the engines do not share memory). A worker registers the tables once and then runs
  the queries it is sent; a query's time covers planning, running and materializing the
  whole result (DuckDB: ``to_arrow_table()``, DataFusion: ``collect()``, Polars:
  ``LazyFrame.collect()``).
* Sluice runs as ``sluice-tpch run --data DIR -q .. --iterations 1 --threads N --json F``,
  one process per pass; its per-query times come from the JSON report (they exclude
  process start and table registration, like the peers' times).
* One untimed warm-up pass per engine, then ``--iterations`` rounds in alternating order
  (DuckDB all queries, Polars all queries, DataFusion all queries, Sluice all queries,
  repeat), so that drift on a shared machine hits every engine alike. The table shows the
  median over the rounds.
* A query that fails or times out in the warm-up is not run again on that engine. Polars
  runs the SQL text as is through ``pl.SQLContext``; what it cannot run is reported as
  failed, not rewritten.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import queue
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
TABLES = ["customer", "lineitem", "nation", "orders", "part", "partsupp", "region", "supplier"]
PEERS = ["duckdb", "polars", "datafusion"]
ENGINES = PEERS + ["sluice"]
LABELS = {"duckdb": "DuckDB", "polars": "Polars", "datafusion": "DataFusion", "sluice": "Sluice"}


# --------------------------------------------------------------------------------------
# Shared helpers


def table_paths(data: Path) -> dict[str, Path]:
    """Each TPC-H table's ``NAME.parquet`` file or ``NAME/`` directory; exits if one lacks."""
    paths, missing = {}, []
    for name in TABLES:
        if (data / f"{name}.parquet").is_file():
            paths[name] = data / f"{name}.parquet"
        elif (data / name).is_dir() and any((data / name).glob("*.parquet")):
            paths[name] = data / name
        else:
            missing.append(name)
    if missing:
        sys.exit(f"error: {data} lacks the TPC-H tables {', '.join(missing)}")
    return paths


def load_queries(queries_dir: Path, numbers: list[int]) -> dict[int, str]:
    """The SQL of each query, without its trailing ``;``."""
    out = {}
    for n in numbers:
        text = (queries_dir / f"q{n}.sql").read_text()
        out[n] = text.strip().rstrip(";").strip()
    return out


def first_line(message: str, limit: int = 160) -> str:
    """The first non-empty line of an error message, shortened."""
    lines = [line.strip() for line in str(message).splitlines() if line.strip()]
    line = lines[0] if lines else "unknown error"
    return line if len(line) <= limit else line[: limit - 1] + "…"


# --------------------------------------------------------------------------------------
# Worker side: one process per Python engine


def parquet_glob(path: Path) -> str:
    """A file, or all Parquet files of a table directory."""
    return str(path / "*.parquet") if path.is_dir() else str(path)


def open_engine(engine: str, paths: dict[str, Path], threads: int):
    """Registers the tables; returns ``(version, run)`` where ``run(sql)`` gives the row count."""
    if engine == "duckdb":
        import duckdb

        con = duckdb.connect()
        con.execute(f"SET threads = {threads}")
        for name, path in paths.items():
            con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{parquet_glob(path)}')")
        return duckdb.__version__, lambda sql: con.sql(sql).to_arrow_table().num_rows
    if engine == "polars":
        import polars as pl

        ctx = pl.SQLContext()
        for name, path in paths.items():
            ctx.register(name, pl.scan_parquet(parquet_glob(path)))
        return pl.__version__, lambda sql: ctx.execute(sql, eager=False).collect().height
    if engine == "datafusion":
        import datafusion
        from datafusion import SessionConfig, SessionContext

        ctx = SessionContext(SessionConfig().with_target_partitions(threads))
        for name, path in paths.items():
            ctx.register_parquet(name, str(path))
        return datafusion.__version__, lambda sql: sum(b.num_rows for b in ctx.sql(sql).collect())
    raise ValueError(f"unknown engine {engine}")


def worker_main(engine: str, data: Path, threads: int, queries_dir: Path) -> None:
    """Reads query numbers from stdin, answers one JSON line per query on stdout."""
    # Keep the protocol on the original stdout; anything a library prints goes to stderr.
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    try:
        version, run = open_engine(engine, table_paths(data), threads)
    except Exception as e:  # noqa: BLE001 - reported to the driver
        proto.write(json.dumps({"setup_error": f"{type(e).__name__}: {e}"}) + "\n")
        return
    proto.write(json.dumps({"ready": True, "version": version}) + "\n")
    for line in sys.stdin:
        n = int(line)
        sql = load_queries(queries_dir, [n])[n]
        start = time.perf_counter()
        try:
            rows = run(sql)
            reply = {"ms": (time.perf_counter() - start) * 1000.0, "rows": rows}
        except Exception as e:  # noqa: BLE001 - a failed query is a result, not a crash
            reply = {"error": f"{type(e).__name__}: {e}"}
        proto.write(json.dumps(reply) + "\n")


# --------------------------------------------------------------------------------------
# Driver side


@dataclass
class Outcome:
    """One engine's result for one query in one pass."""

    ms: float | None = None
    rows: int | None = None
    error: str | None = None
    wrong: str | None = None  # the answer differs from the reference (Sluice checks it)


@dataclass
class Results:
    """Everything measured for one engine."""

    version: str = "?"
    times: dict[int, list[float]] = field(default_factory=dict)
    round_totals: list[float] = field(default_factory=list)
    rows: dict[int, int] = field(default_factory=dict)
    errors: dict[int, str] = field(default_factory=dict)
    wrong: dict[int, str] = field(default_factory=dict)

    def record(self, n: int, outcome: Outcome) -> None:
        if outcome.wrong is not None:
            self.wrong.setdefault(n, outcome.wrong)
        if outcome.error is not None:
            self.errors.setdefault(n, outcome.error)
        elif outcome.ms is not None:
            self.times.setdefault(n, []).append(outcome.ms)
            if outcome.rows is not None:
                self.rows[n] = outcome.rows

    def median(self, n: int) -> float | None:
        if n in self.errors or not self.times.get(n):
            return None
        return statistics.median(self.times[n])


class PeerWorker:
    """A worker process for one Python engine, restarted after a timeout."""

    def __init__(self, engine: str, args: argparse.Namespace):
        self.engine, self.args = engine, args
        self.proc: subprocess.Popen | None = None
        self.lines: queue.Queue = queue.Queue()
        self.version = "?"

    def _start(self) -> None:
        env = dict(os.environ)
        env["POLARS_MAX_THREADS"] = str(self.args.threads)
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", self.engine,
               "--data", str(self.args.data), "--threads", str(self.args.threads),
               "--queries-dir", str(self.args.queries_dir)]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, bufsize=1, env=env)
        self.lines = queue.Queue()
        threading.Thread(target=self._pump, args=(self.proc, self.lines), daemon=True).start()
        hello = self._reply(self.args.timeout + 120)
        if "setup_error" in hello or "ready" not in hello:
            self.stop()
            raise RuntimeError(hello.get("setup_error") or hello.get("error") or "no reply")
        self.version = hello["version"]

    @staticmethod
    def _pump(proc: subprocess.Popen, lines: queue.Queue) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)

    def _reply(self, timeout: float) -> dict:
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            return {"error": f"timed out after {timeout:g} s", "timeout": True}
        if line is None:
            return {"error": "worker process died"}
        return json.loads(line)

    def run(self, n: int) -> Outcome:
        if self.proc is None or self.proc.poll() is not None:
            self._start()
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write(f"{n}\n")
        self.proc.stdin.flush()
        reply = self._reply(self.args.timeout)
        if reply.get("timeout") or reply.get("error") == "worker process died":
            self.stop()
        return Outcome(reply.get("ms"), reply.get("rows"), reply.get("error"))

    def stop(self) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait()
            self.proc = None


def sluice_pass(args: argparse.Namespace, queries: list[int]) -> dict[int, Outcome]:
    """One `sluice-tpch run` process over `queries`, each run once."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "sluice.json"
        cmd = [str(args.sluice), "run", "--data", str(args.data), "--iterations", "1",
               "--threads", str(args.threads), "--json", str(report)]
        if args.sf is not None:
            cmd += ["--sf", str(args.sf)]
        for n in queries:
            cmd += ["--query", str(n)]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True,
                                  timeout=args.timeout * len(queries) + 120)
        except subprocess.TimeoutExpired:
            return {n: Outcome(error="timed out (whole sluice-tpch pass)") for n in queries}
        if not report.is_file():
            why = first_line(proc.stderr or proc.stdout or f"exit code {proc.returncode}")
            return {n: Outcome(error=f"sluice-tpch failed: {why}") for n in queries}
        entries = json.loads(report.read_text())["queries"]
    out = {}
    for q in entries:
        if q.get("median_ms") is None:
            out[q["query"]] = Outcome(error=q.get("error") or "failed")
        else:
            wrong = (q.get("error") or "wrong answer") if q.get("ok") is False else None
            out[q["query"]] = Outcome(q["median_ms"], q.get("rows"), wrong=wrong)
    return out


def machine_info() -> dict[str, str]:
    """nproc, CPU model and memory of this machine."""
    model, mem = "?", "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    except OSError:
        pass
    nproc = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"nproc": str(nproc), "cpu": model, "memory": mem,
            "os": f"{platform.system()} {platform.release()}"}


def sluice_version(binary: Path) -> str:
    """`sluice-tpch --version`, the binary's build time and the work tree's commit."""
    try:
        out = subprocess.run([str(binary), "--version"], capture_output=True, text=True,
                             timeout=30).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        out = "sluice-tpch ?"
    built = datetime.datetime.fromtimestamp(binary.stat().st_mtime).strftime("%Y-%m-%d %H:%M")
    try:
        commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        commit = ""
    return f"{out} (binary built {built}" + (f", tree at {commit})" if commit else ")")


def fmt_ms(v: float | None) -> str:
    return "-" if v is None else (f"{v:.1f}" if v < 100 else f"{v:.0f}")


def render(args, queries, engines, results: dict[str, Results], info, started) -> str:
    """The Markdown report."""
    cols = [LABELS[e] for e in engines]
    lines = [f"TPC-H over `{args.data}`, {args.threads} threads, median of {args.iterations} "
             f"runs after 1 warm-up run, {started:%Y-%m-%d %H:%M}.", ""]
    lines.append(f"Machine: {info['nproc']} CPUs ({info['cpu']}), {info['memory']} RAM, "
                 f"{info['os']}.")
    versions = [f"{LABELS[e]} {results[e].version}" for e in engines]
    lines += [f"Versions: {', '.join(versions)}; Python {platform.python_version()}.", ""]
    has_ratio = "sluice" in engines and any(p in engines for p in PEERS)
    header = ["query"] + [f"{c} ms" for c in cols] + (["Sluice / best peer"] if has_ratio else [])
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    notes, complete = [], []
    for n in queries:
        cells, medians = [f"q{n}"], {}
        ref_rows = results["sluice"].rows.get(n) if "sluice" in engines else None
        for e in engines:
            m = results[e].median(n)
            medians[e] = m
            if m is None:
                err = results[e].errors.get(n, "not run")
                cells.append("timeout" if "timed out" in err else "failed")
                notes.append(f"q{n} {LABELS[e]}: {first_line(err)}")
                continue
            cell = fmt_ms(m)
            rows = results[e].rows.get(n)
            if e != "sluice" and ref_rows is not None and rows is not None and rows != ref_rows:
                cell += " †"
                notes.append(f"q{n} {LABELS[e]}: {rows} rows, Sluice {ref_rows}")
            if n in results[e].wrong:
                cell += " ‡"
                notes.append(f"q{n} {LABELS[e]}: {first_line(results[e].wrong[n])}")
            cells.append(cell)
        if has_ratio:
            peers = [medians[p] for p in PEERS if p in engines and medians[p] is not None]
            s = medians["sluice"]
            cells.append(f"{s / min(peers):.2f}" if s is not None and peers else "-")
        if all(v is not None for v in medians.values()):
            complete.append(n)
        lines.append("| " + " | ".join(cells) + " |")
    totals = {e: sum(results[e].median(n) for n in complete) for e in engines}
    label = "**total**" if len(complete) == len(queries) else \
        f"**total of the {len(complete)} of {len(queries)} queries every engine ran**"
    row = [label] + [f"**{fmt_ms(totals[e])}**" if complete else "-" for e in engines]
    if has_ratio:
        peer_totals = [totals[p] for p in PEERS if p in engines]
        row.append(f"**{totals['sluice'] / min(peer_totals):.2f}**"
                   if complete and min(peer_totals) > 0 else "-")
    lines.append("| " + " | ".join(row) + " |")
    rounds = "; ".join(f"{LABELS[e]} " + " / ".join(fmt_ms(t) for t in results[e].round_totals)
                       for e in engines)
    lines += ["", f"Sum of the query times in each round, ms (spread = noise): {rounds}."]
    if notes:
        lines += ["", "Notes (failed/timeout: the error; † row count differs from Sluice's; "
                  "‡ Sluice's answer differs from the reference):", ""]
        lines += [f"- {note}" for note in notes]
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, required=True,
                   help="Parquet tables as written by `sluice-tpch gen` (NAME.parquet or NAME/)")
    p.add_argument("--threads", type=int, default=2, help="threads per engine [2]")
    p.add_argument("--iterations", type=int, default=3, help="timed rounds [3]")
    p.add_argument("--queries", default="", help="comma-separated query numbers [all 22]")
    p.add_argument("--engines", default=",".join(ENGINES),
                   help=f"comma-separated subset of {','.join(ENGINES)} [all]")
    p.add_argument("--sluice", type=Path, default=None,
                   help="release sluice-tpch binary [$CARGO_TARGET_DIR/release/sluice-tpch "
                        "or target/release/sluice-tpch]")
    p.add_argument("--sf", default=None,
                   help="scale factor, passed to sluice-tpch to pick the reference answers "
                        "[from a directory name ending in sfN, else sluice-tpch's default 1]")
    p.add_argument("--timeout", type=float, default=600.0,
                   help="seconds before a query counts as timed out [600]")
    p.add_argument("--out", type=Path, default=None, help="also write the Markdown here")
    p.add_argument("--queries-dir", type=Path, default=REPO / "bench-tpch" / "queries",
                   help=argparse.SUPPRESS)
    p.add_argument("--worker", choices=PEERS, default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.threads < 1 or args.iterations < 1:
        p.error("--threads and --iterations must be at least 1")
    try:
        args.query_list = [int(q) for q in args.queries.split(",") if q.strip()] or \
            list(range(1, 23))
    except ValueError:
        p.error(f"--queries: not a list of numbers: {args.queries}")
    if any(not 1 <= q <= 22 for q in args.query_list):
        p.error("--queries: TPC-H queries are numbered 1 to 22")
    args.engine_list = [e.strip() for e in args.engines.split(",") if e.strip()]
    if not args.engine_list or any(e not in ENGINES for e in args.engine_list):
        p.error(f"--engines: choose from {', '.join(ENGINES)}")
    args.data = args.data.resolve()
    return args


def default_sluice() -> Path:
    target = os.environ.get("CARGO_TARGET_DIR")
    if target:
        return Path(target) / "release" / "sluice-tpch"
    return REPO / "target" / "release" / "sluice-tpch"


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if args.worker:
        worker_main(args.worker, args.data, args.threads, args.queries_dir)
        return 0
    table_paths(args.data)  # exits early when a table is missing
    engines, queries = args.engine_list, args.query_list
    if "sluice" in engines:
        args.sluice = (args.sluice or default_sluice()).resolve()
        if not os.access(args.sluice, os.X_OK):
            sys.exit(f"error: no sluice-tpch binary at {args.sluice} (cargo build --release "
                     "-p sluice-bench-tpch, or pass --sluice)")
        if args.sf is None:
            match = re.search(r"sf(\d+(?:\.\d+)?)$", args.data.name)
            args.sf = match.group(1) if match else None
    started = datetime.datetime.now()
    results = {e: Results() for e in engines}
    workers = {e: PeerWorker(e, args) for e in engines if e in PEERS}
    if "sluice" in engines:
        results["sluice"].version = sluice_version(args.sluice)

    def one_pass(engine: str, label: str, todo: list[int]) -> dict[int, Outcome]:
        start = time.perf_counter()
        if engine == "sluice":
            out = sluice_pass(args, todo)
        else:
            out = {}
            for n in todo:
                try:
                    out[n] = workers[engine].run(n)
                except RuntimeError as e:  # the worker could not start
                    out = {m: Outcome(error=f"setup failed: {e}") for m in todo}
                    break
            results[engine].version = workers[engine].version
        done = sum(o.error is None for o in out.values())
        print(f"[{label}] {LABELS[engine]}: {done}/{len(todo)} queries ok in "
              f"{time.perf_counter() - start:.1f} s", file=sys.stderr)
        return out

    try:
        runnable = {}
        for e in engines:
            warm = one_pass(e, "warm-up", queries)
            for n, o in warm.items():
                if o.error is not None:
                    results[e].errors[n] = o.error
                if o.wrong is not None:
                    results[e].wrong[n] = o.wrong
            runnable[e] = [n for n in queries if warm.get(n, Outcome(error="?")).error is None]
        for r in range(args.iterations):
            for e in engines:
                if runnable[e]:
                    out = one_pass(e, f"round {r + 1}/{args.iterations}", runnable[e])
                    for n, o in out.items():
                        results[e].record(n, o)
                    results[e].round_totals.append(sum(o.ms or 0.0 for o in out.values()))
    finally:
        for w in workers.values():
            w.stop()
    report = render(args, queries, engines, results, machine_info(), started)
    print(report)
    if args.out:
        args.out.write_text(report)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
