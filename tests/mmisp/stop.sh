#!/usr/bin/env bash
# Stop the mmisp-api started by tests/mmisp/start.sh (by its PID file only).
#   MMISP_STATE_DIR  state dir (default tests/mmisp/.state)
#   --clean          also remove the state dir (db, key, log)
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
STATE="${MMISP_STATE_DIR:-$HERE/.state}"
PIDFILE="$STATE/server.pid"

if [[ -f "$PIDFILE" ]]; then
  pid="$(cat "$PIDFILE")"
  if [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null &&
     tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q 'mmisp.api.main:app'; then
    kill -TERM "$pid"
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then
      echo "mmisp: pid $pid ignored SIGTERM for 10s, sending SIGKILL" >&2
      kill -KILL "$pid" 2>/dev/null || true
    fi
    echo "mmisp: stopped (pid $pid)"
  else
    echo "mmisp: not running (stale pid file)"
  fi
  rm -f "$PIDFILE"
else
  echo "mmisp: not running (no pid file)"
fi
if [[ "${1:-}" == "--clean" ]]; then
  rm -rf "$STATE"
fi
