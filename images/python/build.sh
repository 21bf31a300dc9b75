#!/usr/bin/env bash
# Make runner's base image locally from Debian's own packages, for machines that
# cannot pull from any registry.
#
#   images/python/build.sh [TAG]        (default TAG: runner-python:3.11)
#
# The image is a debootstrap'd Debian bookworm (Python 3.11, matching a local 3.11)
# with pip, venv and the CA certificates, imported into the local Docker engine.
# Use it with `--base-image runner-python:3.11`, `base_image:` in runner.yaml,
# or RUNNER_BASE_IMAGE=runner-python:3.11. On a machine that can pull, runner's
# default base (python:X.Y-slim) needs none of this.
set -euo pipefail

TAG=${1:-runner-python:3.11}
SUITE=${SUITE:-bookworm}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
CLIENT=/usr/bin/docker   # Debian's client (see scripts/docker-up.sh)

if "$CLIENT" image inspect "$TAG" >/dev/null 2>&1 && [ -z "${FORCE:-}" ]; then
    echo "images/python: $TAG already present (FORCE=1 to rebuild)"
    exit 0
fi
if ! command -v debootstrap >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    # a new machine may have no package lists yet: update only if the first try fails
    apt-get install -y -qq -o DPkg::Lock::Timeout=600 debootstrap >/dev/null 2>&1 ||
        { apt-get update -qq && apt-get install -y -qq -o DPkg::Lock::Timeout=600 debootstrap >/dev/null; }
fi

ROOTFS=$(mktemp -d /tmp/runner-rootfs.XXXXXX)
trap 'rm -rf "$ROOTFS"' EXIT
echo "images/python: debootstrap $SUITE into $ROOTFS (about a minute)"
debootstrap --variant=minbase \
    --include=python3,python3-pip,python3-venv,python-is-python3,ca-certificates \
    "$SUITE" "$ROOTFS" "$MIRROR" >"$ROOTFS.log" 2>&1 || { tail -n 30 "$ROOTFS.log" >&2; exit 1; }
rm -f "$ROOTFS.log"
# Smaller and reproducible-ish: no apt lists, caches or docs in the image.
rm -rf "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/cache/apt/* "$ROOTFS"/usr/share/doc/* \
       "$ROOTFS"/usr/share/man/* "$ROOTFS"/usr/share/locale/*

# The official python images say their version in PYTHON_VERSION; so does this one, so that
# runner reads it from the image's config instead of starting a container to ask.
PYVER=$(chroot "$ROOTFS" python3 -c 'import platform; print(platform.python_version())')
echo "images/python: importing as $TAG (Python $PYVER)"
tar -C "$ROOTFS" -c . | "$CLIENT" import \
    --change "ENV PYTHON_VERSION=$PYVER" \
    --change 'ENV LANG=C.UTF-8' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["python3"]' \
    - "$TAG" >/dev/null
"$CLIENT" run --rm "$TAG" python -c 'import sys; print("images/python: ready,", sys.version.split()[0])'
