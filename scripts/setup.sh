#!/usr/bin/env bash
# eqr setup for Debian 12: installs what the build and tests need (by package name, from Debian),
# makes sure OpenBLAS (not the ~10x slower reference BLAS) is the active libblas.so.3, then configures
# and builds eqr in Release. Idempotent: a second run installs nothing and rebuilds only what changed.
#
# Usage: scripts/setup.sh [--no-build] [--build-dir DIR] [--debug]
set -euo pipefail

cd "$(dirname "$0")/.."
BUILD_DIR=build
BUILD_TYPE=Release
DO_BUILD=1
while [ $# -gt 0 ]; do
  case "$1" in
    --no-build) DO_BUILD=0 ;;
    --build-dir) BUILD_DIR="$2"; shift ;;
    --debug) BUILD_TYPE=Debug ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    *) echo "setup.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done

PACKAGES=(
  build-essential cmake ninja-build ccache git pkg-config
  libtorch-dev libopenblas0-pthread libgloo-dev
  libcli11-dev nlohmann-json3-dev libspdlog-dev libyaml-cpp-dev libgtest-dev
  python3 python3-numpy python3-matplotlib
)

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

if [ "$DO_BUILD" = 1 ]; then
  echo "== setup: configuring ($BUILD_TYPE) in $BUILD_DIR"
  cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE="$BUILD_TYPE" >/dev/null
  echo "== setup: building (first build compiles LibTorch headers once into a precompiled header)"
  cmake --build "$BUILD_DIR"
  "$BUILD_DIR/eqr" version
fi
