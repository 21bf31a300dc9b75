# shellcheck shell=bash disable=SC2034  # (settings are used by the scripts sourcing this)
# Shared settings and helpers of the development cluster's scripts
# (build.sh, up.sh, down.sh). Sourced, not run. See README.md for the layout.
set -Eeuo pipefail

CLUSTER_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# --- fixed paths (documented in README.md) -----------------------------------
STATE_DIR=/var/lib/runner-cluster      # everything of a running cluster; removed by down.sh
RUN_DIR=/run/runner-cluster            # sockets and containerd's runtime state; removed by down.sh
CACHE_DIR=${RUNNER_CLUSTER_CACHE:-/var/cache/runner-cluster}  # builds and Go build cache; kept
LOG_DIR=$STATE_DIR/logs
PID_DIR=$STATE_DIR/pids
PKI_DIR=$STATE_DIR/pki
KUBECONFIG_FILE=$STATE_DIR/kubeconfig  # admin kubeconfig for users and tests
BIN_LINK=$STATE_DIR/bin                # symlink to the build this cluster runs (kubectl is there)
LOCK_FILE=$CACHE_DIR/cluster.lock

# --- network and names --------------------------------------------------------
REGISTRY=127.0.0.1:5000
NODE_NAME=runner-node
SERVICE_CIDR=10.96.0.0/16
API_SERVICE_IP=10.96.0.1
POD_CIDR=10.88.0.0/16
BRIDGE=rcbr0                           # the pods' CNI bridge
CNI_NETWORK=runner-cluster
CONTAINERD_SOCK=$RUN_DIR/containerd.sock
ETCD_URL=http://127.0.0.1:2379
API_URL=https://127.0.0.1:6443
PAUSE_IMAGE=$REGISTRY/runner-cluster/pause:3.10
BUSYBOX_IMAGE=$REGISTRY/runner-cluster/busybox:1.35
CNI_BIN_DIR=/usr/lib/cni               # Debian's containernetworking-plugins

# Components in start order; down.sh stops them in reverse.
COMPONENTS=(registry etcd kube-apiserver kube-controller-manager kube-scheduler
            containerd kubelet kube-proxy hostpath-provisioner)

# Debian's tools live in sbin; the Go toolchain in /usr/local/go/bin on our machines.
export PATH=$PATH:/usr/local/go/bin:/usr/local/sbin:/usr/sbin:/sbin

# Name the command that failed when "set -e" ends a script.
trap 'log "ERROR: failed (status $?) at ${BASH_SOURCE[0]##*/}:$LINENO: $BASH_COMMAND"' ERR

log() { printf '[cluster %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# Kubernetes version: the k8s.io/kubernetes requirement in go.mod.
k8s_version() { awk '$1 == "k8s.io/kubernetes" && $2 ~ /^v/ {print $2; exit}' "$CLUSTER_SRC/go.mod"; }

# --- daemons, tracked by PID file ---------------------------------------------
# A PID file holds "PID STARTTIME" (field 22 of /proc/PID/stat), so that a PID
# reused by another process after a reboot is never mistaken for ours.

proc_starttime() {  # PID -> start time in clock ticks since boot; fails if gone or a zombie
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }                  # drop "PID (comm) ": comm may hold spaces
  set -- $stat
  [[ $1 != Z ]] || return 1          # exited, not yet reaped by its parent
  echo "${20}"                       # field 22 overall is the 20th after comm
}

# daemon_pid NAME: print the PID of our running NAME, or fail.
daemon_pid() {
  local file=$PID_DIR/$1.pid pid start
  [[ -r $file ]] || return 1
  read -r pid start < "$file" || return 1
  [[ -n $pid && "$(proc_starttime "$pid" || true)" == "$start" ]] || return 1
  echo "$pid"
}

daemon_alive() { daemon_pid "$1" > /dev/null; }

# start_daemon NAME COMMAND...: run COMMAND in its own session (so that it
# outlives the calling shell, make and its process group), output appended to
# $LOG_DIR/NAME.log, all other inherited descriptors closed.
start_daemon() {
  local name=$1; shift
  mkdir -p "$LOG_DIR" "$PID_DIR"
  printf '\n==== %s starting %s\n' "$(date '+%F %T')" "$name" >> "$LOG_DIR/$name.log"
  setsid bash -c '
    for fd in /proc/$$/fd/*; do n=${fd##*/}; (( n > 2 )) && eval "exec $n>&-"; done
    echo "$$ $(cut -d" " -f22 < /proc/$$/stat)" > "$0"   # (comm is "bash": no spaces)
    exec "$@"' "$PID_DIR/$name.pid" "$@" < /dev/null >> "$LOG_DIR/$name.log" 2>&1 &
  # Wait for the PID file so that callers can check the daemon right away.
  local i
  for (( i = 0; i < 50; i++ )); do [[ -s $PID_DIR/$name.pid ]] && return 0; sleep 0.1; done
  die "$name did not start"
}

# stop_daemon NAME [SECONDS]: SIGTERM our NAME by PID, SIGKILL after SECONDS.
stop_daemon() {
  local name=$1 timeout=${2:-20} pid i
  if pid=$(daemon_pid "$name"); then
    log "stopping $name (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for (( i = 0; i < timeout * 10; i++ )); do
      daemon_alive "$name" || break
      sleep 0.1
    done
    if daemon_alive "$name"; then
      log "$name did not stop in ${timeout}s: SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      for (( i = 0; i < 50; i++ )); do daemon_alive "$name" || break; sleep 0.1; done
    fi
  fi
  rm -f "$PID_DIR/$name.pid"
}

# fail_component NAME MESSAGE: report a component's failure with its log's tail.
fail_component() {
  local name=$1; shift
  log "ERROR: $name: $*"
  if [[ -r $LOG_DIR/$name.log ]]; then
    printf -- '---- last lines of %s ----\n' "$LOG_DIR/$name.log" >&2
    tail -n 40 "$LOG_DIR/$name.log" >&2
    printf -- '---- end of %s ----\n' "$LOG_DIR/$name.log" >&2
  fi
  log "the partial cluster is left running for inspection; 'make cluster-down' removes it"
  exit 1
}

# wait_for NAME SECONDS COMMAND...: poll COMMAND until it succeeds; fail with
# NAME's log if NAME's process dies or time runs out.
wait_for() {
  local name=$1 timeout=$2; shift 2
  local deadline=$(( SECONDS + timeout ))
  until "$@" > /dev/null 2>&1; do
    daemon_alive "$name" || fail_component "$name" "process exited"
    (( SECONDS < deadline )) || fail_component "$name" "not ready after ${timeout}s (waiting for: $*)"
    sleep 0.2
  done
}

kubectl() { "$BIN_LINK/kubectl" --kubeconfig "$KUBECONFIG_FILE" "$@"; }
