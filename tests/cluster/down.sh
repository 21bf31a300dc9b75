#!/usr/bin/env bash
# Stops the development cluster started by up.sh and removes its state,
# putting back what up.sh changed on the host (mount propagation, sysctls,
# iptables chains, the pods' bridge, cgroups, directories it created).
# Processes are stopped by the PIDs recorded at start, never by name.
# The build cache ($CACHE_DIR) is kept. Safe to run when nothing is up.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[[ $(id -u) == 0 ]] || die "must run as root"
if [[ ${1:-} != --locked ]]; then   # up.sh calls us with its lock held
  mkdir -p "$CACHE_DIR"
  exec 8> "$LOCK_FILE"
  flock 8
fi
if [[ ! -e $STATE_DIR && ! -e $RUN_DIR ]]; then
  log "no cluster to stop"
  exit 0
fi
HOST=$STATE_DIR/host
T0=$SECONDS

# 1. Stop the node's agents, then have containerd tear down every pod sandbox
#    (that runs the CNI DEL of each: veth pairs, IP leases, iptables rules).
for c in hostpath-provisioner kube-proxy kubelet; do stop_daemon "$c"; done
if daemon_alive containerd && [[ -x $BIN_LINK/k8s ]]; then
  "$BIN_LINK/k8s" cri-cleanup --endpoint "unix://$CONTAINERD_SOCK" --timeout 60s || true
fi
stop_daemon containerd

# containerd's shims outlive containerd; ours are the ones given our socket.
for dir in /proc/[0-9]*; do
  if tr '\0' ' ' < "$dir/cmdline" 2>/dev/null | grep -q -- "-address $CONTAINERD_SOCK "; then
    log "stopping containerd shim (pid ${dir#/proc/})"
    kill -KILL "${dir#/proc/}" 2>/dev/null || true
  fi
done
# Container processes left behind (if containerd could not stop them) are in
# the kubelet's kubepods cgroups, which hold nothing but ours.
kubepods_cgroups() { find /sys/fs/cgroup/*/kubepods -depth -type d 2>/dev/null || true; }
for _ in 1 2 3; do
  pids=$(kubepods_cgroups | while read -r cg; do cat "$cg/cgroup.procs" 2>/dev/null; done | sort -u)
  [[ -z $pids ]] && break
  log "killing processes left in kubepods cgroups: $(echo $pids)"
  kill -KILL $pids 2>/dev/null || true
  sleep 0.5
done

# 2. The control plane, etcd and the registry, in reverse start order.
for c in kube-scheduler kube-controller-manager kube-apiserver etcd registry; do stop_daemon "$c"; done

# 3. Networking: kube-proxy's rules, then any other KUBE-/CNI- chain that
#    appeared while the cluster ran (kubelet's canaries, the CNI firewall plugin's).
if [[ -x $BIN_LINK/kube-proxy ]]; then
  "$BIN_LINK/kube-proxy" --cleanup --v=0 > "$LOG_DIR/kube-proxy-cleanup.log" 2>&1 || true
fi
remove_new_chains() {
  local cmd=$1 table chain rule
  for table in filter nat mangle; do
    local chains
    chains=$("$cmd" -w -t "$table" -S 2>/dev/null | awk '$1 == "-N" && $2 ~ /^(KUBE|CNI)-/ {print $2}') || continue
    for chain in $chains; do
      grep -qx "$table $chain" "$HOST/$cmd-chains" 2>/dev/null && continue
      # Rules jumping to the chain first, then the chain itself.
      { "$cmd" -w -t "$table" -S | grep -E -- "-j $chain( |\$)" || true; } | sed 's/^-A /-D /' |
        while read -r rule; do eval "$cmd -w -t $table $rule" || true; done
      "$cmd" -w -t "$table" -F "$chain" 2>/dev/null || true
    done
    for chain in $chains; do
      grep -qx "$table $chain" "$HOST/$cmd-chains" 2>/dev/null && continue
      "$cmd" -w -t "$table" -X "$chain" 2>/dev/null || log "could not remove $cmd chain $table/$chain"
    done
  done
}
remove_new_chains iptables
remove_new_chains ip6tables
ip link show "$BRIDGE" > /dev/null 2>&1 && ip link delete "$BRIDGE"

# 4. Mounts under our directories (pod volumes, containerd's shm and rootfs
#    mounts, network namespaces), deepest first.
unmount_under() {
  local prefix
  for prefix in "$@"; do
    awk -v p="$prefix" '$5 == p || index($5, p "/") == 1 {print $5}' /proc/self/mountinfo |
      sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
  done
}
unmount_under "$STATE_DIR" "$RUN_DIR"
# Pod network namespaces are made by containerd in /run/netns as cni-<uuid>.
if [[ -d /run/netns ]]; then
  for ns in /run/netns/cni-*; do
    [[ -e $ns ]] || continue
    grep -qx "netns $ns" "$HOST/existing-netns" 2>/dev/null && continue
    umount -l "$ns" 2>/dev/null || true; rm -f "$ns"
  done
fi

# 5. cgroups the kubelet made (empty now).
kubepods_cgroups | while read -r cg; do rmdir "$cg" 2>/dev/null || true; done

# 6. Host settings recorded by up.sh.
if [[ -r $HOST/sysctl ]]; then
  while IFS='=' read -r key value; do
    [[ "$(sysctl -n "$key" 2>/dev/null)" == "$value" ]] || sysctl -q -w "$key=$value" > /dev/null 2>&1 || true
  done < "$HOST/sysctl"
fi
if [[ -r $HOST/mount-propagation ]]; then
  # up.sh made / recursively shared; give each mount its former propagation.
  while read -r target propagation; do
    target=$(printf '%b' "$target")   # findmnt -r escapes spaces as \x20
    [[ $propagation == private || $propagation == shared || $propagation == slave ]] || continue
    findmnt -rno PROPAGATION --mountpoint "$target" 2>/dev/null | grep -qx "$propagation" && continue
    mount --make-"$propagation" "$target" 2>/dev/null || true
  done < "$HOST/mount-propagation"
fi
# The kubelet links container logs into /var/log/containers, whatever its podLogsDir.
if [[ -d /var/log/containers ]]; then
  find /var/log/containers -maxdepth 1 -type l -lname "$STATE_DIR/*" -delete
fi
# The kubelet's device plugin socket and checkpoint are always in
# /var/lib/kubelet/device-plugins, whatever its --root-dir.
if [[ -d /var/lib/kubelet ]] && ! grep -qx /var/lib/kubelet "$HOST/existing-paths" 2>/dev/null; then
  rm -rf --one-file-system /var/lib/kubelet
fi
for p in /var/log/containers /var/log/pods /var/lib/cni /run/containerd /etc/cni /opt/cni /run/netns; do
  # Directories that did not exist before up.sh go, as far as they are empty.
  [[ -d $p ]] || continue
  grep -qx "$p" "$HOST/existing-paths" 2>/dev/null && continue
  find "$p" -depth -type d -empty -delete 2>/dev/null || true
done

rm -rf --one-file-system "$STATE_DIR" "$RUN_DIR"
log "cluster down in $(( SECONDS - T0 ))s (build cache kept in $CACHE_DIR)"
