#!/usr/bin/env bash
# Stop the dockerd that scripts/docker-up.sh started (by its PID), and nothing else.
set -euo pipefail
STATE=${RUNNER_DOCKERD_STATE:-/var/lib/runner-dockerd}
PIDFILE="$STATE/dockerd.pid"
if [ ! -f "$PIDFILE" ]; then
    echo "docker-down: no dockerd started by docker-up; nothing to stop"
    exit 0
fi
pid=$(cat "$PIDFILE")
if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -0 "$pid" 2>/dev/null && { echo "docker-down: dockerd $pid did not stop" >&2; exit 1; }
fi
rm -f "$PIDFILE"
echo "docker-down: stopped dockerd $pid"
