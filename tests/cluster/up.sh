#!/usr/bin/env bash
# Starts runner's single-node development cluster (see README.md):
#   registry (127.0.0.1:5000), etcd, kube-apiserver, kube-controller-manager,
#   kube-scheduler, containerd, kubelet, kube-proxy and a hostPath provisioner,
# all as plain processes tracked by PID files under /var/lib/runner-cluster.
# Returns once the node is Ready and a smoke pod, from an image pushed to the
# registry, has run to completion and its log was read back.
# Idempotent: with everything already running it only checks health.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[[ $(id -u) == 0 ]] || die "must run as root (it starts containerd and the kubelet)"
mkdir -p "$CACHE_DIR"
exec 8> "$LOCK_FILE"
flock 8   # one up/down at a time
T0=$SECONDS

# --- OS packages ---------------------------------------------------------------
# command -> Debian package providing it
declare -A PACKAGES=(
  [containerd]=containerd [containerd-shim-runc-v2]=containerd [runc]=runc
  [docker-registry]=docker-registry [openssl]=openssl [curl]=curl
  [iptables]=iptables [ip]=iproute2 [ss]=iproute2 [findmnt]=util-linux
)
ensure_packages() {
  local missing=() cmd
  for cmd in "${!PACKAGES[@]}"; do
    command -v "$cmd" > /dev/null || missing+=("${PACKAGES[$cmd]}")
  done
  [[ -x $CNI_BIN_DIR/bridge && -x $CNI_BIN_DIR/firewall ]] || missing+=(containernetworking-plugins)
  (( ${#missing[@]} )) || return 0
  mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
  log "installing OS packages: ${missing[*]}"
  apt_get install -y --no-install-recommends "${missing[@]}"
}
apt_get() {
  # A first try without "apt-get update" is much faster when the lists are fresh.
  DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=600 "$@" > /tmp/runner-cluster-apt.log 2>&1 || {
    DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=600 update > /tmp/runner-cluster-apt.log 2>&1 &&
    DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=600 "$@" >> /tmp/runner-cluster-apt.log 2>&1
  } || { tail -n 20 /tmp/runner-cluster-apt.log >&2; die "apt-get $* failed"; }
}

# busybox for the smoke/test image: taken from Debian's busybox-static package,
# unpacked into the cache (not installed: it conflicts with package busybox).
ensure_busybox() {
  local dir=$CACHE_DIR/busybox
  [[ -x $dir/bin/busybox ]] && return 0
  log "fetching busybox-static (Debian package) for the test image"
  local tmp; tmp=$(mktemp -d)
  (cd "$tmp" && apt_get -o APT::Sandbox::User=root download busybox-static)
  rm -rf "$dir.tmp"; dpkg-deb -x "$tmp"/busybox-static_*.deb "$dir.tmp"; rm -rf "$tmp"
  rm -rf "$dir"; mv "$dir.tmp" "$dir"
}

# --- already up? -----------------------------------------------------------------
node_ready() {
  [[ "$(kubectl get node "$NODE_NAME" -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" == True ]]
}
all_running() {
  local c
  for c in "${COMPONENTS[@]}"; do daemon_alive "$c" || return 1; done
}

ensure_packages
ensure_busybox
BIN=$(bash "$CLUSTER_SRC/build.sh")

if [[ -d $STATE_DIR ]]; then
  # "up-ok" is written when a cluster-up completed, smoke pod included.
  if [[ -f $STATE_DIR/up-ok ]] && all_running && [[ "$(readlink "$BIN_LINK")" == "$BIN" ]] &&
     kubectl get --raw /readyz > /dev/null 2>&1 && node_ready; then
    log "cluster already up (kubeconfig: $KUBECONFIG_FILE)"
    exit 0
  fi
  # Partly running, stopped by a reboot, or built from other sources: start afresh.
  log "found a cluster that is not fully up (or runs another build): removing it first"
  bash "$CLUSTER_SRC/down.sh" --locked
fi

# --- host preparation ----------------------------------------------------------
# The node's address: the source address of the default route (the kubelet
# refuses loopback node IPs and the "kubernetes" Service needs a real address).
NODE_IP=$(ip -4 route get 1.1.1.1 2>/dev/null | sed -n 's/.* src \([0-9.]*\).*/\1/p' | head -n1)
[[ -n $NODE_IP ]] || NODE_IP=$(ip -4 -o addr show scope global | awk '{sub("/.*", "", $4); print $4; exit}')
[[ -n $NODE_IP ]] || die "no non-loopback IPv4 address on this machine for the node"

for port in 5000 2379 2380 6443 10248 10249 10250 10256 10257 10259; do
  if ss -Hltn "sport = :$port" | grep -q .; then
    die "port $port is already in use by another program: $(ss -Hltnp "sport = :$port" | head -n1)"
  fi
done

mkdir -p "$STATE_DIR"/{host,pki,logs,pids,etcd,registry,volumes,pod-logs,cni/net.d,cni/ipam} \
         "$STATE_DIR"/{kubelet,controller-manager,apiserver} "$RUN_DIR"
chmod 700 "$STATE_DIR/pki"
ln -sfn "$BIN" "$BIN_LINK"
echo "$NODE_IP" > "$STATE_DIR/node-ip"

# Remember what we change on the host so that down.sh can put it back.
HOST=$STATE_DIR/host
findmnt -rno TARGET,PROPAGATION > "$HOST/mount-propagation"
sysctl -e vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops \
  kernel.keys.root_maxkeys kernel.keys.root_maxbytes net.ipv4.ip_forward \
  net.ipv4.conf.all.route_localnet net.bridge.bridge-nf-call-iptables \
  net.bridge.bridge-nf-call-ip6tables 2>/dev/null | sed 's/ = /=/' > "$HOST/sysctl"
for p in /var/log/containers /var/log/pods /var/lib/cni /run/containerd /etc/cni /opt/cni /var/lib/kubelet /run/netns; do
  if [[ -e $p ]]; then echo "$p"; fi
done > "$HOST/existing-paths"
for ns in /run/netns/cni-*; do
  if [[ -e $ns ]]; then echo "netns $ns"; fi
done > "$HOST/existing-netns"
for cmd in iptables ip6tables; do
  for t in filter nat mangle; do
    "$cmd" -w -t "$t" -S 2>/dev/null | awk -v t="$t" '$1 == "-N" {print t, $2}'
  done > "$HOST/$cmd-chains"
done

# The kubelet and containerd need mount propagation (the root mount is private here).
if [[ "$(findmnt -no PROPAGATION /)" != shared ]]; then
  mount --make-rshared /
fi

# --- certificates and kubeconfigs (openssl) ---------------------------------------
PKI=$PKI_DIR
log "making certificates (node address $NODE_IP)"
newkey() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2> /dev/null; }
newkey "$PKI/ca.key"
openssl req -x509 -new -key "$PKI/ca.key" -subj "/CN=runner-cluster-ca" -days 3650 -sha256 \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" \
  -out "$PKI/ca.crt" 2> /dev/null
# cert NAME SUBJECT USAGES [SANS [CA]]: key and certificate signed by CA (default: ca).
cert() {
  local name=$1 subject=$2 usage=$3 sans=${4:-} ca=${5:-ca}
  newkey "$PKI/$name.key"
  openssl req -new -key "$PKI/$name.key" -subj "$subject" 2> /dev/null |
    openssl x509 -req -CA "$PKI/$ca.crt" -CAkey "$PKI/$ca.key" -set_serial "0x$(openssl rand -hex 16)" \
      -days 3650 -sha256 -out "$PKI/$name.crt" -extfile <(
        echo "basicConstraints=critical,CA:FALSE"
        echo "keyUsage=critical,digitalSignature,keyEncipherment"
        echo "extendedKeyUsage=$usage"
        [[ -z $sans ]] || echo "subjectAltName=$sans") 2> /dev/null
}
cert apiserver "/CN=kube-apiserver" serverAuth \
  "DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,DNS:localhost,IP:127.0.0.1,IP:$API_SERVICE_IP,IP:$NODE_IP"
cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" clientAuth
cert admin "/O=system:masters/CN=runner-cluster-admin" clientAuth
cert controller-manager "/CN=system:kube-controller-manager" clientAuth
cert scheduler "/CN=system:kube-scheduler" clientAuth
cert kube-proxy "/CN=system:kube-proxy" clientAuth
cert kubelet-client "/O=system:nodes/CN=system:node:$NODE_NAME" clientAuth
cert kubelet "/CN=$NODE_NAME" serverAuth "DNS:$NODE_NAME,DNS:localhost,IP:127.0.0.1,IP:$NODE_IP"
# The front proxy (aggregation layer) CA and client, so that aggregated API
# servers work and the components' delegated authentication finds its CA.
newkey "$PKI/front-proxy-ca.key"
openssl req -x509 -new -key "$PKI/front-proxy-ca.key" -subj "/CN=runner-cluster-front-proxy-ca" -days 3650 -sha256 \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" \
  -out "$PKI/front-proxy-ca.crt" 2> /dev/null
cert front-proxy-client "/CN=front-proxy-client" clientAuth "" front-proxy-ca
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$PKI/sa.key" 2> /dev/null
openssl pkey -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub"

# kubeconfig FILE CERTNAME: a kubeconfig for 127.0.0.1:6443 with that client certificate.
kubeconfig() {
  cat > "$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: runner-cluster
  cluster:
    server: $API_URL
    certificate-authority-data: $(base64 -w0 < "$PKI/ca.crt")
users:
- name: $2
  user:
    client-certificate-data: $(base64 -w0 < "$PKI/$2.crt")
    client-key-data: $(base64 -w0 < "$PKI/$2.key")
contexts:
- name: runner-cluster
  context:
    cluster: runner-cluster
    user: $2
current-context: runner-cluster
EOF
  chmod 600 "$1"
}
kubeconfig "$STATE_DIR/controller-manager.kubeconfig" controller-manager
kubeconfig "$STATE_DIR/scheduler.kubeconfig" scheduler
kubeconfig "$STATE_DIR/kube-proxy.kubeconfig" kube-proxy
kubeconfig "$STATE_DIR/kubelet.kubeconfig" kubelet-client
kubeconfig "$KUBECONFIG_FILE.tmp" admin

# --- registry and etcd ----------------------------------------------------------------
cat > "$STATE_DIR/registry.yml" <<EOF
version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: $STATE_DIR/registry
  delete:
    enabled: true
http:
  addr: $REGISTRY
  headers:
    X-Content-Type-Options: [nosniff]
EOF
log "starting registry and etcd"
start_daemon registry docker-registry serve "$STATE_DIR/registry.yml"
# --unsafe-no-fsync: the cluster's data is throwaway; fsync latency would
# otherwise dominate every API write on slow CI disks.
start_daemon etcd "$BIN/etcd" --name runner-cluster --data-dir "$STATE_DIR/etcd" \
  --listen-client-urls "$ETCD_URL" --advertise-client-urls "$ETCD_URL" \
  --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
  --initial-cluster runner-cluster=http://127.0.0.1:2380 --unsafe-no-fsync --log-level warn
wait_for registry 30 curl -fsS "http://$REGISTRY/v2/"
wait_for etcd 60 curl -fsS "$ETCD_URL/health"

# Images: no Docker needed, push-image assembles them from local files.
push_images() {
  "$BIN/k8s" push-image --registry "$REGISTRY" --image "${PAUSE_IMAGE#"$REGISTRY"/}" \
    --add "$BIN/pause:/pause" --entrypoint /pause
  local links=() cmd
  for cmd in $("$CACHE_DIR/busybox/bin/busybox" --list); do
    [[ $cmd == busybox ]] || links+=(--symlink "/bin/$cmd:busybox")
  done
  "$BIN/k8s" push-image --registry "$REGISTRY" --image "${BUSYBOX_IMAGE#"$REGISTRY"/}" \
    --add "$CACHE_DIR/busybox/bin/busybox:/bin/busybox" "${links[@]}" \
    --env PATH=/bin --entrypoint /bin/sh
}
push_images > "$LOG_DIR/push-images.log" 2>&1 || fail_component push-images "pushing the pause and busybox images failed"

# --- control plane --------------------------------------------------------------------
log "starting kube-apiserver"
start_daemon kube-apiserver "$BIN/kube-apiserver" \
  --advertise-address="$NODE_IP" --bind-address=0.0.0.0 --secure-port=6443 \
  --etcd-servers="$ETCD_URL" --service-cluster-ip-range="$SERVICE_CIDR" \
  --cert-dir="$STATE_DIR/apiserver" \
  --client-ca-file="$PKI/ca.crt" \
  --tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" \
  --kubelet-client-certificate="$PKI/apiserver-kubelet-client.crt" \
  --kubelet-client-key="$PKI/apiserver-kubelet-client.key" \
  --kubelet-preferred-address-types=InternalIP \
  --service-account-issuer=https://kubernetes.default.svc.cluster.local \
  --service-account-key-file="$PKI/sa.pub" --service-account-signing-key-file="$PKI/sa.key" \
  --authorization-mode=Node,RBAC --enable-admission-plugins=NodeRestriction \
  --requestheader-client-ca-file="$PKI/front-proxy-ca.crt" \
  --requestheader-allowed-names=front-proxy-client \
  --requestheader-username-headers=X-Remote-User --requestheader-group-headers=X-Remote-Group \
  --requestheader-extra-headers-prefix=X-Remote-Extra- \
  --proxy-client-cert-file="$PKI/front-proxy-client.crt" --proxy-client-key-file="$PKI/front-proxy-client.key" \
  --allow-privileged=true --profiling=false --v=1
mv "$KUBECONFIG_FILE.tmp" "$KUBECONFIG_FILE"
wait_for kube-apiserver 120 kubectl get --raw /readyz

log "starting kube-controller-manager, kube-scheduler and containerd"
start_daemon kube-controller-manager "$BIN/kube-controller-manager" \
  --kubeconfig="$STATE_DIR/controller-manager.kubeconfig" \
  --authentication-kubeconfig="$STATE_DIR/controller-manager.kubeconfig" \
  --authorization-kubeconfig="$STATE_DIR/controller-manager.kubeconfig" \
  --bind-address=127.0.0.1 --secure-port=10257 --cert-dir="$STATE_DIR/controller-manager" \
  --service-account-private-key-file="$PKI/sa.key" --root-ca-file="$PKI/ca.crt" \
  --use-service-account-credentials=true \
  --cluster-signing-cert-file="$PKI/ca.crt" --cluster-signing-key-file="$PKI/ca.key" \
  --flex-volume-plugin-dir="$STATE_DIR/controller-manager/flexvolume" \
  --leader-elect=false --profiling=false --v=1
start_daemon kube-scheduler "$BIN/kube-scheduler" \
  --kubeconfig="$STATE_DIR/scheduler.kubeconfig" \
  --authentication-kubeconfig="$STATE_DIR/scheduler.kubeconfig" \
  --authorization-kubeconfig="$STATE_DIR/scheduler.kubeconfig" \
  --bind-address=127.0.0.1 --secure-port=10259 --leader-elect=false --profiling=false --v=1

# --- containerd (our own instance: own socket, root and state; never dockerd's) ---------
cat > "$STATE_DIR/cni/net.d/10-runner-cluster.conflist" <<EOF
{
  "cniVersion": "0.4.0",
  "name": "$CNI_NETWORK",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$BRIDGE",
      "isGateway": true,
      "ipMasq": true,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": "$POD_CIDR"}]],
        "routes": [{"dst": "0.0.0.0/0"}],
        "dataDir": "$STATE_DIR/cni/ipam"
      }
    },
    {"type": "firewall"}
  ]
}
EOF
cat > "$STATE_DIR/containerd.toml" <<EOF
version = 2
root = "$STATE_DIR/containerd"
state = "$RUN_DIR/containerd"
# /opt/containerd and the snapshotters we do not use stay untouched.
disabled_plugins = ["io.containerd.internal.v1.opt", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.aufs"]

[grpc]
  address = "$CONTAINERD_SOCK"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  # Root here lacks CAP_SYS_RESOURCE: negative OOM scores fail every container start.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        # runc's state (default /run/containerd/runc) goes with ours.
        Root = "$RUN_DIR/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$CNI_BIN_DIR"
    conf_dir = "$STATE_DIR/cni/net.d"
EOF
start_daemon containerd containerd --config "$STATE_DIR/containerd.toml"

wait_for kube-controller-manager 60 curl -fsSk https://127.0.0.1:10257/healthz
wait_for kube-scheduler 60 curl -fsSk https://127.0.0.1:10259/healthz
wait_for containerd 60 ctr --address "$CONTAINERD_SOCK" version

# --- node ----------------------------------------------------------------------------
cat > "$STATE_DIR/kubelet/config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: 0.0.0.0
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: true
  x509:
    clientCAFile: $PKI/ca.crt
authorization:
  mode: Webhook
tlsCertFile: $PKI/kubelet.crt
tlsPrivateKeyFile: $PKI/kubelet.key
containerRuntimeEndpoint: unix://$CONTAINERD_SOCK
# No systemd here: cgroupfs driver.
cgroupDriver: cgroupfs
# Root lacks CAP_SYS_RESOURCE: the kubelet may not lower its own OOM score.
oomScoreAdj: 0
# containerd 1.6 does not pin the sandbox image: never garbage-collect images.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard:
  memory.available: 100Mi
  nodefs.available: "1%"
  nodefs.inodesFree: "1%"
  imagefs.available: "1%"
failSwapOn: false
podLogsDir: $STATE_DIR/pod-logs
volumePluginDir: $STATE_DIR/kubelet/volume-plugins
serializeImagePulls: false
# clusterDNS is left unset: there is no DNS image here.
clusterDomain: cluster.local
resolvConf: /etc/resolv.conf
EOF
log "starting kubelet, kube-proxy and hostpath-provisioner"
start_daemon kubelet "$BIN/kubelet" --config="$STATE_DIR/kubelet/config.yaml" \
  --kubeconfig="$STATE_DIR/kubelet.kubeconfig" \
  --hostname-override="$NODE_NAME" --node-ip="$NODE_IP" \
  --root-dir="$STATE_DIR/kubelet" --cert-dir="$STATE_DIR/kubelet/pki" \
  --pod-infra-container-image="$PAUSE_IMAGE" --v=1

cat > "$STATE_DIR/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection:
  kubeconfig: $STATE_DIR/kube-proxy.kubeconfig
hostnameOverride: $NODE_NAME
mode: iptables
clusterCIDR: $POD_CIDR
# NodePorts only on the node's address (not on 127.0.0.1: no route_localnet change).
nodePortAddresses: [primary]
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
iptables:
  # Masquerade all Service traffic: pods then reach Services (the API server's
  # among them) without relying on bridge netfilter settings.
  masqueradeAll: true
# Leave the host's conntrack settings alone (zero: do not change).
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
EOF
start_daemon kube-proxy "$BIN/kube-proxy" --config="$STATE_DIR/kube-proxy.yaml" --v=1
start_daemon hostpath-provisioner "$BIN/k8s" hostpath-provisioner \
  --kubeconfig="$KUBECONFIG_FILE" --base-dir="$STATE_DIR/volumes"

wait_for kubelet 60 curl -fsS http://127.0.0.1:10248/healthz
wait_for kube-proxy 60 curl -fsS http://127.0.0.1:10256/healthz
wait_for kubelet 90 node_ready
log "node $NODE_NAME is Ready"

# --- cluster objects ------------------------------------------------------------------
kubectl apply -f "$CLUSTER_SRC/manifests/storageclass.yaml" > /dev/null
wait_for kube-controller-manager 60 kubectl -n default get serviceaccount default

# --- smoke pod: pulled from our registry, runs to completion, log read back -------------
log "running the smoke pod"
kubectl -n default delete pod runner-cluster-smoke --ignore-not-found --wait=false > /dev/null
sed "s|@IMAGE@|$BUSYBOX_IMAGE|; s|@API@|$API_SERVICE_IP|" "$CLUSTER_SRC/manifests/smoke-pod.yaml" | kubectl apply -f - > /dev/null
phase_of_smoke() { kubectl -n default get pod runner-cluster-smoke -o 'jsonpath={.status.phase}' 2>/dev/null; }
smoke_done() { [[ "$(phase_of_smoke)" =~ ^(Succeeded|Failed)$ ]]; }
wait_for kubelet 120 smoke_done
smoke_log=$(kubectl -n default logs runner-cluster-smoke 2>&1 || true)
if [[ "$(phase_of_smoke)" != Succeeded || $smoke_log != *"runner-cluster smoke ok"* ]]; then
  kubectl -n default describe pod runner-cluster-smoke >&2 || true
  printf -- '---- smoke pod log ----\n%s\n' "$smoke_log" >&2
  fail_component kubelet "the smoke pod did not succeed"
fi
kubectl -n default delete pod runner-cluster-smoke --wait=false > /dev/null

touch "$STATE_DIR/up-ok"
log "cluster up in $(( SECONDS - T0 ))s: Kubernetes $(k8s_version), node $NODE_NAME ($NODE_IP)"
log "  kubeconfig: $KUBECONFIG_FILE    kubectl: $BIN_LINK/kubectl"
log "  registry:   $REGISTRY (plain HTTP)   logs: $LOG_DIR"
