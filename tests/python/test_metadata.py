"""Metadata over ADBC: get_objects (GetCatalogs/GetDbSchemas/GetTables with schemas),
get_table_schema, get_table_types (GetTableTypes) and get_info (GetSqlInfo)."""

import uuid

from sluice_testlib import TPCH_TABLES

LINEITEM_COLUMNS = [
    "l_orderkey", "l_partkey", "l_suppkey", "l_linenumber", "l_quantity", "l_extendedprice",
    "l_discount", "l_tax", "l_returnflag", "l_linestatus", "l_shipdate", "l_commitdate",
    "l_receiptdate", "l_shipinstruct", "l_shipmode", "l_comment",
]


def objects(conn, **kwargs):
    return conn.adbc_get_objects(depth="all", **kwargs).read_all().to_pylist()


def tables_of(catalogs, catalog="sluice", schema="public"):
    """``{table_name: table_entry}`` of one catalog/schema in a get_objects result."""
    [cat] = [c for c in catalogs if c["catalog_name"] == catalog]
    [sch] = [s for s in cat["catalog_db_schemas"] if s["db_schema_name"] == schema]
    return {t["table_name"]: t for t in sch["db_schema_tables"] or []}


def test_get_objects_lists_catalog_schema_tables_and_columns(conn):
    catalogs = objects(conn)
    assert [c["catalog_name"] for c in catalogs] == ["sluice"]
    assert [s["db_schema_name"] for s in catalogs[0]["catalog_db_schemas"]] == ["public"]
    tables = tables_of(catalogs)
    assert set(TPCH_TABLES) <= set(tables), sorted(tables)
    lineitem = tables["lineitem"]
    assert lineitem["table_type"] == "TABLE"
    columns = sorted(lineitem["table_columns"], key=lambda c: c["ordinal_position"])
    assert [c["column_name"] for c in columns] == LINEITEM_COLUMNS
    assert [c["ordinal_position"] for c in columns] == list(range(1, 17))


def test_get_objects_filters(conn):
    only = tables_of(objects(conn, table_name_filter="nation"))
    assert list(only) == ["nation"]
    assert [c["column_name"] for c in only["nation"]["table_columns"]] == [
        "n_nationkey", "n_name", "n_regionkey", "n_comment"]
    assert tables_of(objects(conn, table_name_filter="no_such_%")) == {}


def test_views_are_listed_as_views(conn):
    view = f"meta_view_{uuid.uuid4().hex[:8]}"
    with conn.cursor() as cur:
        cur.execute(f"CREATE VIEW {view} AS SELECT r_name FROM region")
    views = tables_of(objects(conn, table_types_filter=["VIEW"]))
    assert view in views and views[view]["table_type"] == "VIEW"
    assert "lineitem" not in views
    assert [c["column_name"] for c in views[view]["table_columns"]] == ["r_name"]


def test_get_table_schema_matches_query_result(conn):
    schema = conn.adbc_get_table_schema("lineitem")
    assert schema.names == LINEITEM_COLUMNS
    with conn.cursor() as cur:
        cur.execute("SELECT * FROM lineitem LIMIT 1")
        result = cur.fetch_arrow_table().schema
    assert [(f.name, f.type) for f in result] == [(f.name, f.type) for f in schema]
    assert str(schema.field("l_shipdate").type) == "date32[day]"
    assert str(schema.field("l_quantity").type) == "decimal128(15, 2)"
    # Strings go out as plain `string`, not `string_view`, so every client can read them.
    assert str(schema.field("l_comment").type) == "string"
    assert str(result.field("l_comment").type) == "string"


def test_get_table_types(conn):
    assert {"TABLE", "VIEW"} <= set(conn.adbc_get_table_types())


def test_get_info(conn):
    info = conn.adbc_get_info()
    assert "sluice" in str(info.get("vendor_name", "")).lower(), info
    assert info.get("vendor_version"), info
