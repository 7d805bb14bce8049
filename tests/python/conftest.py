"""Fixtures of the Flight SQL tests: binaries, TPC-H SF 0.01 data, running servers, clients.

Binaries come from ``SLUICE_BIN`` / ``SLUICE_TPCH_BIN``, else ``$CARGO_TARGET_DIR/debug``
(default ``~/.cache/sluice-target/debug``). The data is generated once per session, or taken
from ``SLUICE_TPCH_DATA`` when set. The main server requires a user and password; each server
is terminated (then killed) when its scope ends.
"""

import os
import shutil
import subprocess
import warnings
from pathlib import Path

import pytest

from sluice_testlib import PASSWORD, RPC_TIMEOUT, TPCH_TABLES, USER, SluiceServer, adbc_connect, env_path

TARGET_DIR = env_path("CARGO_TARGET_DIR", Path.home() / ".cache" / "sluice-target")


def _binary(env_var, name):
    path = env_path(env_var, TARGET_DIR / "debug" / name)
    if not path.is_file():
        pytest.exit(f"{path} not found: build it (cargo build -p sluice-cli -p sluice-bench-tpch) "
                    f"or set {env_var}", returncode=2)
    return path


@pytest.fixture(scope="session")
def sluice_bin():
    return _binary("SLUICE_BIN", "sluice")


@pytest.fixture(scope="session")
def tpch_data(tmp_path_factory):
    """A directory holding the 8 TPC-H tables at SF 0.01 as Parquet."""
    if os.environ.get("SLUICE_TPCH_DATA"):
        return Path(os.environ["SLUICE_TPCH_DATA"])
    out = tmp_path_factory.mktemp("tpch-sf0.01")
    subprocess.run([str(_binary("SLUICE_TPCH_BIN", "sluice-tpch")), "gen", "--sf", "0.01", "--out", str(out)],
                   check=True, stdout=subprocess.DEVNULL)
    missing = [t for t in TPCH_TABLES if not (out / f"{t}.parquet").exists() and not (out / t).is_dir()]
    assert not missing, f"sluice-tpch gen did not write {missing}"
    return out


@pytest.fixture(scope="session")
def password_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("auth") / "password"
    path.write_text(PASSWORD + "\n")  # the trailing newline must be ignored
    return path


@pytest.fixture(scope="session")
def start_server(sluice_bin, tpch_data, password_file, tmp_path_factory):
    """Factory: ``start_server(*extra_args, auth=True, user=USER, password=None)`` starts a
    server on a free port (``password=None``: PASSWORD, from the shared password file)."""
    servers = []

    def start(*extra, auth=True, user=USER, password=None):
        args = ["--addr", "127.0.0.1:0", "--data", tpch_data, *extra]
        directory = tmp_path_factory.mktemp("server")
        if password is not None:
            (directory / "password").write_text(password + "\n")
        if auth:
            args += ["--user", user, "--password-file", password_file if password is None else directory / "password"]
        log = directory / "stderr.log"
        server = SluiceServer(sluice_bin, args, log)
        servers.append(server)
        return server

    yield start
    for server in servers:
        code = server.stop()
        if code is not None:
            warnings.warn(f"sluice serve exited on its own with code {code} before the tests ended; "
                          f"its stderr ends with:\n{server.log_tail()}")


@pytest.fixture(scope="session")
def server(start_server):
    """The shared server, with credentials USER / PASSWORD."""
    return start_server()


@pytest.fixture(scope="session")
def uri(server):
    return server.uri()


@pytest.fixture
def connect(uri):
    """Factory of authenticated ADBC DBAPI connections; closes them after the test."""
    conns = []

    def open_connection(target=None, **db_kwargs):
        conn = adbc_connect(target or uri, **db_kwargs)
        conns.append(conn)
        return conn

    yield open_connection
    for conn in conns:
        conn.close()


@pytest.fixture
def conn(connect):
    return connect()


@pytest.fixture
def flight_client(uri):
    """``(client, options)``: a pyarrow.flight client and call options carrying the bearer token."""
    import pyarrow.flight as flight

    client = flight.FlightClient(uri)
    token = client.authenticate_basic_token(USER, PASSWORD)
    yield client, flight.FlightCallOptions(headers=[token], timeout=RPC_TIMEOUT)
    client.close()


@pytest.fixture(scope="session")
def openssl():
    path = shutil.which("openssl")
    if not path:
        pytest.skip("openssl not found (Debian: apt-get install openssl): cannot make a TLS certificate")
    return path
