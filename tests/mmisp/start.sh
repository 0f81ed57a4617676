#!/usr/bin/env bash
# Start a local mmisp-api ("Modern MISP", a Python/FastAPI re-implementation of MISP's REST API)
# on 127.0.0.1 with a fresh SQLite database, for wazuh-misp integration tests.
#
#   tests/mmisp/start.sh [--seed]
#
# - installs the pinned requirements.txt into a cached venv (once; reused while requirements.txt
#   and the interpreter are unchanged),
# - creates a fresh SQLite DB + organisation + site-admin user + API auth key,
# - starts uvicorn in the background (PID file), waits until an authenticated
#   GET /servers/getVersion answers 200,
# - writes the API key to $STATE/api_key and the base URL to $STATE/base_url,
# - with --seed, also runs seed.py (known event set; manifest in $STATE/seed.json).
# If our server is already running it is left alone (and still reported ready).
#
# Environment (all optional):
#   MMISP_PORT           port on 127.0.0.1 (default 18080)
#   MMISP_STATE_DIR      state dir: db, key, pid, log (default tests/mmisp/.state)
#   MMISP_VENV           venv dir (default ${XDG_CACHE_HOME:-~/.cache}/wazuh-misp/mmisp-venv)
#   MMISP_PYTHON         interpreter for the venv (default: first of python3.11 python3.12 python3.13 python3 that is >= 3.11)
#   MMISP_API_KEY        use this 40-char key instead of a random one
#   MMISP_START_TIMEOUT  seconds to wait for readiness (default 90)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PORT="${MMISP_PORT:-18080}"
STATE="${MMISP_STATE_DIR:-$HERE/.state}"
VENV="${MMISP_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/wazuh-misp/mmisp-venv}"
REQ="$HERE/requirements.txt"
BASE="http://127.0.0.1:$PORT"
TIMEOUT="${MMISP_START_TIMEOUT:-90}"
PIDFILE="$STATE/server.pid"
LOG="$STATE/server.log"
KEYFILE="$STATE/api_key"
SEED=0
for arg in "$@"; do
  case "$arg" in
    --seed) SEED=1 ;;
    -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
    *) echo "mmisp: unknown argument: $arg" >&2; exit 2 ;;
  esac
done

log() { echo "mmisp: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

mkdir -p "$STATE"

# ---------------------------------------------------------------- interpreter + venv
find_python() {
  local c
  for c in ${MMISP_PYTHON:-} python3.11 python3.12 python3.13 python3; do
    if command -v "$c" >/dev/null 2>&1 &&
       "$c" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' >/dev/null 2>&1; then
      command -v "$c"; return 0
    fi
  done
  return 1
}

ensure_venv() {
  local py stamp want
  py="$(find_python)" || die "need Python >= 3.11 (mmisp-api requires it); set MMISP_PYTHON"
  want="$(cat "$REQ" | sha256sum | cut -c1-16) $("$py" -c 'import sys; print(sys.version.split()[0])')"
  mkdir -p "$(dirname "$VENV")"
  exec 9>"$VENV.lock"
  flock 9                                  # concurrent start.sh runs: one installs, the others wait
  stamp="$(cat "$VENV/.wazuh-misp-stamp" 2>/dev/null || true)"
  if [[ "$stamp" == "$want" && -x "$VENV/bin/python" ]] &&
     "$VENV/bin/python" -c 'import mmisp.api, uvicorn, aiosqlite' >/dev/null 2>&1; then
    flock -u 9; return 0
  fi
  log "installing mmisp-api into $VENV (python: $py) ..."
  local t0=$SECONDS
  rm -rf "$VENV"
  "$py" -m venv "$VENV"
  "$VENV/bin/python" -m pip install --disable-pip-version-check --no-input -q -r "$REQ" \
    > "$STATE/pip-install.log" 2>&1 || { tail -30 "$STATE/pip-install.log" >&2; rm -rf "$VENV"; die "pip install failed (log: $STATE/pip-install.log)"; }
  "$VENV/bin/python" -c 'import mmisp.api, uvicorn, aiosqlite' || die "venv import check failed"
  echo "$want" > "$VENV/.wazuh-misp-stamp"
  log "installed in $((SECONDS - t0))s"
  flock -u 9
}

# ---------------------------------------------------------------- helpers
# http_status URL [KEYFILE] -> prints HTTP status (000 when unreachable)
http_status() {
  "$PY" - "$1" "${2:-}" <<'EOF'
import sys, urllib.request, urllib.error
url, keyfile = sys.argv[1], sys.argv[2]
h = {"Accept": "application/json"}
if keyfile:
    try:
        h["Authorization"] = open(keyfile).read().strip()
    except OSError:
        pass
try:
    with urllib.request.urlopen(urllib.request.Request(url, headers=h), timeout=3) as r:
        print(r.status)
except urllib.error.HTTPError as e:
    print(e.code)
except Exception:
    print("000")
EOF
}

our_pid_alive() {
  local pid
  [[ -f "$PIDFILE" ]] || return 1
  pid="$(cat "$PIDFILE")"
  [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null &&
    tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q 'mmisp.api.main:app'
}

wait_ready() {
  local deadline=$((SECONDS + TIMEOUT)) st
  while (( SECONDS < deadline )); do
    st="$(http_status "$BASE/servers/getVersion" "$KEYFILE")"
    [[ "$st" == 200 ]] && return 0
    our_pid_alive || { tail -40 "$LOG" >&2 2>/dev/null || true; die "mmisp-api exited during startup (log: $LOG)"; }
    sleep 0.5
  done
  tail -40 "$LOG" >&2 2>/dev/null || true
  die "mmisp-api not ready after ${TIMEOUT}s (last status $st, log: $LOG)"
}

ready() {
  echo "$BASE" > "$STATE/base_url"
  if (( SEED )); then
    "$PY" "$HERE/seed.py" "$BASE" "$KEYFILE" --out "$STATE/seed.json" >&2
  fi
  echo "mmisp: ready on $BASE"
}

# ---------------------------------------------------------------- main
T_START=$SECONDS
ensure_venv
PY="$VENV/bin/python"

if our_pid_alive; then
  wait_ready
  log "already running (pid $(cat "$PIDFILE"))"
  ready
  exit 0
fi
rm -f "$PIDFILE"

st="$(http_status "$BASE/servers/getVersion")"
[[ "$st" == 000 ]] || die "port $PORT on 127.0.0.1 is taken by something else (HTTP $st); set MMISP_PORT"

# fresh database, fresh secrets
rm -f "$STATE"/mmisp.db "$STATE"/mmisp.db-journal "$STATE"/mmisp.db-wal "$STATE"/mmisp.db-shm "$KEYFILE"
rand() { "$PY" -c 'import secrets; print(secrets.token_hex(24))'; }
ENVFILE="$STATE/mmisp.env"
cat > "$ENVFILE" <<EOF
# generated by tests/mmisp/start.sh — read by mmisp (ENV_FILE) and by bootstrap_db.py
DATABASE_URL=sqlite+aiosqlite:///$STATE/mmisp.db
HASH_SECRET=$(rand)
WORKER_KEY=$(rand)
# mmisp-worker is not run; only the /worker/* and /jobs/* routes talk to it
WORKER_URL=http://127.0.0.1:9
DB_RETRY=1
DB_MAX_RETRIES=3
EOF
set -a; . "$ENVFILE"; set +a
export ENV_FILE="$ENVFILE"

cd "$STATE"      # mmisp also load_dotenv()s ./.env: keep the caller's cwd out of it
# The server touches the DB only per request, so it is started first and imports (~3-8 s)
# while bootstrap_db.py creates the schema, org, user and key in parallel.
: > "$LOG"
setsid nohup "$VENV/bin/uvicorn" mmisp.api.main:app --host 127.0.0.1 --port "$PORT" \
  --workers 1 >> "$LOG" 2>&1 < /dev/null &
echo $! > "$PIDFILE"
log "started pid $(cat "$PIDFILE"), bootstrapping db ..."
if ! "$PY" "$HERE/bootstrap_db.py" "$KEYFILE" ${MMISP_API_KEY:+"$MMISP_API_KEY"} >&2; then
  kill "$(cat "$PIDFILE")" 2>/dev/null || true; rm -f "$PIDFILE"
  die "database bootstrap failed"
fi
log "waiting for $BASE ..."
wait_ready
log "up in $((SECONDS - T_START))s"
ready
