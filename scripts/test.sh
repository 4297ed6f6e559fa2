#!/usr/bin/env bash
# The whole test suite: formatting, lints, and every test of the workspace
# (unit, property and integration tests, the eBPF ones in this kernel, as root).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; SECONDS=0; }
took() { printf '   (%ss)\n' "$SECONDS"; }

step "cargo fmt --check"
cargo fmt --all -- --check
cargo +nightly fmt --manifest-path bpf/ebpf/Cargo.toml -- --check
took

step "cargo clippy --all-targets -D warnings"
cargo clippy --workspace --all-targets --quiet -- -D warnings
took

step "cargo test"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test --workspace 2>&1 | tee "$log"
took

# One closing line for the whole suite: cargo prints one per test binary, and
# the last of them (a crate's doc-tests) often counts none.
awk '/^test result:/ { passed += $4; failed += $6 }
     END { printf "\ntests: %d passed, %d failed\n", passed, failed }' "$log"
