#!/usr/bin/env bash
# Packs what scripts/device/check.sh needs on a GPU machine that has PyTorch and CMake but none of eqr's C++
# dependencies and no network: Debian's -dev packages (and their runtime libraries), unpacked with `dpkg -x`
# into .device/deps (git-ignored, about 7 MB), carried to the GPU machine beside the work tree. No CUDA
# toolkit is packed: where the GPU machine has none, check.sh imports LibTorch from its folders
# (EQR_TORCH_IMPORT=manual), since eqr compiles no CUDA code of its own. (nvcc from PyPI would need its
# nvvm wheel too: about 100 MB, over the device tool's 64 MiB carry.)
#
# Usage: scripts/device/pack.sh            (idempotent; prints what it packed)
set -euo pipefail
cd "$(dirname "$0")/../.."
DEST=.device
PACKAGES=(libcli11-dev nlohmann-json3-dev libspdlog-dev libspdlog1.10 libfmt-dev libfmt9
          libyaml-cpp-dev libyaml-cpp0.7 libgtest-dev ninja-build)

mkdir -p "$DEST/debs" "$DEST/deps"
missing=()
for p in "${PACKAGES[@]}"; do
  ls "$DEST/debs/${p}_"*.deb >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "== pack: downloading ${missing[*]}"
  # (apt-get download, as root, warns that _apt cannot write here; harmless)
  (cd "$DEST/debs" && apt-get download "${missing[@]}" >/dev/null 2>&1) || {
    apt-get update -qq && (cd "$DEST/debs" && apt-get download "${missing[@]}" >/dev/null); }
fi
rm -rf "$DEST/deps" && mkdir -p "$DEST/deps"
for d in "$DEST"/debs/*.deb; do dpkg -x "$d" "$DEST/deps"; done
# Drop what the build does not read (docs, man pages).
rm -rf "$DEST/deps/usr/share/doc" "$DEST/deps/usr/share/man" "$DEST/deps/usr/src"
echo "== pack: $(du -sh "$DEST/deps" | cut -f1) of headers and libraries in $DEST/deps"
echo "   carry '.device/deps' with the device tool's run and run scripts/device/check.sh there"
