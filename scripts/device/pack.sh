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
# CUDA headers the PyTorch wheel's nvidia/cu13 lacks and a GPU machine without a CUDA toolkit has nowhere:
# cuda_runtime.h includes crt/host_config.h (wheel nvidia-cuda-crt, 0.1 MB) and cuda_fp16.h includes
# <nv/target> (wheel nvidia-cuda-cccl, 3 MB; only its nv/ folder is kept). Unpacked into deps/usr/include.
CUDA_MM=${EQR_CUDA_VERSION:-13.0}
for w in nvidia-cuda-crt nvidia-cuda-cccl; do
  ls "$DEST/debs/${w//-/_}-"*.whl >/dev/null 2>&1 || pip download --quiet --no-deps -d "$DEST/debs" "$w==$CUDA_MM.*"
done
python3 - "$DEST" <<'PY'
import glob, os, sys, zipfile
dest = sys.argv[1]
for pattern, keep in (("nvidia_cuda_crt-*.whl", "crt/"), ("nvidia_cuda_cccl-*.whl", "nv/")):
    whl = sorted(glob.glob(os.path.join(dest, "debs", pattern)))[-1]
    with zipfile.ZipFile(whl) as z:
        for n in z.namelist():
            head, sep, rel = n.partition("/cu13/include/")
            if not sep or not rel.startswith(keep) or n.endswith("/"):
                continue
            out = os.path.join(dest, "deps", "usr", "include", rel)
            os.makedirs(os.path.dirname(out), exist_ok=True)
            with open(out, "wb") as f:
                f.write(z.read(n))
PY
# Drop what the build does not read (docs, man pages).
rm -rf "$DEST/deps/usr/share/doc" "$DEST/deps/usr/share/man" "$DEST/deps/usr/src"
echo "== pack: $(du -sh "$DEST/deps" | cut -f1) of headers and libraries in $DEST/deps"
echo "   carry '.device/deps' with the device tool's run and run scripts/device/check.sh there"
