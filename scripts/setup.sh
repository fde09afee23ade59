#!/usr/bin/env bash
# eqr setup for Debian 12: installs what the build and tests need (by package name, from Debian),
# makes sure OpenBLAS (not the ~10x slower reference BLAS) is the active libblas.so.3, then configures
# and builds eqr in Release. Idempotent: a second run installs nothing and rebuilds only what changed.
#
# --torch debian (default): build against Debian's libtorch-dev (LibTorch 1.13, CPU) into build/.
# --torch pip: also install the pinned PyTorch wheel from PyPI (EQR_TORCH_PIP_VERSION, default 2.11.0,
#   a CUDA 13 build) into a virtual environment outside the work tree ($EQR_CACHE, default ~/.cache/eqr,
#   reused by later runs on the same machine), take its LibTorch through torch.utils.cmake_prefix_path
#   and build into build-torch2/. EQR_WITH_CUDA is then ON: every CUDA-only line compiles and links,
#   and runs where a GPU is present. Needs the CUDA toolkit (nvcc) that LibTorch's CMake files look for.
#
# --target T: build only target T (e.g. `eqr`: what the main job runs; scripts/quickstart.sh passes it), not
#   the test suites too (more than half of a full build). The default builds everything.
#
# Usage: scripts/setup.sh [--torch debian|pip] [--no-build] [--target T] [--build-dir DIR] [--debug]
set -euo pipefail

cd "$(dirname "$0")/.."
BUILD_DIR=""
BUILD_TYPE=Release
DO_BUILD=1
TARGET_ARGS=()
TORCH=debian
while [ $# -gt 0 ]; do
  case "$1" in
    --torch) TORCH="${2:-}"; shift ;;
    --torch=*) TORCH="${1#--torch=}" ;;
    --no-build) DO_BUILD=0 ;;
    --target) TARGET_ARGS=(--target "${2:?--target needs a target name}"); shift ;;
    --build-dir) BUILD_DIR="$2"; shift ;;
    --debug) BUILD_TYPE=Debug ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) echo "setup.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done
case "$TORCH" in
  debian) BUILD_DIR=${BUILD_DIR:-build} ;;
  pip) BUILD_DIR=${BUILD_DIR:-build-torch2} ;;
  *) echo "setup.sh: --torch '$TORCH': expected debian or pip" >&2; exit 2 ;;
esac

PACKAGES=(
  build-essential cmake ninja-build ccache git pkg-config
  libtorch-dev libopenblas0-pthread libgloo-dev
  libcli11-dev nlohmann-json3-dev libspdlog-dev libyaml-cpp-dev libgtest-dev
  python3 python3-numpy python3-matplotlib
)
# The wheel's virtual environment needs venv (ensurepip) from Debian's python3.
[ "$TORCH" = pip ] && PACKAGES+=(python3-venv)

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "setup.sh: not root and no sudo; install these packages by hand: ${PACKAGES[*]}" >&2; fi
fi

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "== setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "== setup: all ${#PACKAGES[@]} packages present"
fi

# ---- BLAS: LibTorch from Debian links libblas.so.3, which Debian's alternatives resolve ----
MULTIARCH=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch)
LIBDIR=/usr/lib/$MULTIARCH
OPENBLAS_BLAS=$LIBDIR/openblas-pthread/libblas.so.3
OPENBLAS_LAPACK=$LIBDIR/openblas-pthread/liblapack.so.3
active=$(readlink -f "$LIBDIR/libblas.so.3" || true)
if [ "$active" != "$(readlink -f "$OPENBLAS_BLAS")" ]; then
  echo "== setup: active BLAS is '$active'; switching libblas.so.3 to OpenBLAS"
  $SUDO update-alternatives --set "libblas.so.3-$MULTIARCH" "$OPENBLAS_BLAS"
  if [ -e "$OPENBLAS_LAPACK" ]; then
    $SUDO update-alternatives --set "liblapack.so.3-$MULTIARCH" "$OPENBLAS_LAPACK" || true
  fi
  active=$(readlink -f "$LIBDIR/libblas.so.3")
fi
case "$active" in
  *openblas*) echo "== setup: BLAS in use: OpenBLAS ($active)" ;;
  *) echo "setup.sh: libblas.so.3 resolves to '$active', not OpenBLAS; LibTorch would be ~10x slower" >&2; exit 1 ;;
esac

CMAKE_EXTRA=()
if [ "$TORCH" = pip ]; then
  # ---- LibTorch 2.x from the PyPI wheel, in a venv kept outside the work tree ----
  TORCH_VERSION=${EQR_TORCH_PIP_VERSION:-2.11.0}
  CACHE_DIR=${EQR_CACHE:-$HOME/.cache/eqr}
  VENV=$CACHE_DIR/venv-torch-$TORCH_VERSION
  PY=${EQR_PYTHON:-python3}
  have=$("$VENV/bin/python" -c 'import torch; print(torch.__version__.split("+")[0])' 2>/dev/null || true)
  if [ "$have" != "$TORCH_VERSION" ]; then
    echo "== setup: installing torch==$TORCH_VERSION from PyPI into $VENV (a CUDA build: about 4.6 GB with its NVIDIA libraries)"
    t0=$(date +%s)
    rm -rf "$VENV"
    mkdir -p "$CACHE_DIR"
    "$PY" -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check --no-cache-dir "torch==$TORCH_VERSION"
    echo "== setup: torch $TORCH_VERSION installed in $(( $(date +%s) - t0 )) s"
  else
    echo "== setup: torch $TORCH_VERSION present in $VENV"
  fi
  # numpy is not needed: LibTorch only; silence the wheel's warning about it.
  TORCH_CMAKE=$("$VENV/bin/python" -W ignore -c 'import torch.utils; print(torch.utils.cmake_prefix_path)' 2>/dev/null)
  [ -d "$TORCH_CMAKE" ] || { echo "setup.sh: torch.utils.cmake_prefix_path of $VENV is '$TORCH_CMAKE', not a folder" >&2; exit 1; }
  if ! command -v nvcc >/dev/null 2>&1 && [ ! -x /usr/local/cuda/bin/nvcc ]; then
    echo "setup.sh: --torch pip: the wheel's LibTorch CMake files need the CUDA toolkit (nvcc); none found" >&2
    exit 1
  fi
  export PATH="$PATH:/usr/local/cuda/bin"
  CMAKE_EXTRA+=("-DCMAKE_PREFIX_PATH=$TORCH_CMAKE")
fi

if [ "$DO_BUILD" = 1 ]; then
  echo "== setup: configuring ($BUILD_TYPE, torch $TORCH) in $BUILD_DIR"
  mkdir -p "$BUILD_DIR"
  cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE="$BUILD_TYPE" "${CMAKE_EXTRA[@]}" >"$BUILD_DIR/configure.log" 2>&1 ||
    { cat "$BUILD_DIR/configure.log" >&2; echo "setup.sh: configure failed (log above)" >&2; exit 1; }
  grep -E "^-- eqr" "$BUILD_DIR/configure.log" || true
  echo "== setup: building (first build compiles LibTorch headers once into a precompiled header)"
  cmake --build "$BUILD_DIR" "${TARGET_ARGS[@]}"
  "$BUILD_DIR/eqr" version
fi
