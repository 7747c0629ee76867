# Shared by the scripts in scripts/: a throwaway durable PostgreSQL with pg_stat_statements,
# the reference server started on its own, and cleanup of both on any exit.
# Source it; it defines functions only. Everything it starts is stopped by `cleanup` (installed
# as the EXIT/INT/TERM trap by `init_workdir`).

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
HARNESS=${HARNESS:-$TARGET_DIR/release/e2ee-harness}
REFSERVER=${REFSERVER:-$TARGET_DIR/release/reference-server}
PIDS=()

log() { echo "[$(date +%H:%M:%S)] $*" >&2; }
die() { echo "error: $*" >&2; exit 2; }

init_workdir() {
    WORK=$(mktemp -d /tmp/e2ee-bench.XXXXXX)
    chmod 755 "$WORK"
    trap cleanup EXIT
    trap 'exit 130' INT TERM
}

cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
    done
    if [[ -n "${PGDATA_DIR:-}" && -f "$PGDATA_DIR/postmaster.pid" ]]; then
        as_pg "$PG_BIN/pg_ctl" -D "$PGDATA_DIR" -m immediate stop >/dev/null 2>&1 || true
    fi
    [[ -n "${WORK:-}" ]] && rm -rf "$WORK"
}

build() {
    if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
        log "building release binaries (SKIP_BUILD=1 skips)"
        (cd "$ROOT" && cargo build --release -q -p e2ee-harness -p reference-server)
    fi
    [[ -x "$HARNESS" && -x "$REFSERVER" ]] || die "missing $HARNESS or $REFSERVER"
}

find_pg_bin() {
    if [[ -n "${PG_BIN:-}" ]]; then return; fi
    PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
    [[ -x "$PG_BIN/initdb" ]] || die "no PostgreSQL binaries (apt-get install postgresql, or PG_BIN=DIR)"
}

# PostgreSQL refuses to run as root.
as_pg() {
    if [[ $(id -u) == 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Starts a durable PostgreSQL (fsync and synchronous_commit on) with pg_stat_statements;
# sets DB_URL and PSQL.
start_postgres() {
    find_pg_bin
    PGDATA_DIR=$WORK/pgdata
    mkdir -p "$PGDATA_DIR"
    [[ $(id -u) == 0 ]] && chown postgres "$WORK" "$PGDATA_DIR"
    as_pg "$PG_BIN/initdb" -D "$PGDATA_DIR" -U postgres --auth=trust -E UTF8 >/dev/null
    PG_PORT=$(free_port)
    as_pg "$PG_BIN/pg_ctl" -D "$PGDATA_DIR" -l "$WORK/postgres.log" -w -o \
        "-p $PG_PORT -k $WORK -c listen_addresses=127.0.0.1 -c fsync=on -c synchronous_commit=on \
         -c max_connections=200 -c shared_preload_libraries=pg_stat_statements \
         -c pg_stat_statements.track=all" start >/dev/null
    PSQL=("$PG_BIN/psql" -X -q -A -t -h 127.0.0.1 -p "$PG_PORT" -U postgres)
    "${PSQL[@]}" -d postgres -c "CREATE DATABASE bench"
    "${PSQL[@]}" -d bench -c "CREATE EXTENSION pg_stat_statements"
    PSQL+=(-d bench)
    DB_URL="postgres://postgres@127.0.0.1:$PG_PORT/bench"
    log "PostgreSQL $("${PSQL[@]}" -c 'SHOW server_version') at $DB_URL (durable)"
}

# Starts the reference server on its own (release build); sets SERVER_URL and SERVER_PID.
start_server() {
    local port
    port=$(free_port)
    E2EE_LOG=warn "$REFSERVER" --db "$DB_URL" --listen "127.0.0.1:$port" \
        ${POOL_SIZE:+--pool-size "$POOL_SIZE"} >"$WORK/server.log" 2>&1 &
    SERVER_PID=$!
    PIDS+=("$SERVER_PID")
    SERVER_URL="http://127.0.0.1:$port"
    for _ in $(seq 100); do
        if curl -fsS "$SERVER_URL/healthz" >/dev/null 2>&1; then
            log "reference server (pid $SERVER_PID) at $SERVER_URL"
            return
        fi
        sleep 0.1
    done
    cat "$WORK/server.log" >&2
    die "the reference server did not answer /healthz"
}

# CPU seconds (user + system) a process has used so far, and those of its reaped children.
cpu_seconds() {
    awk -v hz="$(getconf CLK_TCK)" '{ print ($14 + $15 + $16 + $17) / hz }' "/proc/$1/stat"
}

# CPU seconds of every PostgreSQL process of our cluster (postmaster, its reaped children,
# and the live ones).
pg_cpu_seconds() {
    local pm total=0 c
    pm=$(head -1 "$PGDATA_DIR/postmaster.pid")
    total=$(cpu_seconds "$pm")
    for c in $(pgrep -P "$pm"); do
        total=$(awk -v a="$total" -v b="$(cpu_seconds "$c" 2>/dev/null || echo 0)" 'BEGIN { print a + b }')
    done
    echo "$total"
}

# A copy of the default mix at RATE flows/s for SECONDS measured seconds (after 5 s warm-up).
mix_scenario() {
    local rate=$1 seconds=$2 out=$3
    python3 - "$ROOT/scenarios/default.toml" "$rate" "$seconds" "$out" <<'PY'
import re, sys
src, rate, secs, out = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
text = open(src).read()
text = re.sub(r'(?m)^name = .*$', f'name = "mix-{rate:g}"', text, count=1)
text = re.sub(r'(?m)^warmup = .*$', 'warmup = "5s"', text, count=1)
text = re.sub(r'(?m)^memory_probe_devices = .*$', 'memory_probe_devices = 0', text, count=1)
text = re.sub(r'(?ms)^\[open\].*?^\]\n',
              f'[open]\nstart_rate = {rate/2:g}\nstages = [\n    {{ duration = "5s", rate = {rate:g} }},\n'
              f'    {{ duration = "{secs}s", rate = {rate:g} }},\n]\n', text, count=1)
open(out, 'w').write(text)
PY
}
