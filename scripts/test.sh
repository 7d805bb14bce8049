#!/usr/bin/env bash
# The whole test suite: formatting, lints, every crate's tests (TPC-H answers at SF 0.01
# and 0.1, sqllogictest files, CLI end-to-end tests, Flight SQL server), doc tests, and the
# Python client suite (ADBC / pyarrow.flight against `sluice serve`, scripts/python-tests.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
"$(dirname "$0")/install-prereqs.sh"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sluice-target}"

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast
else
  cargo test --workspace --locked --no-fail-fast
fi
echo "== doc tests"
cargo test --workspace --locked --doc
echo "== Python clients (pytest)"
./scripts/python-tests.sh
