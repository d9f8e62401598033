#!/usr/bin/env bash
# Run one aitrader job from cron: cd to the install dir, never overlap, log to logs/.
#
#   cron/ai_agent_cron.sh JOB [ARGS...]     e.g.  cron/ai_agent_cron.sh retrain --symbols GOOG
#
# JOB is an `aitrader` command (retrain, self-learn, data ...). The install dir is this
# script's parent directory (override with AITRADER_INSTALL_DIR); the venv is its
# .venv/bin/python; AITRADER_HOME defaults to the install dir. Output (stdout+stderr) is
# appended to logs/cron-JOB.log. If the previous run of the same JOB still holds its flock,
# this run logs "skipped" and exits 0 (retrain also has its own lock inside aitrader).
set -euo pipefail

INSTALL_DIR="${AITRADER_INSTALL_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
cd "$INSTALL_DIR"
JOB="${1:-}"
if [[ -z "$JOB" || ! "$JOB" =~ ^[a-z][a-z-]*$ ]]; then
    echo "usage: $0 JOB [ARGS...]   (JOB: an aitrader command such as retrain or self-learn)" >&2
    exit 2
fi
shift
export AITRADER_HOME="${AITRADER_HOME:-$INSTALL_DIR}"
# 2 cores: keep numeric libraries from oversubscribing them.
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}" MKL_NUM_THREADS="${MKL_NUM_THREADS:-2}" PYTHONHASHSEED=0
mkdir -p logs
LOG="logs/cron-${JOB}.log"
LOCK="logs/.cron-${JOB}.lock"
PY="$INSTALL_DIR/.venv/bin/python"
stamp() { date -u +%Y-%m-%dT%H:%M:%SZ; }

if [[ ! -x "$PY" ]]; then
    echo "$(stamp) $JOB: $PY not found: run 'make install' in $INSTALL_DIR" >>"$LOG"
    exit 3
fi

exec 9>"$LOCK"
if ! flock -n 9; then
    echo "$(stamp) $JOB: previous run still going: skipped" >>"$LOG"
    exit 0
fi

rc=0
{
    echo "=== $(stamp) start: aitrader $JOB $*"
    "$PY" -m aitrader "$JOB" "$@" || rc=$?
    echo "=== $(stamp) end: aitrader $JOB rc=$rc"
} >>"$LOG" 2>&1
exit "$rc"
