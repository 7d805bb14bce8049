"""Errors: malformed SQL and unknown tables give readable Python exceptions (position and
offending token, table name) and the connection stays usable."""

import re

import pyarrow as pa
import pytest
from adbc_driver_manager import AdbcStatusCode, dbapi

from sluice_testlib import flight_query

MALFORMED = "SELECT n_name FROM nation\nWHERE n_nationkey = 1 GARBAGE"  # GARBAGE: line 2, column 23


def assert_usable(cur):
    cur.execute("SELECT count(*) FROM nation")
    assert cur.fetchall() == [(25,)]


def test_malformed_sql_adbc(conn):
    with conn.cursor() as cur:
        with pytest.raises(dbapi.ProgrammingError) as err:
            cur.execute(MALFORMED)
        message = str(err.value)
        assert err.value.status_code == AdbcStatusCode.INVALID_ARGUMENT, message
        assert "Line: 2, Column: 23" in message, message
        assert "GARBAGE" in message, message
        assert_usable(cur)
    with conn.cursor() as cur:
        with pytest.raises(dbapi.ProgrammingError) as err:
            cur.execute("SELEC 1")
        assert re.search(r"Line: 1, Column: 1\b", str(err.value)) and "SELEC" in str(err.value), str(err.value)
        assert_usable(cur)


def test_unknown_table_adbc(conn):
    with conn.cursor() as cur:
        with pytest.raises(dbapi.ProgrammingError) as err:
            cur.execute("SELECT * FROM no_such_table")
        assert err.value.status_code == AdbcStatusCode.INVALID_ARGUMENT, err.value
        assert "table 'no_such_table' not found" in str(err.value), str(err.value)
        assert_usable(cur)


def test_malformed_sql_flight(flight_client):
    client, options = flight_client
    with pytest.raises(pa.ArrowInvalid) as err:  # gRPC InvalidArgument
        flight_query(client, MALFORMED, options)
    assert "Line: 2, Column: 23" in str(err.value) and "GARBAGE" in str(err.value), str(err.value)
    with pytest.raises(pa.ArrowInvalid) as err:
        flight_query(client, "SELECT * FROM no_such_table", options)
    assert "table 'no_such_table' not found" in str(err.value), str(err.value)
    assert flight_query(client, "SELECT 1 + 1 AS two", options).to_pylist() == [{"two": 2}]
