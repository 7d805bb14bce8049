#!/usr/bin/env bash
# Python tests of the Flight SQL server (tests/python, pytest) through ADBC and pyarrow.flight.
#
# Uses a virtualenv at ${SLUICE_PY_VENV:-~/.cache/sluice-pyenv}, created on first use and
# recreated whenever tests/python/requirements.txt changes (its hash is kept in the venv),
# builds `sluice` and `sluice-tpch` (debug profile) and runs pytest; extra arguments go to
# pytest (e.g. scripts/python-tests.sh -k tpch). Needs python3 >= 3.11 with venv (Debian:
# apt-get install python3-venv, done here when run as root) and openssl for the TLS test.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sluice-target}"
python="${PYTHON:-python3}"
venv="${SLUICE_PY_VENV:-$HOME/.cache/sluice-pyenv}"
requirements=tests/python/requirements.txt

as_root_apt_install() {
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
  else
    echo "missing: install the Debian package(s) $* (sudo apt-get install $*)" >&2
    exit 1
  fi
}

if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "$python must be Python 3.11 or newer (Debian: apt-get install python3)" >&2
  exit 1
fi
# Debian's python3 lacks ensurepip (so venv fails) unless python3-venv is installed.
if ! "$python" -c 'import ensurepip, venv' >/dev/null 2>&1; then
  as_root_apt_install "python3-venv"
fi
command -v openssl >/dev/null 2>&1 || as_root_apt_install openssl

hash="$(sha256sum "$requirements" | cut -d' ' -f1)"
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$venv/.requirements-sha256" 2>/dev/null)" != "$hash" ]; then
  echo "== creating $venv from $requirements"
  rm -rf "$venv"
  "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements"
  echo "$hash" > "$venv/.requirements-sha256"
fi

echo "== cargo build -p sluice-cli -p sluice-bench-tpch"
cargo build -p sluice-cli -p sluice-bench-tpch --locked
export SLUICE_BIN="${SLUICE_BIN:-$CARGO_TARGET_DIR/debug/sluice}"
export SLUICE_TPCH_BIN="${SLUICE_TPCH_BIN:-$CARGO_TARGET_DIR/debug/sluice-tpch}"

echo "== pytest tests/python"
exec "$venv/bin/python" -m pytest tests/python -q "$@"
