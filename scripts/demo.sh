#!/usr/bin/env bash
# The main job: builds Stockade and runs its demo on the embedded default policy
# (validation, identification, compilation, decisions, and the eBPF dataplane
# loaded into this kernel). Needs root for the eBPF part.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
cargo build --quiet -p stockade-node --bin stockade
exec target/debug/stockade demo "$@"
