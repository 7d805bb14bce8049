"""TLS: a second server with a self-signed certificate for localhost (made with openssl);
pyarrow.flight and ADBC connect with that certificate as their root and run a query."""

import subprocess

import pyarrow.flight as flight
import pytest
from adbc_driver_flightsql import DatabaseOptions

from sluice_testlib import PASSWORD, USER, adbc_connect, flight_query

REGIONS = ["AFRICA", "AMERICA", "ASIA", "EUROPE", "MIDDLE EAST"]


@pytest.fixture(scope="module")
def tls_server(openssl, start_server, tmp_path_factory):
    d = tmp_path_factory.mktemp("tls")
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run([openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                   check=True, capture_output=True)
    server = start_server("--tls-cert", cert, "--tls-key", key)
    assert server.scheme == "grpc+tls", server.lines
    return server, cert.read_bytes()


def test_tls_flight(tls_server):
    server, cert = tls_server
    with flight.FlightClient(server.uri("localhost"), tls_root_certs=cert) as client:
        options = flight.FlightCallOptions(headers=[client.authenticate_basic_token(USER, PASSWORD)])
        table = flight_query(client, "SELECT r_name FROM region ORDER BY r_regionkey", options)
    assert table.column(0).to_pylist() == REGIONS


def test_tls_adbc(tls_server):
    server, cert = tls_server
    conn = adbc_connect(server.uri("localhost"), **{DatabaseOptions.TLS_ROOT_CERTS.value: cert.decode()})
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT r_name FROM region ORDER BY r_regionkey")
            assert [r[0] for r in cur.fetchall()] == REGIONS
    finally:
        conn.close()


def test_tls_refuses_untrusting_and_plaintext_clients(tls_server):
    server, _ = tls_server
    for uri in (server.uri("localhost"), f"grpc://localhost:{server.port}"):  # system roots; no TLS
        with flight.FlightClient(uri) as client:
            with pytest.raises(flight.FlightUnavailableError):
                client.list_actions()
