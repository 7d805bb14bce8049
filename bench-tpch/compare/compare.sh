#!/usr/bin/env bash
# Side-by-side TPC-H timings of Sluice, DuckDB, Polars and DataFusion (see README.md).
#
#   bench-tpch/compare/compare.sh --data data/tpch-sf1 [--threads 2] [--iterations 3]
#       [--queries 1,6] [--sluice PATH] [--out report.md]
#
# Creates bench-tpch/compare/.venv on first use, installs the pinned peers from
# requirements.txt into it (again whenever that file changes), then runs run_peers.py.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="$here/.venv"
python="${PYTHON:-python3}"

if [ ! -x "$venv/bin/python" ]; then
  echo "creating $venv" >&2
  "$python" -m venv "$venv"
fi
if ! cmp -s "$here/requirements.txt" "$venv/.installed-requirements.txt"; then
  echo "installing $here/requirements.txt into $venv" >&2
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$here/requirements.txt"
  cp "$here/requirements.txt" "$venv/.installed-requirements.txt"
fi
exec "$venv/bin/python" "$here/run_peers.py" "$@"
