#!/usr/bin/env bash
# Issue 20, point 2: the default mix at 200 flows/s (scenarios/capacity.toml), bundled server,
# durable PostgreSQL, open model — RUNS runs (default 3), then the median and spread of each
# figure, and whether the targets held: every seed budget (the run's own verdict), late starts
# below 1 %, every integrity count zero.
#
#   scripts/capacity.sh                 # 3 runs at 200 flows/s
#   RATE=300 scripts/capacity.sh        # the stretch target
#   RUNS=1 SKIP_BUILD=1 scripts/capacity.sh
#
# Meaningful on a quiet machine only: the load average at the start of each run is printed
# beside its figures. Exit 0 when the medians meet every target, 1 otherwise.
source "$(dirname "$0")/lib/common.sh"

RUNS=${RUNS:-3}
RATE=${RATE:-200}
OUT=${OUT:-$ROOT/reports/capacity-$(date -u +%Y%m%dT%H%M%SZ)}

build
init_workdir
SCENARIO=$ROOT/scenarios/capacity.toml
if [[ $RATE != 200 ]]; then
    SCENARIO=$WORK/capacity-$RATE.toml
    sed -e "s/rate = 200.0/rate = $RATE.0/g" -e "s/^name = .*/name = \"capacity-$RATE\"/" \
        "$ROOT/scenarios/capacity.toml" >"$SCENARIO"
fi
mkdir -p "$OUT"
for i in $(seq "$RUNS"); do
    log "run $i of $RUNS at $RATE flows/s (load average: $(cut -d' ' -f1-3 /proc/loadavg))"
    code=0
    "$HARNESS" run "$SCENARIO" --db "${DB:-local}" --pg-durable --report-dir "$OUT/run-$i" --force --quiet \
        >"$OUT/run-$i.summary.txt" 2>"$OUT/run-$i.stderr.txt" || code=$?
    echo "$code" >"$OUT/run-$i.exit"
done

python3 - "$OUT" "$RUNS" <<'PY'
import json, statistics, sys
out, runs = sys.argv[1], int(sys.argv[2])
rows = []
for i in range(1, runs + 1):
    r = json.load(open(f"{out}/run-{i}/report.json"))
    ops, g, integ = r["operations"], r["generator"], r["integrity"]
    failures = sum(v for k, v in integ.items() if k not in
                   ("messages_sent", "messages_delivered", "messages_decrypted", "messages_redelivered"))
    failures += integ["messages_sent"] - integ["messages_decrypted"]
    rows.append({
        "bundle p95 ms": ops["bundle_fetch"]["p95_us"] / 1e3,
        "key insert p95 ms": ops["key_insert"]["p95_us"] / 1e3,
        "message p95 ms": ops["message_insert"]["p95_us"] / 1e3,
        "delivery p95 ms": ops["delivery"]["p95_us"] / 1e3,
        "late starts %": 100.0 * g["late_starts"] / max(1, g["flows_started"]),
        "flows/s": g["achieved_rate_per_s"],
        "integrity failures": failures,
        "budgets held": int(all(b["passed"] for b in r["budgets"])),
        "load avg (start)": r["environment"]["machine"]["load_avg_start"][0],
        "exit": int(open(f"{out}/run-{i}.exit").read()),
    })
print(f"{'':22}" + "".join(f"{'run ' + str(i + 1):>10}" for i in range(runs)) + f"{'median':>10}{'spread':>10}")
for key in rows[0]:
    vals = [row[key] for row in rows]
    print(f"{key:22}" + "".join(f"{v:10.2f}" for v in vals)
          + f"{statistics.median(vals):10.2f}{max(vals) - min(vals):10.2f}")
med = {k: statistics.median(row[k] for row in rows) for k in rows[0]}
ok = (med["bundle p95 ms"] < 10 and med["key insert p95 ms"] < 20 and med["message p95 ms"] < 100
      and med["late starts %"] < 1 and all(row["integrity failures"] == 0 for row in rows))
print(f"targets (budgets, late starts < 1 %, integrity 0) on the medians: {'MET' if ok else 'NOT MET'}")
print(f"reports: {out}/run-*/")
sys.exit(0 if ok else 1)
PY
