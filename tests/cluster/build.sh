#!/usr/bin/env bash
# Builds the cluster's binaries unless a build of the same sources exists:
#   $CACHE_DIR/bin/<hash>/k8s     multi-call binary (kube-apiserver, kubelet, etcd, kubectl, ...)
#   $CACHE_DIR/bin/<hash>/<name>  symlinks to k8s, one per component
#   $CACHE_DIR/bin/<hash>/pause   the pod sandbox binary (static, for the pause image)
# <hash> covers go.mod, go.sum, the Go sources, this recipe and the Go version,
# so a fresh clone on the same machine (as CI makes) reuses the build.
# Prints the bin directory on stdout; progress goes to stderr.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# Our own Go build cache, so that it persists between runs and clones and so
# that it can be measured and removed on its own (make cluster-clean-cache).
# The module cache stays Go's default (go env GOMODCACHE).
export GOCACHE=${RUNNER_CLUSTER_GOCACHE:-$CACHE_DIR/go-build}
export CGO_ENABLED=0 GOOS=linux GOARCH=amd64 GOFLAGS=-mod=readonly
# Never let go.mod's "go" line make the go command fetch another toolchain.
export GOTOOLCHAIN=local

command -v go > /dev/null || die "no Go toolchain found (looked in PATH and /usr/local/go/bin); Kubernetes $(k8s_version) needs Go >= 1.24"

version=$(k8s_version)
[[ $version =~ ^v([0-9]+)\.([0-9]+)\. ]] || die "cannot read the k8s.io/kubernetes version from go.mod"
major=${BASH_REMATCH[1]} minor=${BASH_REMATCH[2]}
# Version stamping as upstream's hack/lib/version.sh does: unstamped builds say
# v0.0.0, which kubectl and the kubelet's version checks dislike.
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $pkg.gitVersion=$version -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
  ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
done
buildflags=(-trimpath -ldflags "$ldflags")

cd "$CLUSTER_SRC"
hash=$( { cat go.mod go.sum; find . -name '*.go' -type f | LC_ALL=C sort | xargs cat;
          echo "${buildflags[*]}"; go version; } | sha256sum | cut -c1-16)
bin=$CACHE_DIR/bin/$hash
if [[ -f $bin/.complete ]]; then
  echo "$bin"
  exit 0
fi

mkdir -p "$CACHE_DIR/bin"
exec 9> "$CACHE_DIR/build.lock"
if ! flock -n 9; then
  log "another build is running; waiting for it"
  flock 9
fi
[[ -f $bin/.complete ]] && { echo "$bin"; exit 0; }

start=$SECONDS
log "building Kubernetes $version components into $bin (go build cache: $GOCACHE)"
log "a cold build compiles ~2700 packages (about 5 minutes on 2 cores, 3.3 GB of build cache); later builds reuse the cache"
go mod download -x 2>&1 | awk '/^# get .*200 OK/ {n++; if (n % 50 == 0) printf "[build] %d modules downloaded\n", n > "/dev/stderr"}'
total=$(go list -deps . | wc -l)
tmp=$bin.tmp.$$
rm -rf "$tmp"; mkdir -p "$tmp"
# go build -v names each package as it compiles it (cached ones are not named).
# Show a progress line every 100 packages or 60 seconds.
set +e
go build -v "${buildflags[@]}" -o "$tmp/k8s" . 2>&1 | awk -v total="$total" -v start="$(date +%s)" -v shown="$(date +%s)" '
  function show() { printf "[build] %d/%d packages compiled (%ds) %s\n", n, total, systime() - start, last > "/dev/stderr"; shown = systime() }
  /^[a-zA-Z0-9_.-]+(\/[^ ]+)?$/ && !/:/ { n++; last = $0; if (n % 100 == 0 || systime() - shown >= 60) show(); next }
  { print > "/dev/stderr" }   # anything else is an error message
  END { show() }'
status=${PIPESTATUS[0]}
set -e
(( status == 0 )) || { rm -rf "$tmp"; die "go build failed (status $status)"; }
log "linking done; building the pause binary"
go build "${buildflags[@]}" -o "$tmp/pause" ./images/pause

for name in kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl etcd; do
  ln -s k8s "$tmp/$name"
done
"$tmp/k8s" version > /dev/null || die "the built binary does not run"
touch "$tmp/.complete"
rm -rf "$bin"; mv "$tmp" "$bin"
log "built in $(( SECONDS - start ))s: $(du -sh "$bin/k8s" | cut -f1) binary"

# Keep the two newest builds (the one a running cluster uses is one of them).
ls -1dt "$CACHE_DIR"/bin/*/ 2>/dev/null | tail -n +3 | while read -r old; do
  [[ "$(readlink -f "$BIN_LINK" 2>/dev/null)/" == "$old" ]] || rm -rf "$old"
done
echo "$bin"
