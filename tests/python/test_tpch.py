"""The 22 TPC-H queries at SF 0.01 over ADBC, each compared cell by cell with its reference
answer (bench-tpch/answers, errata first), with the rules of bench-tpch/src/answers.rs."""

import pytest

from sluice_testlib import adbc_connect, compare_answer, format_table, query_sql


@pytest.fixture(scope="module")
def shared_conn(uri):
    conn = adbc_connect(uri)
    yield conn
    conn.close()


@pytest.mark.parametrize("n", range(1, 23))
def test_tpch_query(shared_conn, n):
    with shared_conn.cursor() as cur:
        cur.execute(query_sql(n))
        table = cur.fetch_arrow_table()
    mismatch = compare_answer(n, table)
    assert mismatch is None, f"{mismatch}\nfirst rows: {format_table(table)[:5]}"


def test_comparison_catches_a_wrong_answer(shared_conn):
    """The checker itself: q1 with one aggregate perturbed must not match."""
    sql = query_sql(1).replace("sum(l_quantity) AS sum_qty", "sum(l_quantity) + 1 AS sum_qty")
    assert sql != query_sql(1)
    with shared_conn.cursor() as cur:
        cur.execute(sql)
        table = cur.fetch_arrow_table()
    assert compare_answer(1, table) is not None
