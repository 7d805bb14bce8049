"""Query a Sluice Flight SQL server with plain ``pyarrow.flight`` (no Flight SQL library).

    python flight_example.py --uri grpc://127.0.0.1:50051 --user alice --password secret

Flight SQL rides on Flight: a query is a ``GetFlightInfo`` whose descriptor command is a
protobuf ``Any`` holding a ``CommandStatementQuery``, followed by a ``DoGet`` of each
endpoint's ticket. The two protobuf messages are encoded by hand below (a string field is
tag byte(s), length varint, UTF-8 bytes), so nothing beyond pyarrow is needed.
"""

import argparse

import pyarrow as pa
import pyarrow.flight as flight

COMMAND_STATEMENT_QUERY = "type.googleapis.com/arrow.flight.protocol.sql.CommandStatementQuery"


def varint(n):
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field(number, payload):
    """A length-delimited protobuf field (wire type 2)."""
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def statement_query(sql):
    """Any{type_url = 1, value = 2} wrapping CommandStatementQuery{query = 1}."""
    command = field(1, sql.encode("utf-8"))
    return field(1, COMMAND_STATEMENT_QUERY.encode()) + field(2, command)


def run_query(client, sql, options):
    descriptor = flight.FlightDescriptor.for_command(statement_query(sql))
    info = client.get_flight_info(descriptor, options)
    # An endpoint without locations is served by this same server.
    return pa.concat_tables([client.do_get(e.ticket, options).read_all() for e in info.endpoints])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uri", default="grpc://127.0.0.1:50051")
    parser.add_argument("--user")
    parser.add_argument("--password")
    args = parser.parse_args()

    with flight.FlightClient(args.uri) as client:
        headers = []
        if args.user:
            # Basic-auth handshake; the server answers with an "authorization: Bearer ..." header.
            headers.append(client.authenticate_basic_token(args.user, args.password))
        options = flight.FlightCallOptions(headers=headers)

        table = run_query(client, "SELECT r_regionkey, r_name FROM region ORDER BY r_regionkey", options)
        print(table.to_pandas().to_string(index=False))
        table = run_query(client, "SELECT count(*) AS lineitem_rows FROM lineitem", options)
        print(table.to_pandas().to_string(index=False))


if __name__ == "__main__":
    main()
