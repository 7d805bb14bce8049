#!/usr/bin/env bash
# Benchmark: SELECT * FROM lineitem over ADBC Flight SQL vs pyarrow.parquet.read_table.
# Usage: server/bench/run.sh [SF] [THREADS]   (defaults: SF 1, 2 threads)
# Builds the release `sluice` and `sluice-tpch`, generates data/tpch-sf$SF if absent,
# starts `sluice serve` on a free loopback port with credentials, runs read_lineitem.py
# in the Python test virtualenv (scripts/python-tests.sh creates it) and stops the server.
set -euo pipefail
cd "$(dirname "$0")/../.."
SF="${1:-1}"
THREADS="${2:-2}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sluice-target}"
VENV="${SLUICE_PY_VENV:-$HOME/.cache/sluice-pyenv}"
[ -x "$VENV/bin/python" ] || { echo "no virtualenv at $VENV: run scripts/python-tests.sh first" >&2; exit 1; }
cargo build --release -q -p sluice-cli -p sluice-bench-tpch
DATA="data/tpch-sf$SF"
LINEITEM="$DATA/lineitem.parquet"; [ -e "$LINEITEM" ] || LINEITEM="$DATA/lineitem"
[ -e "$LINEITEM" ] || { "$CARGO_TARGET_DIR/release/sluice-tpch" gen --sf "$SF" --out "$DATA"; LINEITEM="$DATA/lineitem.parquet"; }
WORK="$(mktemp -d)"
trap 'kill "$SERVER" 2>/dev/null || true; rm -rf "$WORK"' EXIT
echo bench > "$WORK/password"
"$CARGO_TARGET_DIR/release/sluice" serve --addr 127.0.0.1:0 --data "$DATA" --threads "$THREADS" \
  --user bench --password-file "$WORK/password" > "$WORK/out" 2> "$WORK/err" &
SERVER=$!
for _ in $(seq 100); do grep -q "listening on" "$WORK/out" && break; sleep 0.1; done
URI="$(grep -o 'grpc://[^ ]*' "$WORK/out")"
"$VENV/bin/python" server/bench/read_lineitem.py --uri "$URI" --parquet "$LINEITEM" "${@:3}"
