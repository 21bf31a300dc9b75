#!/usr/bin/env bash
# Prints the state of each component of the development cluster; exits 0 only
# when all of them run.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if [[ ! -d $STATE_DIR ]]; then
  echo "runner-cluster: down"
  exit 1
fi
status=0
for c in "${COMPONENTS[@]}"; do
  if pid=$(daemon_pid "$c"); then
    printf '%-24s running  pid %-8s log %s\n' "$c" "$pid" "$LOG_DIR/$c.log"
  else
    printf '%-24s STOPPED           log %s\n' "$c" "$LOG_DIR/$c.log"
    status=1
  fi
done
echo "kubeconfig: $KUBECONFIG_FILE   kubectl: $BIN_LINK/kubectl   registry: $REGISTRY"
if (( status == 0 )); then kubectl get nodes -o wide || status=1; fi
exit $status
