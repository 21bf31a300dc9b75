#!/usr/bin/env bash
# Make sure a Docker engine answers on /var/run/docker.sock.
# Installs Debian's docker.io if it is missing, and starts dockerd in the background
# if nothing answers. Only a dockerd started here is recorded (PID in $STATE/dockerd.pid),
# so scripts/docker-down.sh stops what we started and nothing else.
set -euo pipefail

STATE=${RUNNER_DOCKERD_STATE:-/var/lib/runner-dockerd}
SOCK=/var/run/docker.sock
# Debian's own client: the `docker` first on PATH may be a newer client that insists on buildx.
CLIENT=/usr/bin/docker

answers() { [ -S "$SOCK" ] && "$CLIENT" -H "unix://$SOCK" version --format '{{.Server.Version}}' >/dev/null 2>&1; }

if ! command -v dockerd >/dev/null 2>&1 || [ ! -x "$CLIENT" ]; then
    echo "docker-up: installing docker.io from the OS packages"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq -o DPkg::Lock::Timeout=600 docker.io >/dev/null
fi

if answers; then
    echo "docker-up: engine already running ($("$CLIENT" version --format '{{.Server.Version}}'))"
    exit 0
fi

mkdir -p "$STATE"
echo "docker-up: starting dockerd (log: $STATE/dockerd.log)"
# setsid: the engine must outlive this script and the make that called it.
setsid dockerd --host "unix://$SOCK" --pidfile "$STATE/dockerd.pid" >"$STATE/dockerd.log" 2>&1 < /dev/null &
for _ in $(seq 1 60); do
    if answers; then
        echo "docker-up: engine ready ($("$CLIENT" version --format '{{.Server.Version}}'), pid $(cat "$STATE/dockerd.pid"))"
        exit 0
    fi
    sleep 0.5
done
echo "docker-up: dockerd did not answer within 30 s; last lines of $STATE/dockerd.log:" >&2
tail -n 20 "$STATE/dockerd.log" >&2
exit 1
