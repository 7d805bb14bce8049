"""Authentication: basic-auth handshake returns a bearer token; a wrong password and calls
without (or with a forged) token fail with gRPC Unauthenticated."""

import subprocess

import pyarrow.flight as flight
import pytest
from adbc_driver_manager import AdbcStatusCode, dbapi

from sluice_testlib import PASSWORD, USER, adbc_connect, flight_query, statement_query_command


def test_adbc_wrong_password_is_refused(uri):
    with pytest.raises(dbapi.Error) as err:
        conn = adbc_connect(uri, password="wrong")
        try:
            conn.cursor().execute("SELECT 1")
        finally:
            conn.close()
    assert err.value.status_code == AdbcStatusCode.UNAUTHENTICATED, err.value


@pytest.mark.parametrize("password", ["p", "pw", "pwd"])
def test_adbc_login_with_any_password_length(start_server, password):
    """ADBC (arrow-go) sends "Basic " + base64 *without* padding; "u:p" needs none, "u:pw" and
    "u:pwd" would be padded with "==" and "=" by standard base64."""
    server = start_server(user="u", password=password)
    conn = adbc_connect(server.uri(), user="u", password=password)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1 AS one")
            assert cur.fetchall() == [(1,)]
    finally:
        conn.close()


def test_adbc_no_credentials_is_refused(uri):
    with pytest.raises(dbapi.Error) as err:
        conn = adbc_connect(uri, user=None)
        try:
            conn.cursor().execute("SELECT 1")
        finally:
            conn.close()
    assert err.value.status_code == AdbcStatusCode.UNAUTHENTICATED, err.value


def test_flight_wrong_password_is_refused(uri):
    with flight.FlightClient(uri) as client:
        with pytest.raises(flight.FlightUnauthenticatedError):
            client.authenticate_basic_token(USER, "wrong")
        with pytest.raises(flight.FlightUnauthenticatedError):
            client.authenticate_basic_token("nobody", PASSWORD)


@pytest.mark.parametrize("call", ["list_actions", "do_get", "get_flight_info", "do_action"])
def test_flight_calls_without_token_are_refused(uri, call):
    with flight.FlightClient(uri) as client:
        with pytest.raises(flight.FlightUnauthenticatedError):
            if call == "list_actions":
                client.list_actions()
            elif call == "do_get":
                client.do_get(flight.Ticket(b"made-up ticket")).read_all()
            elif call == "get_flight_info":
                client.get_flight_info(flight.FlightDescriptor.for_command(statement_query_command("SELECT 1")))
            else:
                list(client.do_action(flight.Action("sluice.active_queries", b"")))


def test_flight_forged_token_is_refused(uri):
    options = flight.FlightCallOptions(headers=[(b"authorization", b"Bearer forged-token")])
    with flight.FlightClient(uri) as client:
        with pytest.raises(flight.FlightUnauthenticatedError):
            flight_query(client, "SELECT 1", options)


def test_flight_token_works(flight_client):
    client, options = flight_client
    assert flight_query(client, "SELECT count(*) AS n FROM region", options).to_pylist() == [{"n": 5}]


def test_server_without_credentials_needs_no_token(start_server):
    server = start_server(auth=False)
    assert server.host in ("127.0.0.1", "localhost", "[::1]", "::1"), server.lines
    with flight.FlightClient(server.uri()) as client:
        table = flight_query(client, "SELECT count(*) AS n FROM nation", flight.FlightCallOptions())
    assert table.to_pylist() == [{"n": 25}]
    conn = adbc_connect(server.uri(), user=None)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT r_name FROM region ORDER BY r_regionkey")
            assert [r[0] for r in cur.fetchall()] == ["AFRICA", "AMERICA", "ASIA", "EUROPE", "MIDDLE EAST"]
    finally:
        conn.close()


def test_server_without_credentials_refuses_non_loopback(sluice_bin, tpch_data):
    result = subprocess.run([str(sluice_bin), "serve", "--addr", "0.0.0.0:0", "--data", str(tpch_data)],
                            capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert result.returncode != 0, result.stdout
    assert "listening on" not in result.stdout
    assert "credentials" in result.stderr, result.stderr
