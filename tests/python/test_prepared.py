"""Prepared statements with ``?`` parameters over ADBC (CreatePreparedStatement, DoPut of the
bound parameters, GetFlightInfo/DoGet): int, float, string and date parameters, one statement
reused with different values, parameterized DML, and a readable parameter-count error."""

import datetime
import uuid

import pytest
from adbc_driver_manager import dbapi


def scalar(cur, sql, parameters=None):
    cur.execute(sql, parameters=parameters)
    rows = cur.fetchall()
    assert len(rows) == 1 and len(rows[0]) == 1, rows
    return rows[0][0]


def test_int_parameter_and_reuse(conn):
    sql = "SELECT n_name FROM nation WHERE n_nationkey = ?"
    with conn.cursor() as cur:
        # The same statement (prepared once by ADBC) executed with three different values.
        assert scalar(cur, sql, (5,)) == "ETHIOPIA"
        assert scalar(cur, sql, (7,)) == "GERMANY"
        assert scalar(cur, sql, (24,)) == "UNITED STATES"
        cur.execute(sql, parameters=(99,))
        assert cur.fetchall() == []


def test_string_parameter(conn):
    with conn.cursor() as cur:
        assert scalar(cur, "SELECT n_nationkey FROM nation WHERE n_name = ?", ("GERMANY",)) == 7
        assert scalar(cur, "SELECT count(*) FROM nation WHERE n_name = ?", ("ATLANTIS",)) == 0


def test_float_parameter(conn):
    with conn.cursor() as cur:
        expected = scalar(cur, "SELECT count(*) FROM lineitem WHERE l_discount > 0.05")
        assert 0 < expected < scalar(cur, "SELECT count(*) FROM lineitem")
        assert scalar(cur, "SELECT count(*) FROM lineitem WHERE l_discount > ?", (0.05,)) == expected
        assert scalar(cur, "SELECT ? * 2", (1.25,)) == pytest.approx(2.5)


def test_date_parameters(conn):
    with conn.cursor() as cur:
        expected = scalar(cur, "SELECT count(*) FROM orders WHERE o_orderdate >= DATE '1995-01-01' "
                               "AND o_orderdate < DATE '1995-04-01' AND o_totalprice > 100000")
        assert expected > 0
        got = scalar(cur, "SELECT count(*) FROM orders WHERE o_orderdate >= ? AND o_orderdate < ? "
                          "AND o_totalprice > ?",
                     (datetime.date(1995, 1, 1), datetime.date(1995, 4, 1), 100000))
        assert got == expected


def test_parameterized_insert(conn):
    name = f"prep_{uuid.uuid4().hex[:8]}"
    with conn.cursor() as cur:
        cur.execute(f"CREATE TABLE {name} (id BIGINT, label VARCHAR)")
        cur.executemany(f"INSERT INTO {name} VALUES (?, ?)", [(1, "one"), (2, "two"), (3, None)])
        cur.execute(f"SELECT id, label FROM {name} ORDER BY id")
        assert cur.fetchall() == [(1, "one"), (2, "two"), (3, None)]
        cur.execute(f"DROP TABLE {name}")


def test_parameter_count_mismatch_is_readable(conn):
    with conn.cursor() as cur:
        with pytest.raises(dbapi.Error) as err:
            cur.execute("SELECT n_name FROM nation WHERE n_nationkey = ? OR n_regionkey = ?", parameters=(1,))
            cur.fetchall()
        message = str(err.value)
        assert "parameter" in message.lower() and "2" in message and "1" in message, message
    with conn.cursor() as cur:  # the connection is still fine
        assert scalar(cur, "SELECT n_name FROM nation WHERE n_nationkey = ?", (1,)) == "ARGENTINA"
