"""16 concurrent clients, each with its own ADBC connection: 12 run different TPC-H queries
and check the answers, 4 run failing queries first; failures must not disturb the others."""

import threading
from concurrent.futures import ThreadPoolExecutor

from adbc_driver_manager import dbapi

from sluice_testlib import compare_answer, query_sql

CLIENTS = 16
QUERY_CLIENTS = 12


def test_sixteen_concurrent_clients(connect):
    conns = [connect() for _ in range(CLIENTS)]
    start = threading.Barrier(CLIENTS, timeout=60)

    def run_queries(i):
        # Client i runs queries i+1 and i+13: together the 12 clients run all 22.
        start.wait()
        problems = []
        for n in (i + 1, i + 13):
            if n > 22:
                continue
            with conns[i].cursor() as cur:
                cur.execute(query_sql(n))
                mismatch = compare_answer(n, cur.fetch_arrow_table())
            if mismatch:
                problems.append(f"client {i}: {mismatch}")
        return problems

    def run_failures(i):
        start.wait()
        problems = []
        with conns[i].cursor() as cur:
            for sql, needle in [(f"SELECT * FROM missing_{i}", f"table 'missing_{i}' not found"),
                                ("SELECT * FROM nation WHERE n_nationkey = 1 GARBAGE", "Line: 1, Column: 44")]:
                try:
                    cur.execute(sql)
                    cur.fetchall()
                    problems.append(f"client {i}: {sql!r} did not fail")
                except dbapi.Error as err:
                    if needle not in str(err):
                        problems.append(f"client {i}: {sql!r} failed without {needle!r}: {err}")
            cur.execute(query_sql(6))
            mismatch = compare_answer(6, cur.fetch_arrow_table())
            if mismatch:
                problems.append(f"client {i} after its failures: {mismatch}")
        return problems

    with ThreadPoolExecutor(CLIENTS) as pool:
        futures = [pool.submit(run_queries if i < QUERY_CLIENTS else run_failures, i) for i in range(CLIENTS)]
        problems = [p for f in futures for p in f.result(timeout=600)]
    assert not problems, "\n".join(problems)
