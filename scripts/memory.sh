#!/usr/bin/env bash
# Issue 20, point 5: what a virtual device holding an open WebSocket costs the generator.
# Starts a durable PostgreSQL and the reference server as their own processes, then runs a
# short scenario whose memory probe registers and connects DEVICES devices (default 10,000)
# with `--target`, so the figure is the generator's alone. Prints the generator's KiB per
# device and peak RSS (from report.json) and, for comparison, the server's RSS growth.
#
#   scripts/memory.sh                   # 10,000 devices
#   DEVICES=2000 SKIP_BUILD=1 scripts/memory.sh
#
# Target (issue 20): at most 50 KiB per device for the generator.
source "$(dirname "$0")/lib/common.sh"

DEVICES=${DEVICES:-10000}
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
build
init_workdir
start_postgres
start_server
cat >"$WORK/memory.toml" <<TOML
name = "memory-probe"
description = "Memory per WebSocket device: the probe, then a few seconds of light load"
model = "open"
seed = 5
warmup = "1s"
drain = "2s"
memory_probe_devices = $DEVICES
max_late_starts = 0.5
duration = "3s"

[population]
users = 10
devices_per_user = 2
one_time_prekeys = 10
replenish_threshold = 2

[open]
rate = 2.0

[mix]
initiate = 1
TOML
status_kib() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }
server_before=$(status_kib "$SERVER_PID" VmRSS)
log "probing $DEVICES devices against $SERVER_URL"
"$HARNESS" run "$WORK/memory.toml" --target "$SERVER_URL" --report-dir "$WORK/report" --quiet \
    >"$WORK/summary.txt" 2>"$WORK/harness.err" || { cat "$WORK/harness.err" >&2; die "the run failed"; }
server_after=$(status_kib "$SERVER_PID" VmHWM)
python3 - "$WORK/report/report.json" "$server_before" "$server_after" <<'PY'
import json, sys
g = json.load(open(sys.argv[1]))["generator"]
n = g["ws_probe_devices"]
kib = g["memory_per_ws_device_bytes"] / 1024
print(f"devices probed:                   {n}")
print(f"generator, per WebSocket device:  {kib:.1f} KiB  (target <= 50 KiB: {'met' if kib <= 50 else 'NOT met'})")
print(f"generator peak RSS:               {g['peak_rss_bytes'] / 2**20:.1f} MiB")
grow = (int(sys.argv[3]) - int(sys.argv[2])) / max(1, n)
print(f"server, peak RSS growth per device: {grow:.1f} KiB (its side of each connection; peak RSS {int(sys.argv[3]) / 1024:.1f} MiB)")
PY
