"""Helpers shared by the Python tests of the Sluice Flight SQL server.

* ``SluiceServer``: starts ``sluice serve`` on a free port, waits for its
  ``listening on grpc://HOST:PORT`` line and stops it again.
* TPC-H reference answers: ``query_sql``, ``reference_answer``, ``format_table`` and
  ``compare_answer`` mirror ``bench-tpch/src/answers.rs`` (tolerance 0.01 absolute or 1e-6
  relative for numbers, trailing spaces ignored for strings, NULL as the empty cell).
* ``statement_query_command``: the Flight SQL ``CommandStatementQuery`` wrapped in a
  protobuf ``Any``, hand-encoded, for plain ``pyarrow.flight`` clients.
"""

import datetime
import decimal
import json
import math
import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TPCH_DIR = REPO / "bench-tpch"
TPCH_TABLES = ["customer", "lineitem", "nation", "orders", "part", "partsupp", "region", "supplier"]
USER = "sluice_test"  # credentials of the servers the tests start
PASSWORD = "s3cret-pa55"
RPC_TIMEOUT = 300  # seconds: a hung server fails a test instead of hanging the suite
ABSOLUTE_TOLERANCE = 0.01
RELATIVE_TOLERANCE = 1e-6
LISTENING = re.compile(r"listening on (grpc(?:\+tls)?)://(\S+):(\d+)")
SERVER_MEMORY = int(os.environ.get("SLUICE_TEST_SERVER_MEMORY", 8 << 30))  # bytes of address space


def _server_limits():
    """Runs in the child: cap the server's memory, so that a runaway query makes it fail
    alone instead of waking the OOM killer, and (Linux) SIGTERM it when the tests die."""
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (SERVER_MEMORY, SERVER_MEMORY))
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class SluiceServer:
    """A ``sluice serve`` child process; ``uri`` is set once it listens."""

    def __init__(self, binary, args, log_path, startup_timeout=120.0):
        self.log_path = Path(log_path)
        self.lines = []  # everything the server printed on stdout
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [str(binary), "serve", *map(str, args)],
            stdout=subprocess.PIPE, stderr=self._log, stdin=subprocess.DEVNULL,
            preexec_fn=_server_limits,
        )
        self._ready = threading.Event()
        self.scheme = self.host = self.port = None
        threading.Thread(target=self._read_stdout, daemon=True).start()
        deadline = time.monotonic() + startup_timeout
        while not self._ready.wait(0.1):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(
                    f"sluice serve {' '.join(map(str, args))} did not start "
                    f"(exit code {self.proc.returncode}); stdout: {self.lines!r}; "
                    f"stderr: {self.log_tail()}"
                )

    def _read_stdout(self):
        for raw in self.proc.stdout:  # keeps draining so the server never blocks on stdout
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self.lines.append(line)
            match = LISTENING.search(line)
            if match and not self._ready.is_set():
                self.scheme, self.host, self.port = match[1], match[2], int(match[3])
                self._ready.set()

    def uri(self, host="127.0.0.1"):
        """The client URI, e.g. ``grpc://127.0.0.1:PORT`` (``host`` overrides the host)."""
        return f"{self.scheme}://{host}:{self.port}"

    def log_tail(self, chars=4000):
        return self.log_path.read_bytes()[-chars:].decode("utf-8", "replace")

    def stop(self):
        """Terminates the server (SIGTERM), then kills it after 10 s. Returns the exit code
        if it had already exited on its own (a crash), else None."""
        crashed = self.proc.poll()
        if crashed is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._log.close()
        return crashed


def adbc_connect(uri, user=USER, password=PASSWORD, **db_kwargs):
    """An ADBC DB-API connection (autocommit: Sluice has no transactions) with RPC timeouts."""
    from adbc_driver_flightsql import dbapi

    options = {f"adbc.flight.sql.rpc.timeout_seconds.{k}": str(RPC_TIMEOUT) for k in ("fetch", "query", "update")}
    if user is not None:
        options.update(username=user, password=password)
    return dbapi.connect(uri, db_kwargs={**options, **db_kwargs}, autocommit=True)


# --- TPC-H queries and reference answers -------------------------------------------------

def query_sql(n):
    """The SQL text of TPC-H query ``n`` without its trailing ``;``."""
    return (TPCH_DIR / "queries" / f"q{n}.sql").read_text().strip().rstrip(";")


def reference_answer(n, sf="sf0.01"):
    """``(columns, rows)`` of the reference answer, errata first (see answers/README.md)."""
    errata = TPCH_DIR / "answers" / "errata" / sf / f"q{n}.csv"
    path = errata if errata.exists() else TPCH_DIR / "answers" / sf / f"q{n}.csv"
    return parse_answer(path.read_text())


def parse_answer(text):
    """Header line, then one ``|``-separated row per line; an empty line is one NULL cell."""
    body = text[:-1] if text.endswith("\n") else text
    if not body:
        return [], []
    lines = [line[:-1] if line.endswith("\r") else line for line in body.split("\n")]
    return lines[0].split("|"), [line.split("|") for line in lines[1:]]


def has_order_by(sql):
    """True when the outermost query ends with an ORDER BY (its rows are then compared in order)."""
    depth, last = 0, -1
    for match in re.finditer(r"\(|\)|\border\s+by\b", sql, re.IGNORECASE):
        token = match[0]
        if token == "(":
            depth += 1
        elif token == ")":
            depth -= 1
        elif depth == 0:
            last = match.start()
    return last >= 0


def format_cell(value):
    """One cell as answers.rs prints it: dates YYYY-MM-DD, plain decimals, NULL as ''."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, decimal.Decimal):
        return format(value, "f")
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def format_table(table):
    """Rows of formatted cells of a ``pyarrow.Table``."""
    columns = [[format_cell(v) for v in column.to_pylist()] for column in table.columns]
    return [list(row) for row in zip(*columns)] if columns else []


_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def parse_number(cell):
    cell = cell.strip()
    if not _NUMBER.fullmatch(cell):
        return None
    value = float(cell)
    return value if math.isfinite(value) else None


def cells_equal(expected, actual):
    a, b = parse_number(expected), parse_number(actual)
    if a is not None and b is not None:
        diff = abs(a - b)
        return diff <= ABSOLUTE_TOLERANCE or diff <= RELATIVE_TOLERANCE * max(abs(a), abs(b))
    return expected.rstrip(" ") == actual.rstrip(" ")


def compare_answer(n, table, sf="sf0.01"):
    """``None`` when ``table`` matches query ``n``'s reference answer, else why not."""
    columns, expected = reference_answer(n, sf)
    actual = format_table(table)
    if table.num_columns != len(columns):
        return f"q{n}: expected {len(columns)} columns, got {table.num_columns} ({table.schema.names})"
    if not has_order_by(query_sql(n)):
        expected, actual = sorted(expected), sorted(actual)
    for row, (exp_row, act_row) in enumerate(zip(expected, actual)):
        for col in range(max(len(exp_row), len(act_row))):
            exp = exp_row[col] if col < len(exp_row) else "<missing>"
            act = act_row[col] if col < len(act_row) else "<missing>"
            if col >= len(exp_row) or col >= len(act_row) or not cells_equal(exp, act):
                return (f"q{n}: row {row} column {col} ({columns[col] if col < len(columns) else '?'}): "
                        f"expected {exp!r}, got {act!r}")
    if len(expected) != len(actual):
        return f"q{n}: expected {len(expected)} rows, got {len(actual)}"
    return None


def tpch_row_count(data_dir, table):
    """Rows of a generated TPC-H table, read from the Parquet footers (not via the server)."""
    import pyarrow.parquet as pq

    path = Path(data_dir) / f"{table}.parquet"
    files = [path] if path.exists() else sorted((Path(data_dir) / table).glob("*.parquet"))
    return sum(pq.read_metadata(f).num_rows for f in files)


# --- Flight SQL over plain pyarrow.flight ---------------------------------------------------

def _varint(n):
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _length_delimited(field, payload):
    return _varint(field << 3 | 2) + _varint(len(payload)) + payload


def statement_query_command(sql):
    """``Any{CommandStatementQuery{query=sql}}`` as bytes for ``FlightDescriptor.for_command``."""
    inner = _length_delimited(1, sql.encode("utf-8"))
    type_url = b"type.googleapis.com/arrow.flight.protocol.sql.CommandStatementQuery"
    return _length_delimited(1, type_url) + _length_delimited(2, inner)


def flight_query(client, sql, options):
    """Runs ``sql`` through GetFlightInfo + DoGet and returns a ``pyarrow.Table``."""
    import pyarrow as pa
    import pyarrow.flight as flight

    info = client.get_flight_info(flight.FlightDescriptor.for_command(statement_query_command(sql)), options)
    tables = [client.do_get(endpoint.ticket, options).read_all() for endpoint in info.endpoints]
    return pa.concat_tables(tables) if tables else info.schema.empty_table()


def active_queries(client, options):
    """The server's ``sluice.active_queries`` action: queries currently streaming."""
    import pyarrow.flight as flight

    results = list(client.do_action(flight.Action("sluice.active_queries", b""), options))
    assert len(results) == 1, f"expected one result, got {len(results)}"
    return json.loads(results[0].body.to_pybytes())["active_queries"]


def wait_for_idle(client, options, timeout=10.0):
    """Polls ``active_queries`` until it is 0; returns the last value seen."""
    deadline = time.monotonic() + timeout
    while True:
        n = active_queries(client, options)
        if n == 0 or time.monotonic() > deadline:
            return n
        time.sleep(0.1)


def env_path(name, default):
    value = os.environ.get(name)
    return Path(value) if value else Path(default)
