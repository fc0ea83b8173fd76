#!/usr/bin/env bash
# Build and install Horovod 0.28.1 for the TensorFlow of the active Python environment.
#
#   bash tools/install_horovod.sh            # CPU: Gloo (and MPI when mpicxx is on PATH)
#   bash tools/install_horovod.sh --gpu      # GPU clusters: NCCL allreduce (needs CUDA + NCCL)
#
# Horovod's last release predates TensorFlow 2.21 and does not `pip install` as is
# (details: docs/horovod.md). This script
#   1. installs the two header-only libraries TensorFlow's public headers include
#      (highwayhash, farmhash) with apt-get when they are missing and it can;
#   2. adds a one-line forwarding header for xla_builder.h, which moved in TF's tree;
#   3. builds horovod against the installed TensorFlow (no build isolation), with
#      CMAKE_POLICY_VERSION_MINIMUM=3.5 so Gloo's old CMake files configure.
# The build takes ~12 minutes on 2 cores; pip caches the wheel, so later runs take seconds.
# Exit codes: 0 installed (or already there), 2 cannot be built here (reason printed).
set -euo pipefail

PYTHON=${PYTHON:-python}
VERSION=${HOROVOD_VERSION:-0.28.1}
GPU=0
for arg in "$@"; do
    case "$arg" in
        --gpu) GPU=1 ;;
        -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
        *) echo "install_horovod.sh: unknown option $arg" >&2; exit 2 ;;
    esac
done

if "$PYTHON" -c "import horovod.tensorflow" >/dev/null 2>&1; then
    echo "install_horovod.sh: horovod.tensorflow is already importable"
    exit 0
fi
if ! "$PYTHON" -c "import tensorflow" >/dev/null 2>&1; then
    echo "install_horovod.sh: TensorFlow is not installed in $("$PYTHON" -c 'import sys; print(sys.prefix)'); run tools/setup_env.sh first" >&2
    exit 2
fi
for tool in gcc g++ cmake; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "install_horovod.sh: cannot build Horovod: '$tool' is not on PATH" >&2
        exit 2
    fi
done

headers_present() {
    [ -f /usr/include/highwayhash/highwayhash.h ] && [ -f /usr/include/farmhash.h ]
}
if ! headers_present; then
    SUDO=""
    if [ "$(id -u)" != "0" ] && command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; fi
    if command -v apt-get >/dev/null 2>&1 && { [ "$(id -u)" = "0" ] || [ -n "$SUDO" ]; }; then
        echo "install_horovod.sh: installing libhighwayhash-dev libfarmhash-dev (headers TensorFlow includes)"
        $SUDO apt-get update -qq >/dev/null || true
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq libhighwayhash-dev libfarmhash-dev >/dev/null || true
    fi
    if ! headers_present; then
        echo "install_horovod.sh: cannot build Horovod: the highwayhash and farmhash headers are missing" \
             "(install libhighwayhash-dev and libfarmhash-dev, or put them under /usr/include)" >&2
        exit 2
    fi
fi

SHIM=$(mktemp -d)
trap 'rm -rf "$SHIM"' EXIT
mkdir -p "$SHIM/tensorflow/compiler/xla/client"
echo '#include "xla/hlo/builder/xla_builder.h"' > "$SHIM/tensorflow/compiler/xla/client/xla_builder.h"

export CPLUS_INCLUDE_PATH="$SHIM${CPLUS_INCLUDE_PATH:+:$CPLUS_INCLUDE_PATH}"
export HOROVOD_WITH_TENSORFLOW=1 HOROVOD_WITHOUT_PYTORCH=1 HOROVOD_WITHOUT_MXNET=1 HOROVOD_WITH_GLOO=1
export CMAKE_POLICY_VERSION_MINIMUM=3.5
export MAKEFLAGS="${MAKEFLAGS:--j$(nproc 2>/dev/null || echo 2)}"
if command -v mpicxx >/dev/null 2>&1; then export HOROVOD_WITH_MPI=1; else export HOROVOD_WITHOUT_MPI=1; fi
if [ "$GPU" = "1" ]; then export HOROVOD_GPU_OPERATIONS=NCCL; fi

echo "install_horovod.sh: building horovod==$VERSION (Gloo$([ "${HOROVOD_WITH_MPI:-0}" = 1 ] && echo ', MPI')$([ "$GPU" = 1 ] && echo ', NCCL')); ~12 min on 2 cores unless pip has the wheel cached"
"$PYTHON" -m pip install --no-build-isolation "horovod==$VERSION" 2>&1 | grep -v "^WARNING: Location" || true
if ! "$PYTHON" -c "import horovod.tensorflow as hvd; hvd.init(); assert hvd.size() == 1" >/dev/null 2>&1; then
    echo "install_horovod.sh: the build did not produce a working horovod.tensorflow (see pip's output above)" >&2
    exit 2
fi
echo "install_horovod.sh: horovod $VERSION works with TensorFlow $("$PYTHON" -c 'import tensorflow as tf; print(tf.__version__)')"
