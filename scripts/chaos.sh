#!/usr/bin/env bash
# Longer seeded chaos runs: `bash scripts/chaos.sh [RUNS] [MINUTES]` runs
# RUNS seeds (default 20) of MINUTES each (default 3), cycling 5 nodes with
# 5 voters, 3 nodes, and 7 nodes with 5 voters and 2 learners, all faults.
# Each run's report goes to chaos-runs/seed-N; a table of every run goes to
# chaos-runs/table.txt. Exits non-zero if any run failed a checker.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-20}
minutes=${2:-3}
cargo build --release -p stockade-node -p stockade-bpf -p stockade-chaos --bins
mkdir -p chaos-runs
table=chaos-runs/table.txt
printf '%-5s %-5s %-6s %-7s %-7s %-5s %-9s %-9s %-9s %s\n' seed nodes voters ops ok faults "rec.p99" "rec.max" "conv.max" verdict >"$table"
failed=0
for seed in $(seq 1 "$runs"); do
  case $((seed % 3)) in
    0) nodes=3 voters=3 ;;
    1) nodes=5 voters=5 ;;
    2) nodes=7 voters=5 ;;
  esac
  out=chaos-runs/seed-$seed
  rm -rf "$out"
  status=0
  target/release/stockade-chaos run --nodes "$nodes" --voters "$voters" --minutes "$minutes" \
    --seed "$seed" --faults all --out "$out" >"$out.log" 2>&1 || status=$?
  [ "$status" -eq 0 ] || failed=1
  python3 - "$out/report.json" "$seed" "$status" >>"$table" <<'PY'
import json, sys
path, seed, status = sys.argv[1], sys.argv[2], int(sys.argv[3])
try:
    r = json.load(open(path))
except OSError:
    print(f"{seed:<5} run could not be carried out (exit {status})")
    sys.exit()
ms = lambda v: "-" if v is None else f"{v:.0f}ms"
rec = r["recovery"]
print(f"{seed:<5} {r['nodes']:<5} {r['voters']:<6} {r['operations']['total']:<7} {r['operations']['ok']:<7} "
      f"{len(r['faults']):<5} {ms(rec['write_recovery_p99_ms']):<9} {ms(rec['write_recovery_max_ms']):<9} "
      f"{ms(rec['convergence_max_ms']):<9} {'PASS' if status == 0 else 'FAIL'}")
PY
  tail -1 "$table"
done
exit "$failed"
