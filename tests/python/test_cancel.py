"""Cancelling a query mid-stream: read one batch of a huge result, cancel or close the stream,
and the server's ``sluice.active_queries`` action must drop to 0 within seconds; the server
then still answers correctly. Runs on its own server so other tests cannot skew the count."""

import pyarrow.flight as flight
import pytest

from sluice_testlib import (PASSWORD, RPC_TIMEOUT, USER, active_queries, adbc_connect, compare_answer,
                            query_sql, statement_query_command, tpch_row_count, wait_for_idle)

# lineitem × lineitem: 3.6 billion rows at SF 0.01, far more than anyone reads. The join
# emits its output in chunks, so the server holds only what back-pressure allows.
HUGE = "SELECT a.l_orderkey, b.l_comment FROM lineitem a CROSS JOIN lineitem b"


@pytest.fixture(scope="module")
def cancel_server(start_server):
    return start_server()


@pytest.fixture
def admin(cancel_server):
    """A pyarrow.flight client and options for the cancel server."""
    client = flight.FlightClient(cancel_server.uri())
    options = flight.FlightCallOptions(headers=[client.authenticate_basic_token(USER, PASSWORD)], timeout=RPC_TIMEOUT)
    assert wait_for_idle(client, options) == 0
    yield client, options
    client.close()


def assert_still_correct(client, options, tpch_data):
    info = client.get_flight_info(flight.FlightDescriptor.for_command(statement_query_command(query_sql(6))), options)
    table = client.do_get(info.endpoints[0].ticket, options).read_all()
    assert compare_answer(6, table) is None
    info = client.get_flight_info(
        flight.FlightDescriptor.for_command(statement_query_command("SELECT count(*) AS n FROM lineitem")), options)
    assert client.do_get(info.endpoints[0].ticket, options).read_all().to_pylist() == [
        {"n": tpch_row_count(tpch_data, "lineitem")}]


def test_cancel_flight_stream(admin, tpch_data):
    client, options = admin
    info = client.get_flight_info(flight.FlightDescriptor.for_command(statement_query_command(HUGE)), options)
    reader = client.do_get(info.endpoints[0].ticket, options)
    chunk = reader.read_chunk()
    assert chunk.data.num_rows > 0
    assert active_queries(client, options) >= 1
    reader.cancel()
    del reader
    assert wait_for_idle(client, options) == 0, "the cancelled query is still running"
    assert_still_correct(client, options, tpch_data)


def test_cancel_adbc_cursor(admin, cancel_server, tpch_data):
    client, options = admin
    conn = adbc_connect(cancel_server.uri())
    try:
        cur = conn.cursor()
        cur.execute(HUGE)
        reader = cur.fetch_record_batch()
        assert reader.read_next_batch().num_rows > 0
        assert active_queries(client, options) >= 1
        cur.adbc_cancel()
        reader.close()
        cur.close()
        assert wait_for_idle(client, options) == 0, "the cancelled query is still running"
        with conn.cursor() as cur:  # the same connection still works
            cur.execute(query_sql(6))
            assert compare_answer(6, cur.fetch_arrow_table()) is None
    finally:
        conn.close()
    assert_still_correct(client, options, tpch_data)
