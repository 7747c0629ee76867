#!/usr/bin/env bash
# Issue 20, point 3: the generator's CPU per request against a plain HTTP load tool, on the
# same route of the same separately started server, at the same rate and connections.
#
# The harness runs the `fetch` flow (one bundle fetch, claims recorded, nothing else) with
# `--target`; oha sends the same authenticated `GET /v1/keys/{user}` at the same rate with as
# many connections as the harness opened. Each tool runs twice (SHORT and LONG seconds) and
# the CPU per request is the difference of CPU over the difference of requests, so start-up
# (the harness registers and connects its population first) cancels out.
#
#   scripts/peer-cost.sh                    # 200 requests/s, 10 s and 30 s
#   RATE=400 LONG=60 SKIP_BUILD=1 scripts/peer-cost.sh
#
# Needs oha on PATH (`cargo install oha --locked`). Target (issue 20): within 2x of oha.
source "$(dirname "$0")/lib/common.sh"

RATE=${RATE:-200}
SHORT=${SHORT:-10}
LONG=${LONG:-30}
USERS=${USERS:-200}
TOKEN=peer-cost-token
command -v oha >/dev/null || die "oha is missing (cargo install oha --locked)"
build
init_workdir
start_postgres
start_server
PORT=${SERVER_URL##*:}

# Runs `$@` and prints the CPU seconds (user + system) it and its children used.
cpu_of() {
    python3 - "$@" <<'PY'
import resource, subprocess, sys
subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
r = resource.getrusage(resource.RUSAGE_CHILDREN)
print(f"{r.ru_utime + r.ru_stime:.4f}")
PY
}

# HTTP connections from the harness to the server right now: established sockets to the
# server's port minus the population's WebSockets (one per device).
http_connections() {
    local all
    all=$(ss -Htn state established "( dport = :$PORT )" | wc -l)
    echo $((all - USERS))
}

scenario() {
    cat >"$WORK/fetch-$1.toml" <<TOML
name = "peer-cost-fetch"
description = "bundle fetch alone, for the generator's CPU per request"
model = "open"
seed = 20
warmup = "2s"
drain = "2s"
memory_probe_devices = 0
max_late_starts = 1.0
duration = "$1s"

[population]
users = $USERS
devices_per_user = 1
one_time_prekeys = 100
replenish_threshold = 10

[open]
rate = $RATE.0

[mix]
fetch = 1
TOML
}

# One harness run of SECONDS; prints "requests cpu_s connections".
harness_run() {
    local secs=$1 dir=$WORK/harness-$1
    scenario "$secs"
    ( sleep $((secs / 2 + 5)); http_connections >"$dir.conns" ) &
    local sampler=$!
    "$HARNESS" run "$WORK/fetch-$secs.toml" --target "$SERVER_URL" --report-dir "$dir" \
        --force --quiet >/dev/null 2>"$dir.err" || true
    wait "$sampler" 2>/dev/null || true
    [[ -f $dir/report.json ]] || { cat "$dir.err" >&2; die "the harness run wrote no report"; }
    python3 - "$dir/report.json" "$(cat "$dir.conns" 2>/dev/null || echo 0)" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
op = r["operations"]["bundle_fetch"]
print(op["count"] + op["errors"], r["generator"]["process_cpu_s"], sys.argv[2])
PY
}

# A fetcher and a target user for oha, written directly: the bundle read never checks keys,
# and the target holds more one-time prekeys than oha can claim.
"${PSQL[@]}" >/dev/null <<SQL
INSERT INTO users (id) VALUES ('00000000-0000-4000-8000-00000000f001'), ('00000000-0000-4000-8000-00000000f002');
INSERT INTO devices (user_id, device_id, registration_id, identity_key, token_hash)
SELECT u::uuid, 1, 1, sha256(u::bytea), CASE WHEN u LIKE '%1' THEN sha256('$TOKEN'::bytea) ELSE sha256(('x' || u)::bytea) END
FROM unnest(ARRAY['00000000-0000-4000-8000-00000000f001', '00000000-0000-4000-8000-00000000f002']) AS u;
INSERT INTO signed_prekeys (device, key_id, public_key, signature, active)
SELECT id, 1, sha256(user_id::text::bytea), sha512(user_id::text::bytea), true FROM devices
WHERE user_id = '00000000-0000-4000-8000-00000000f002';
INSERT INTO one_time_prekeys (device, key_id, public_key)
SELECT d.id, i, sha256(i::text::bytea) FROM devices d, generate_series(1, 100000) AS i
WHERE d.user_id = '00000000-0000-4000-8000-00000000f002';
SQL
OHA_URL="$SERVER_URL/v1/keys/00000000-0000-4000-8000-00000000f002"
curl -fsS -H "Authorization: Bearer $TOKEN" "$OHA_URL" >/dev/null || die "the oha route does not answer 200"

# One oha run of SECONDS with CONNS connections; prints "requests cpu_s".
oha_run() {
    local secs=$1 conns=$2 out=$WORK/oha-$1.json cpu
    cpu=$(cpu_of oha -z "${secs}s" -q "$RATE" -c "$conns" --no-tui --output-format json \
        -o "$out" -H "Authorization: Bearer $TOKEN" "$OHA_URL")
    python3 - "$out" "$cpu" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
codes = r.get("statusCodeDistribution", {})
print(sum(codes.values()), sys.argv[2], codes.get("200", 0))
PY
}

log "harness: $RATE requests/s, ${SHORT} s"
read -r h_short_n h_short_cpu _ <<<"$(harness_run "$SHORT")"
[[ -n ${h_short_n:-} ]] || exit 1
log "harness: $RATE requests/s, ${LONG} s"
read -r h_long_n h_long_cpu conns <<<"$(harness_run "$LONG")"
[[ -n ${h_long_n:-} ]] || exit 1
((conns >= 1)) || conns=1
# The harness keeps idle CPUs polling while it runs (src/load/wakeup.rs; E2EE_HARNESS_IDLE=sleep
# turns that off): oha is measured on the same machine state, held by a small process of
# this script's own for as long as oha runs.
IDLE=polling
if [[ ${E2EE_HARNESS_IDLE:-} != sleep && -w /dev/cpu_dma_latency ]]; then
    python3 -c 'import os, struct, time
fd = os.open("/dev/cpu_dma_latency", os.O_WRONLY)
os.write(fd, struct.pack("i", 0))
time.sleep(1e9)' &
    IDLE_HOLDER=$!
    PIDS+=("$IDLE_HOLDER")
else
    IDLE="may sleep"
fi
log "oha: $RATE requests/s, $conns connection(s), ${SHORT} s and ${LONG} s"
read -r o_short_n o_short_cpu _ <<<"$(oha_run "$SHORT" "$conns")"
read -r o_long_n o_long_cpu o_ok <<<"$(oha_run "$LONG" "$conns")"
[[ -n ${IDLE_HOLDER:-} ]] && kill "$IDLE_HOLDER" 2>/dev/null
log "idle CPUs during both tools' runs: $IDLE"

python3 - "$RATE" "$conns" "$h_short_n" "$h_short_cpu" "$h_long_n" "$h_long_cpu" \
    "$o_short_n" "$o_short_cpu" "$o_long_n" "$o_long_cpu" "$o_ok" <<'PY'
import sys
rate, conns = sys.argv[1], sys.argv[2]
hs, hsc, hl, hlc, os_, osc, ol, olc = map(float, sys.argv[3:11])
o_ok = int(sys.argv[11])
h = (hlc - hsc) / (hl - hs) * 1e6
o = (olc - osc) / (ol - os_) * 1e6
print(f"rate {rate}/s, {conns} HTTP connection(s); CPU per request (difference of a long and a short run)")
print(f"  e2ee-harness fetch flow: {h:7.1f} µs  ({int(hl - hs)} requests, {hlc - hsc:.3f} s CPU)")
print(f"  oha, same route:         {o:7.1f} µs  ({int(ol - os_)} requests, {olc - osc:.3f} s CPU; {o_ok} of {int(ol)} answered 200 in the long run)")
print(f"  ratio harness / oha:     {h / o:7.2f}  (target: at most 2)")
print(f"  load average now: {open('/proc/loadavg').read().split()[0]}")
PY
