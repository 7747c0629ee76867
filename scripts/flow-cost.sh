#!/usr/bin/env bash
# What one flow of the default mix costs, in load-independent units: SQL statements, commits,
# WAL records, bytes and fsyncs (pg_stat_statements, pg_stat_wal, pg_stat_database), and CPU
# time of the reference server, of PostgreSQL and of the generator; with CALLGRIND=1 also the
# server's instructions (valgrind --tool=callgrind, a repeatable count whatever else runs).
#
# Method: the same scenario twice against a freshly started server (durable PostgreSQL with
# pg_stat_statements, started by this script), measured for SHORT and LONG seconds; everything
# both runs share (population set-up, connects, drain) cancels in the difference, which is
# divided by the difference in flows started.
#
#   scripts/flow-cost.sh                      # 50 flows/s, 10 s vs 30 s
#   RATE=100 SHORT=10 LONG=40 scripts/flow-cost.sh
#   CALLGRIND=1 RATE=10 scripts/flow-cost.sh  # + server instructions per flow (slow: valgrind)
#   SKIP_BUILD=1 HARNESS=... REFSERVER=... scripts/flow-cost.sh   # other binaries (e.g. before/after)
#
# Prints a table on stdout; the raw numbers of each run go to $OUT (default: a temp file).
source "$(dirname "$0")/lib/common.sh"

RATE=${RATE:-50}
SHORT=${SHORT:-10}
LONG=${LONG:-30}
CALLGRIND=${CALLGRIND:-0}

build
init_workdir
start_postgres

# One measured run of SECONDS; prints "key value" lines.
measure() {
    local secs=$1 run=$WORK/run-$1
    mkdir -p "$run"
    mix_scenario "$RATE" "$secs" "$run/scenario.toml"
    local port; port=$(free_port)
    local server=("$REFSERVER" --db "$DB_URL" --listen "127.0.0.1:$port")
    if [[ $CALLGRIND == 1 ]]; then
        server=(valgrind --tool=callgrind --callgrind-out-file="$run/callgrind.out" "${server[@]}")
    fi
    E2EE_LOG=warn "${server[@]}" >"$run/server.log" 2>&1 &
    local spid=$!
    PIDS+=("$spid")
    for _ in $(seq 600); do curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
    "${PSQL[@]}" -c "SELECT pg_stat_statements_reset(); SELECT pg_stat_reset(); SELECT pg_stat_reset_shared('wal');" >/dev/null
    local lsn0; lsn0=$("${PSQL[@]}" -c "SELECT pg_current_wal_insert_lsn()")
    local s0 p0; s0=$(cpu_seconds "$spid"); p0=$(pg_cpu_seconds)
    # What busy backends wait on, sampled 10 times a second (a "Lock/object" wait during commit
    # is the NOTIFY queue lock, "IO/WALSync" the commit flush).
    ( while true; do
        "${PSQL[@]}" -F '|' -c "SELECT 'wait', coalesce(wait_event_type, 'CPU') || '/' || coalesce(wait_event, 'running')
                                FROM pg_stat_activity WHERE state = 'active' AND backend_type = 'client backend'
                                AND pid <> pg_backend_pid() AND query NOT LIKE 'LISTEN%'" 2>/dev/null || true
        sleep 0.1
      done ) >"$run/waits.txt" &
    local sampler=$!
    "$HARNESS" run "$run/scenario.toml" --target "http://127.0.0.1:$port" \
        --report-dir "$run/report" --quiet >"$run/summary.txt" 2>"$run/harness.err" || true
    local s1 p1; s1=$(cpu_seconds "$spid"); p1=$(pg_cpu_seconds)
    kill "$sampler" 2>/dev/null; wait "$sampler" 2>/dev/null || true
    sort "$run/waits.txt" | uniq -c | sort -rn | awk '{ print "waitsample|" $1 "|" $2 }' | sed 's/|wait|/|/'
    kill -TERM "$spid"; wait "$spid" 2>/dev/null || true
    local lsn1; lsn1=$("${PSQL[@]}" -c "SELECT pg_current_wal_insert_lsn()")
    # Commits that must wait for a WAL flush: those of transactions that wrote WAL besides
    # their commit record (a transaction that wrote nothing else commits without waiting).
    "${PSQL[@]}" -c "SELECT pg_switch_wal()" >/dev/null
    as_pg "$PG_BIN/pg_waldump" -p "$PGDATA_DIR/pg_wal" -s "$lsn0" -e "$lsn1" 2>/dev/null | awk '
        { rmgr = $2; sub(/,$/, "", rmgr); tx = $0; sub(/.* tx: */, "", tx); sub(/,.*/, "", tx) }
        rmgr != "Transaction" && tx != 0 { wrote[tx] = 1 }
        rmgr == "Transaction" && / COMMIT / { commit[tx] = 1 }
        END { n = 0; m = 0; for (t in commit) { m++; if (t in wrote) n++ }
              print "durable_commits", n; print "commit_records", m }'
    python3 - "$run/report/report.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
g = r["generator"]
# Flows that finished (successes and failures), the denominator: under overload a started
# flow may still be running when a run ends.
print("flows", sum(o["count"] + o["errors"] for k, o in r["operations"].items() if k.startswith("flow_")))
print("envelopes", r["integrity"]["messages_sent"])
print("generator_cpu_s", g["process_cpu_s"])
print("passed", int(r["passed"]))
for f in r["failures"]:
    print("failure|" + str(f).replace("\n", " ")[:200])
PY
    echo "server_cpu_s $(awk -v a="$s0" -v b="$s1" 'BEGIN { print b - a }')"
    echo "postgres_cpu_s $(awk -v a="$p0" -v b="$p1" 'BEGIN { print b - a }')"
    # Round trips: statements the server sent (top level); nested ones are triggers and
    # foreign-key checks run inside them.
    "${PSQL[@]}" -F ' ' -c "SELECT 'statements', sum(calls) FROM pg_stat_statements WHERE toplevel AND query NOT LIKE '%pg_stat%'"
    "${PSQL[@]}" -F ' ' -c "SELECT 'nested_statements', coalesce(sum(calls), 0) FROM pg_stat_statements WHERE NOT toplevel"
    "${PSQL[@]}" -F ' ' -c "SELECT 'commits', xact_commit FROM pg_stat_database WHERE datname = 'bench'"
    "${PSQL[@]}" -F ' ' -c "SELECT 'wal_records', wal_records FROM pg_stat_wal"
    "${PSQL[@]}" -F ' ' -c "SELECT 'wal_bytes', wal_bytes FROM pg_stat_wal"
    "${PSQL[@]}" -F ' ' -c "SELECT 'wal_fsyncs', wal_sync FROM pg_stat_wal"
    # Per statement (first line of its text, whitespace squeezed).
    "${PSQL[@]}" -F '|' -c "SELECT 'stmt', calls, CASE WHEN toplevel THEN '' ELSE '(nested) ' END
                                    || regexp_replace(left(query, 90), '\s+', ' ', 'g')
                             FROM pg_stat_statements WHERE query NOT LIKE '%pg_stat%' ORDER BY calls DESC"
    if [[ $CALLGRIND == 1 ]]; then
        echo "server_instructions $(awk '/^(summary|totals):/ { print $2; exit }' "$run/callgrind.out")"
    fi
}

log "run 1: $RATE flows/s for $SHORT s"
measure "$SHORT" >"$WORK/short.txt"
log "run 2: $RATE flows/s for $LONG s"
measure "$LONG" >"$WORK/long.txt"
OUT=${OUT:-$(mktemp /tmp/flow-cost.XXXXXX.txt)}
cat "$WORK/short.txt" "$WORK/long.txt" >"$OUT"

python3 - "$WORK/short.txt" "$WORK/long.txt" <<'PY'
import sys
def read(path):
    vals, stmts = {}, {}
    for line in open(path):
        line = line.rstrip("\n")
        if line.startswith("waitsample|"):
            _, n, what = line.split("|", 2)
            stmts.setdefault("__waits", {})[what] = int(n)
            continue
        if line.startswith("failure|"):
            continue
        if line.startswith("stmt|"):
            _, calls, text = line.split("|", 2)
            stmts[text] = int(calls)
        elif line.strip():
            k, v = line.split(" ", 1)
            vals[k] = float(v) if v.strip() else 0.0
    return vals, stmts
(a, sa), (b, sb) = read(sys.argv[1]), read(sys.argv[2])
flows = b["flows"] - a["flows"]
print(f"per flow of the default mix (difference of two runs: {flows:.0f} flows, "
      f"{(b['envelopes'] - a['envelopes']) / flows:.2f} envelopes per flow; "
      f"runs passed: {int(a['passed'])}, {int(b['passed'])})")
rows = [("round trips (statements)", "statements", 1, ""),
        ("nested statements", "nested_statements", 1, ""), ("commits (incl. read-only)", "commits", 1, ""),
        ("WAL records", "wal_records", 1, ""), ("WAL bytes", "wal_bytes", 1, ""),
        ("commits waiting for a WAL flush", "durable_commits", 1, ""),
        ("WAL fsyncs (group commit shares them)", "wal_fsyncs", 1, ""),
        ("server CPU", "server_cpu_s", 1e3, " ms"), ("PostgreSQL CPU", "postgres_cpu_s", 1e3, " ms"),
        ("generator CPU", "generator_cpu_s", 1e3, " ms")]
if "server_instructions" in b:
    rows.append(("server instructions", "server_instructions", 1e-6, " M"))
for label, key, scale, unit in rows:
    print(f"  {label:28} {(b[key] - a[key]) / flows * scale:10.2f}{unit}")
waits = sb.pop("__waits", {})
sa.pop("__waits", None)
total = sum(waits.values())
if total:
    print(f"what active backends were doing in the long run ({total} samples of backends):")
    for what, n in sorted(waits.items(), key=lambda kv: -kv[1])[:8]:
        print(f"  {100 * n / total:5.1f} %  {what}")
print("statements per flow, by statement:")
for text in sorted(sb, key=lambda t: -(sb[t] - sa.get(t, 0))):
    d = (sb[text] - sa.get(text, 0)) / flows
    if abs(d) >= 0.005:
        print(f"  {d:7.3f}  {text}")
PY
grep -h '^failure|' "$WORK/short.txt" "$WORK/long.txt" | sort | uniq -c | head -5 >&2 || true
log "raw numbers: $OUT"
