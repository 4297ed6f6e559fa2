#!/usr/bin/env bash
# The main job: builds Stockade and runs `stockade demo`: a three-node cluster
# in network namespaces on this machine learns a sample application, enforces
# its policy in the kernel, and blocks and alerts on intruders. It leaves the
# cluster running (console URL and admin token printed); `stockade demo
# --down` removes it. Needs root. Arguments are passed on (e.g. --follow).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
cargo build --quiet -p stockade-node --bin stockade --bin stockade-demo-app
exec target/debug/stockade demo "$@"
