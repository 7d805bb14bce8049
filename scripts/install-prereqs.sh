#!/usr/bin/env bash
# Installs what Sluice needs beyond a Rust toolchain. Today that is nothing but rustfmt and
# clippy (the engine is pure Rust plus the C code that the zstd/lz4 crates compile with the
# system C compiler). Later pieces (RocksDB state, Flight) add their system packages here.
set -euo pipefail
if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo not found: install Rust from https://rustup.rs (rustup default stable)" >&2
  exit 1
fi
if ! command -v cc >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && apt-get install -y -qq build-essential >/dev/null
  else
    echo "a C compiler is needed (Debian: sudo apt-get install build-essential)" >&2
    exit 1
  fi
fi
for c in rustfmt clippy; do
  if ! cargo "${c/rustfmt/fmt}" --version >/dev/null 2>&1; then
    rustup component add "$c"
  fi
done
