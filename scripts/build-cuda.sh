#!/usr/bin/env bash
# Build the CUDA binary (`--features cuda`, real kernels, not ci-check) on a
# machine with no GPU, no driver and no system CUDA toolkit, from PyPI's CUDA
# 13.0 wheels. Idempotent: a second run only re-links what changed.
#
#   scripts/build-cuda.sh     # -> target/cuda/vinf-cuda (+ .env, -nvrtc.tar.gz)
#
# Env: VENV (default target/cuda-venv), CUDA_COMPUTE_CAP (default 90 = H200),
# VI_CUDA_ROOT (default /tmp/vi-cuda), PYTHON (default python3),
# BUNDLE_NVRTC=0 to skip packing NVRTC 13.0 for the GPU machine (30 MiB, ~2 min).
#
# Why (dfdx 0.13 / cudarc 0.9.15 build scripts):
# - cudarc wants $CUDA_PATH/include/cuda.h and links -lcuda -lnvrtc -lcublas
#   -lcublasLt from $CUDA_PATH/{lib,lib64/stubs,...}.
# - dfdx always runs `nvidia-smi --query-gpu=compute_cap --format=csv`
#   (CUDA_COMPUTE_CAP only overrides its answer afterwards) and
#   `nvcc --list-gpu-code`, then `nvcc --ptx` on its 49 kernels, embedded with
#   include_str!.
# - dfdx bakes env!("CUDA_INCLUDE_DIR") (= $CUDA_PATH/include) and, for
#   reshape_to/concat_along, env!("OUT_DIR") (for cuda_utils.cuh) into the
#   binary as NVRTC include paths for kernels it compiles at run time. Nothing
#   overrides them at run time, so both are put under one fixed,
#   checkout-independent path, $VI_CUDA_ROOT (a symlink to target/cuda, used as
#   CARGO_TARGET_DIR), and the headers they need are packed in
#   vinf-cuda-nvrtc.tar.gz for scripts/gpu-check.sh to unpack there.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"

VENV="${VENV:-$REPO/target/cuda-venv}"
PYTHON="${PYTHON:-python3}"
CAP="${CUDA_COMPUTE_CAP:-90}"
ROOT="${VI_CUDA_ROOT:-/tmp/vi-cuda}"
BUNDLE_NVRTC="${BUNDLE_NVRTC:-1}"
TARGET="$REPO/target/cuda"          # what $ROOT points at
TOOLKIT="$TARGET/toolkit"

# One CUDA release for everything: nvcc's unpinned deps pull a newer NVVM whose
# PTX ISA the GPU machine's 13.0 driver (580) rejects
# (CUDA_ERROR_UNSUPPORTED_PTX_VERSION). cuBLAS 13.1.0.3 is the one of CUDA 13.0
# Update 2; linking only needs its soname, libcublas.so.13.
PKGS=(
  nvidia-cuda-nvcc==13.0.88
  nvidia-nvvm==13.0.88
  nvidia-cuda-crt==13.0.88
  nvidia-cuda-runtime==13.0.88
  nvidia-cuda-cccl==13.0.85
  nvidia-cuda-nvrtc==13.0.88
  nvidia-cublas==13.1.0.3
)

say() { printf '\n== %s\n' "$*" >&2; }
die() { printf 'build-cuda.sh: error: %s\n' "$*" >&2; exit 1; }

command -v cargo >/dev/null || die "cargo not on PATH"
command -v cc >/dev/null || die "cc is needed (nvcc's host preprocessor, the libcuda stub)"

say "venv $VENV"
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --disable-pip-version-check -q "${PKGS[@]}"
"$VENV/bin/python" -m pip check >&2 || die "pip check failed"

CU="$("$VENV/bin/python" -c '
import os, nvidia  # a namespace package; cu13/ holds bin include lib nvvm
print(next(os.path.join(p, "cu13") for p in nvidia.__path__ if os.path.isdir(os.path.join(p, "cu13"))))')"
[ -f "$CU/include/cuda.h" ] && [ -x "$CU/bin/nvcc" ] || die "no include/cuda.h and bin/nvcc in $CU"

say "toolkit $TOOLKIT -> $CU"
mkdir -p "$TOOLKIT/lib" "$TOOLKIT/lib64/stubs" "$TOOLKIT/fake-bin"
ln -sfn "$CU/include" "$TOOLKIT/include"
ln -sfn "$CU/bin" "$TOOLKIT/bin"
# The wheels ship only versioned sonames; the linker's -lNAME wants libNAME.so.
for l in nvrtc cublas cublasLt cudart; do
  real="$(ls "$CU/lib/lib$l.so."[0-9]* 2>/dev/null | head -n1 || true)"
  [ -n "$real" ] || die "lib$l.so.* missing in $CU/lib"
  ln -sfn "$real" "$TOOLKIT/lib/lib$l.so"
done

# libcuda comes with the driver, which this machine lacks, and no 13.0 wheel
# ships a stub. Build one exporting every cu* function cudarc declares, so the
# link is still checked symbol by symbol (unlike --unresolved-symbols=ignore-all),
# with the driver's soname so the binary asks for libcuda.so.1. Each returns
# CUDA_ERROR_NO_DEVICE (100) should it ever be loaded instead of a driver; it
# lives in lib64/stubs, which nothing puts on LD_LIBRARY_PATH.
SYS_RS="$(ls "$HOME"/.cargo/registry/src/*/cudarc-0.9.15/src/driver/sys.rs 2>/dev/null | head -n1 || true)"
if [ -z "$SYS_RS" ]; then
  cargo fetch --locked >/dev/null
  SYS_RS="$(ls "$HOME"/.cargo/registry/src/*/cudarc-0.9.15/src/driver/sys.rs | head -n1)"
fi
STUB="$TOOLKIT/lib64/stubs"
{
  # cudarc unwraps the error's text, so the stub must be able to give one.
  echo 'int cuGetErrorString(int e, const char **s) { (void)e; *s = "no CUDA driver: this is the build-time libcuda stub"; return 0; }'
  echo 'int cuGetErrorName(int e, const char **s) { (void)e; *s = "CUDA_ERROR_NO_DEVICE (libcuda stub)"; return 0; }'
  grep -oE 'pub fn cu[A-Za-z0-9_]+' "$SYS_RS" | awk '{print $3}' | sort -u | grep -vxE 'cuGetError(String|Name)' |
    awk '{printf "int %s(void) { return 100; }\n", $1}'
} >"$STUB/libcuda-stub.c.new"
[ -s "$STUB/libcuda-stub.c.new" ] || die "no cu* functions in $SYS_RS"
if cmp -s "$STUB/libcuda-stub.c.new" "$STUB/libcuda-stub.c" && [ -f "$STUB/libcuda.so" ]; then
  rm -f "$STUB/libcuda-stub.c.new"
else
  mv "$STUB/libcuda-stub.c.new" "$STUB/libcuda-stub.c"
  cc -shared -fPIC -O0 -Wl,-soname,libcuda.so.1 -o "$STUB/libcuda.so" "$STUB/libcuda-stub.c"
fi
ln -sfn libcuda.so "$STUB/libcuda.so.1"

# Answers dfdx's build.rs ("compute_cap\n9.0") for the target card.
cat >"$TOOLKIT/fake-bin/nvidia-smi" <<EOF
#!/bin/sh
# Stub for dfdx's build.rs only (scripts/build-cuda.sh); no GPU on this machine.
printf 'compute_cap\n%s.%s\n' "${CAP%?}" "${CAP#"${CAP%?}"}"
EOF
chmod +x "$TOOLKIT/fake-bin/nvidia-smi"

# The fixed path the binary will name (recreated on each run, and by gpu-check.sh).
if [ -e "$ROOT" ] && [ ! -L "$ROOT" ]; then
  die "$ROOT exists and is not a symlink; set VI_CUDA_ROOT to a free path"
fi
ln -sfn "$TARGET" "$ROOT"

export CARGO_TARGET_DIR="$ROOT"     # physically target/cuda
export CUDA_PATH="$ROOT/toolkit" CUDA_ROOT="$ROOT/toolkit" CUDA_TOOLKIT_ROOT_DIR="$ROOT/toolkit"
export CUDA_COMPUTE_CAP="$CAP"
export PATH="$TOOLKIT/fake-bin:$CU/bin:$PATH"
export LIBRARY_PATH="$TOOLKIT/lib:$STUB${LIBRARY_PATH:+:$LIBRARY_PATH}"
export LD_LIBRARY_PATH="$CU/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

say "nvcc: $(nvcc --version | grep -o 'release .*')"
nvcc --list-gpu-code | grep -qx "sm_$CAP" || die "nvcc cannot target sm_$CAP"

# dfdx's build.rs reruns only when build.rs or CUDA_COMPUTE_CAP changes, so a
# different CUDA_PATH would leave the old include dir baked in: clean it then.
if grep -hs '^cargo:rustc-env=CUDA_INCLUDE_DIR=' "$TARGET"/release/build/dfdx-*/output |
   grep -qvxF "cargo:rustc-env=CUDA_INCLUDE_DIR=$CUDA_PATH/include"; then
  say "stale CUDA_INCLUDE_DIR in dfdx's build output: cargo clean -p dfdx"
  cargo clean --release -p dfdx
fi

say "cargo build --release --features cuda (CARGO_TARGET_DIR=$ROOT -> $TARGET)"
start=$(date +%s)
nice -n 10 cargo build --release --locked --features cuda --bin vinf
echo "build took $(( $(date +%s) - start )) s" >&2

BIN="$TARGET/release/vinf"
OUT="$TARGET/vinf-cuda"
# Debug line tables are 80% of the file; the PTX sits in .rodata and stays.
objcopy --strip-debug "$BIN" "$OUT.tmp" && mv -f "$OUT.tmp" "$OUT"

# Real kernels: ci-check writes empty .ptx files; real ones carry ".target sm_NN".
# The binary holds only the modules vinf's code reaches.
OUT_DIR="$(grep -aoE "$ROOT/release/build/dfdx-[0-9a-f]+/out" "$OUT" | sort -u)"
[ "$(printf '%s\n' "$OUT_DIR" | wc -l)" -eq 1 ] && [ -d "$OUT_DIR" ] || die "cannot tell dfdx's OUT_DIR baked in $OUT: '$OUT_DIR'"
nfiles="$(find "$OUT_DIR" -name '*.ptx' | wc -l)"
nreal="$(grep -l "^\.target sm_$CAP" "$OUT_DIR"/*.ptx | wc -l)"
[ "$nfiles" -gt 0 ] && [ "$nreal" -eq "$nfiles" ] || die "$nreal of $nfiles kernels in $OUT_DIR target sm_$CAP (empty ci-check kernels?)"
nptx="$(grep -ac "^\.target sm_$CAP" "$OUT" || true)"
[ "$nptx" -ge 1 ] || die "no sm_$CAP PTX embedded in $OUT"
INC="$ROOT/toolkit/include"
grep -aqF "$INC" "$OUT" || die "baked CUDA_INCLUDE_DIR $INC not found in $OUT"

# What NVRTC reads at run time, at the baked paths (cuda_fp16.h needs only its .hpp).
cuh=("$OUT_DIR"/*.cuh)
tar -C / -czhf "$OUT-nvrtc.tar.gz" \
  "${INC#/}/cuda_fp16.h" "${INC#/}/cuda_fp16.hpp" "${cuh[@]#/}"
# NVRTC 13.0 itself, for a GPU machine whose NVRTC is newer than its driver:
# its PTX ISA would be rejected like NVVM 13.5's above.
if [ "$BUNDLE_NVRTC" = 1 ]; then
  if [ ! -s "$TARGET/nvrtc-13.0.tar.xz" ] || [ "$CU/lib/libnvrtc.so.13" -nt "$TARGET/nvrtc-13.0.tar.xz" ]; then
    say "packing NVRTC 13.0 -> $TARGET/nvrtc-13.0.tar.xz"
    tar -C "$CU/lib" -cf - libnvrtc.so.13 libnvrtc-builtins.so.13.0 | xz -T0 -6 >"$TARGET/nvrtc-13.0.tar.xz.tmp"
    mv -f "$TARGET/nvrtc-13.0.tar.xz.tmp" "$TARGET/nvrtc-13.0.tar.xz"
  fi
fi
# A stripped CPU binary to carry beside it for gpu-check.sh's comparison.
if [ -x "$REPO/target/release/vinf" ]; then
  objcopy --strip-debug "$REPO/target/release/vinf" "$TARGET/vinf-cpu.tmp" && mv -f "$TARGET/vinf-cpu.tmp" "$TARGET/vinf-cpu"
fi

cat >"$OUT.env" <<EOF
# Written by scripts/build-cuda.sh; read by scripts/gpu-check.sh.
VI_CUDA_ROOT=$ROOT
VI_CUDA_INCLUDE_DIR=$INC
VI_DFDX_OUT_DIR=$OUT_DIR
VI_CUDA_COMPUTE_CAP=sm_$CAP
VI_CUDA_WHEELS="${PKGS[*]}"
VI_CUDA_BUILT="$(date -u +%FT%TZ) $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$REPO" diff --quiet HEAD -- src 2>/dev/null || echo '+dirty')"
EOF

say "result"
ls -l "$OUT" "$OUT.env" "$OUT-nvrtc.tar.gz" "$TARGET"/vinf-cpu "$TARGET"/nvrtc-13.0.tar.xz 2>/dev/null || true
echo "kernels compiled by nvcc: $nreal/$nfiles for sm_$CAP; PTX modules embedded in the binary: $nptx"
echo "NVRTC include paths baked in: $INC and $OUT_DIR"
say "run-time libraries (readelf -d NEEDED)"
readelf -d "$OUT" | awk '/NEEDED/{print $NF}' | tr -d '[]'
say "ldd here (libcuda.so.1 is the GPU machine's driver; cuBLAS/NVRTC its cu13 wheels)"
env LD_LIBRARY_PATH="$CU/lib" ldd "$OUT" || true
echo
echo "built $OUT; carry target/cuda/{vinf-cuda,vinf-cuda.env,vinf-cuda-nvrtc.tar.gz,vinf-cpu,nvrtc-13.0.tar.xz} and run scripts/gpu-check.sh"
