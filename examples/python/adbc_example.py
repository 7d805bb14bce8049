"""Query a Sluice Flight SQL server from Python through ADBC (DB-API 2.0).

    python adbc_example.py --uri grpc://127.0.0.1:50051 --user alice --password secret

Connects with a user name and password, runs a TPC-H style aggregate (Arrow table and
pandas DataFrame), runs a query with a bound parameter, bulk-loads a small Arrow table
with ``adbc_ingest`` and reads it back.
"""

import argparse

import pyarrow as pa
from adbc_driver_flightsql import dbapi


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uri", default="grpc://127.0.0.1:50051")
    parser.add_argument("--user")
    parser.add_argument("--password")
    args = parser.parse_args()
    db_kwargs = {"username": args.user, "password": args.password} if args.user else {}

    # autocommit=True: Sluice has no transactions, so skip ADBC's attempt to disable autocommit.
    with dbapi.connect(args.uri, db_kwargs=db_kwargs, autocommit=True) as conn:
        with conn.cursor() as cur:
            cur.execute("""
                SELECT l_returnflag, l_linestatus, count(*) AS orders, sum(l_quantity) AS qty
                FROM lineitem GROUP BY l_returnflag, l_linestatus ORDER BY 1, 2""")
            print("fetch_arrow_table():")
            print(cur.fetch_arrow_table().to_pandas().to_string(index=False))

            cur.execute("SELECT n_nationkey, n_name FROM nation WHERE n_regionkey = ? ORDER BY n_nationkey",
                        parameters=(0,))
            print("\nfetch_df() of the nations in region 0 (a ? parameter):")
            print(cur.fetch_df().to_string(index=False))

            prices = pa.table({"sku": ["a-1", "b-2", "c-3"], "price": [9.5, 12.0, 3.25]})
            rows = cur.adbc_ingest("example_prices", prices, mode="replace")
            print(f"\nadbc_ingest() loaded {rows} rows into example_prices")
            cur.execute("SELECT sku, price * 2 AS doubled FROM example_prices ORDER BY sku")
            print(cur.fetch_df().to_string(index=False))


if __name__ == "__main__":
    main()
