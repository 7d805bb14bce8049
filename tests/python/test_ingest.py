"""Bulk ingest (ADBC ``adbc_ingest``, i.e. DoPut of CommandStatementIngest) and DDL/DML through
SQL: create, append, replace, create_append, then query the rows back; an append whose schema
does not match is refused and leaves the table unchanged."""

import datetime
import uuid

import pyarrow as pa
import pytest
from adbc_driver_manager import AdbcStatusCode, dbapi

SCHEMA = pa.schema([("id", pa.int64()), ("name", pa.string()), ("price", pa.float64()), ("day", pa.date32())])


def batch(ids):
    return pa.table({
        "id": ids,
        "name": [f"item-{i}" for i in ids],
        "price": [i * 1.5 for i in ids],
        "day": [datetime.date(2024, 1, 1) + datetime.timedelta(days=i) for i in ids],
    }, schema=SCHEMA)


def read_back(cur, name):
    cur.execute(f"SELECT id, name, price, day FROM {name} ORDER BY id")
    return cur.fetch_arrow_table()


def new_name():
    return f"ingest_{uuid.uuid4().hex[:8]}"


def test_create_append_replace(conn):
    name = new_name()
    with conn.cursor() as cur:
        assert cur.adbc_ingest(name, batch([1, 2, 3]), mode="create") == 3
        got = read_back(cur, name)
        assert got.to_pylist() == batch([1, 2, 3]).to_pylist()
        assert [f.name for f in got.schema] == SCHEMA.names

        with pytest.raises(dbapi.Error):  # "create" refuses an existing table
            cur.adbc_ingest(name, batch([9]), mode="create")

        assert cur.adbc_ingest(name, batch([4, 5]), mode="append") == 2
        assert read_back(cur, name).to_pylist() == batch([1, 2, 3, 4, 5]).to_pylist()

        assert cur.adbc_ingest(name, batch([7]), mode="replace") == 1
        assert read_back(cur, name).to_pylist() == batch([7]).to_pylist()


def test_create_append_mode_and_missing_table(conn):
    name = new_name()
    with conn.cursor() as cur:
        with pytest.raises(dbapi.Error):  # "append" needs an existing table
            cur.adbc_ingest(name, batch([1]), mode="append")
        cur.adbc_ingest(name, batch([1, 2]), mode="create_append")
        cur.adbc_ingest(name, batch([3]), mode="create_append")
        assert read_back(cur, name).column("id").to_pylist() == [1, 2, 3]


def test_ingest_record_batch_reader(conn):
    name = new_name()
    reader = pa.RecordBatchReader.from_batches(SCHEMA, batch(list(range(1000))).to_batches(max_chunksize=100))
    with conn.cursor() as cur:
        cur.adbc_ingest(name, reader, mode="create")
        cur.execute(f"SELECT count(*), sum(id) FROM {name}")
        assert cur.fetchall() == [(1000, sum(range(1000)))]


def test_schema_mismatch_leaves_table_unchanged(conn):
    name = new_name()
    with conn.cursor() as cur:
        cur.adbc_ingest(name, batch([1, 2, 3]), mode="create")
        other = pa.table({"id": ["not", "a", "number"], "colour": ["red", "green", "blue"]})
        with pytest.raises(dbapi.ProgrammingError) as err:
            cur.adbc_ingest(name, other, mode="append")
        assert err.value.status_code == AdbcStatusCode.INVALID_ARGUMENT, err.value
        cur.execute(f"SELECT count(*) FROM {name}")
        assert cur.fetchall() == [(3,)]
        assert read_back(cur, name).to_pylist() == batch([1, 2, 3]).to_pylist()


def test_sql_ddl_and_dml(conn):
    table, view = new_name(), new_name()
    with conn.cursor() as cur:
        cur.execute(f"CREATE TABLE {table} (a BIGINT, b VARCHAR)")
        cur.execute(f"INSERT INTO {table} VALUES (1, 'x'), (2, 'y'), (3, NULL)")
        cur.execute(f"CREATE VIEW {view} AS SELECT a * 10 AS a10, b FROM {table} WHERE a > 1")
        cur.execute(f"SELECT a10, b FROM {view} ORDER BY a10")
        assert cur.fetchall() == [(20, "y"), (30, None)]
        cur.execute(f"DROP TABLE {table}")
        with pytest.raises(dbapi.ProgrammingError) as err:
            cur.execute(f"SELECT * FROM {table}")
        assert f"table '{table}' not found" in str(err.value)


def test_statement_update_path(conn):
    """``executescript`` runs the SQL with CommandStatementUpdate (no prepare)."""
    table = new_name()
    with conn.cursor() as cur:
        cur.executescript(f"CREATE TABLE {table} (a BIGINT)")
        cur.executescript(f"INSERT INTO {table} VALUES (1), (2)")
        cur.execute(f"SELECT sum(a) FROM {table}")
        assert cur.fetchall() == [(3,)]


def test_a_batch_over_16_mib_goes_in_once_the_drivers_limit_is_raised(connect):
    """ADBC's Flight SQL driver will not send a message over 16 MiB (a batch from
    ``pyarrow.parquet.read_table`` holds a whole row group, often more). With the driver's
    limit raised, as README.md says, the server takes the batch (it accepts up to 64 MiB a
    message) and it reads back whole."""
    rows = 1_200_000  # two int64 columns: 19.2 MB in one batch
    big = pa.table({"id": pa.array(range(rows), pa.int64()), "twice": pa.array(range(0, 2 * rows, 2), pa.int64())})
    assert len(big.to_batches()) == 1
    name = new_name()
    with connect().cursor() as cur:
        with pytest.raises(dbapi.Error, match="larger than max"):
            cur.adbc_ingest(name, big, mode="create")
    raised = connect(**{"adbc.flight.sql.client_option.with_max_msg_size": str(64 << 20)})
    with raised.cursor() as cur:
        # "replace": the refused call above may have left an empty table (see README.md).
        assert cur.adbc_ingest(name, big, mode="replace") == rows
        cur.execute(f"SELECT count(*), sum(id), sum(twice) FROM {name}")
        assert cur.fetchall() == [(rows, sum(range(rows)), 2 * sum(range(rows)))]
