#!/usr/bin/env bash
# Start the agent and the dashboard in the background, with pid files and logs under logs/.
#   ./launch_all.sh [agent args...]   start both (agent args go to `aitrader run`)
#   ./launch_all.sh --stop            stop both (SIGTERM: the agent finishes its tick and exits 0)
#   ./launch_all.sh --status          report whether each is running, and the agent's status
set -euo pipefail
cd "$(dirname "$0")"
HOME_DIR="${AITRADER_HOME:-$PWD}"
LOGS="$HOME_DIR/logs"
PY="${PYTHON:-$PWD/.venv/bin/python}"
mkdir -p "$LOGS"
[ -x "$PY" ] || { echo "launch_all.sh: $PY not found; run 'make install' first" >&2; exit 2; }

running() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

start_one() {  # name pidfile command...
  local name=$1 pidfile=$2; shift 2
  if running "$pidfile"; then echo "$name already running (pid $(cat "$pidfile"))"; return; fi
  nohup "$@" >>"$LOGS/$name.log" 2>&1 &
  echo $! >"$pidfile"
  echo "$name started (pid $!, log $LOGS/$name.log)"
}

stop_one() {  # name pidfile
  local name=$1 pidfile=$2
  if running "$pidfile"; then
    kill -TERM "$(cat "$pidfile")"
    for _ in $(seq 1 60); do running "$pidfile" || break; sleep 0.5; done
    running "$pidfile" && { echo "$name did not stop; sending SIGKILL"; kill -KILL "$(cat "$pidfile")"; }
    echo "$name stopped"
  else
    echo "$name not running"
  fi
  rm -f "$pidfile"
}

case "${1:-}" in
  --stop)
    stop_one agent "$LOGS/agent.pid"
    stop_one dashboard "$LOGS/dashboard.pid"
    ;;
  --status)
    for n in agent dashboard; do
      if running "$LOGS/$n.pid"; then echo "$n: running (pid $(cat "$LOGS/$n.pid"))"; else echo "$n: stopped"; fi
    done
    "$PY" -m aitrader --home "$HOME_DIR" status || true
    ;;
  *)
    start_one agent "$LOGS/agent.pid" "$PY" -m aitrader --home "$HOME_DIR" run "$@"
    start_one dashboard "$LOGS/dashboard.pid" "$PY" -m aitrader --home "$HOME_DIR" dashboard
    ;;
esac
