"""Times reading a whole table into a pyarrow.Table: over ADBC Flight SQL from a running
`sluice serve`, and directly from its Parquet file with pyarrow.parquet.read_table.

Prints the median of --iterations runs of each (after one warm-up) and their ratio.
Run it through ./run.sh, which builds the release server, makes the data and starts it.

--setup SQL runs a statement first (e.g. ``CREATE TABLE li AS SELECT * FROM lineitem`` with
``--table li``: the read without Parquet decoding on the server). --ingest loads the Parquet
file into a new table over ``adbc_ingest`` first and reads that table back.
"""

import argparse
import statistics
import time

import adbc_driver_flightsql.dbapi as flightsql
import pyarrow.parquet as pq


def timed(fn, iterations):
    fn()  # warm-up
    times, rows = [], 0
    for _ in range(iterations):
        start = time.perf_counter()
        rows = fn().num_rows
        times.append(time.perf_counter() - start)
    return statistics.median(times), min(times), rows


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--uri", required=True)
    p.add_argument("--user", default="bench")
    p.add_argument("--password", default="bench")
    p.add_argument("--table", default="lineitem")
    p.add_argument("--parquet", required=True, help="the table's Parquet file or directory of files")
    p.add_argument("--iterations", type=int, default=5)
    p.add_argument("--setup", help="a SQL statement to run once before timing")
    p.add_argument("--ingest", action="store_true",
                   help="ingest the Parquet data into a new table and read that table instead")
    p.add_argument("--only", choices=["flight", "parquet"],
                   help="time one side only (for whole-process timing tools)")
    args = p.parse_args()
    if args.only == "parquet":
        med, low, rows = timed(lambda: pq.read_table(args.parquet), args.iterations)
        print(f"pyarrow.parquet  rows {rows}  median {med:.3f} s  min {low:.3f} s")
        return

    conn = flightsql.connect(
        args.uri,
        db_kwargs={
            "username": args.user,
            "password": args.password,
            # A Parquet row group is one ingest message; the driver's default limit is 16 MiB.
            "adbc.flight.sql.client_option.with_max_msg_size": str(64 << 20),
        },
        autocommit=True,
    )
    cur = conn.cursor()
    if args.setup:
        cur.execute(args.setup)
        cur.fetchall()
    if args.ingest:
        args.table = f"{args.table}_ingested"
        cur.adbc_ingest(args.table, pq.read_table(args.parquet), mode="replace")

    def over_flight():
        cur.execute(f"SELECT * FROM {args.table}")
        return cur.fetch_arrow_table()

    def from_parquet():
        return pq.read_table(args.parquet)

    f_med, f_min, f_rows = timed(over_flight, args.iterations)
    if args.only == "flight":
        print(f"ADBC Flight SQL  rows {f_rows}  median {f_med:.3f} s  min {f_min:.3f} s")
        return
    p_med, p_min, p_rows = timed(from_parquet, args.iterations)
    if f_rows != p_rows:
        raise SystemExit(f"row counts differ: flight {f_rows}, parquet {p_rows}")
    print(f"rows: {f_rows}")
    print(f"ADBC Flight SQL  median {f_med:.3f} s  min {f_min:.3f} s")
    print(f"pyarrow.parquet  median {p_med:.3f} s  min {p_min:.3f} s")
    print(f"ratio (flight / parquet, medians): {f_med / p_med:.2f}")
    cur.close()
    conn.close()


if __name__ == "__main__":
    main()
