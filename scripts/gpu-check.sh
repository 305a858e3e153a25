#!/usr/bin/env bash
# CUDA check subset for a GPU machine with no Rust toolchain (< 5 min on an H200):
# the binary from scripts/build-cuda.sh fits a few models from models/ on the
# GPU and, where a CPU binary came along, the same fits on the CPU, and the
# ELBOs and posterior means must agree.
#
#   scripts/gpu-check.sh [VINF_CUDA]      # default target/cuda/vinf-cuda
#
# Expects beside VINF_CUDA (all written by build-cuda.sh): VINF_CUDA.env,
# VINF_CUDA-nvrtc.tar.gz, and optionally nvrtc-13.0.tar.xz and vinf-cpu.
# Env: VINF_CPU (default: vinf-cpu beside VINF_CUDA, else target/release/vinf);
# MNIST (default {../shared,shared}/data/mnist/t10k-images-idx3-ubyte.gz);
# GPU_CHECK_OUT (default $OUT, else /tmp/vi-gpu-check); CUDA_LIB_DIRS (extra
# library dirs, colon-separated); TOL_SCALE (multiplies every tolerance);
# RUN_TIMEOUT (s per fit, default 120); BUDGET (s after which the remaining
# fits are skipped, default 240); GPU_CHECK_DRY=1 (no GPU here: VINF_CUDA may be
# a CPU build; checks this script's own plumbing and parsing).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"

BIN="$(realpath "${1:-target/cuda/vinf-cuda}")"
BIN_DIR="$(dirname "$BIN")"
DRY="${GPU_CHECK_DRY:-0}"
WORK="${GPU_CHECK_OUT:-${OUT:-/tmp/vi-gpu-check}}"
if [ -z "${MNIST:-}" ]; then  # shared/ sits beside the checkout here, inside it on some machines
  MNIST="$REPO/../shared/data/mnist/t10k-images-idx3-ubyte.gz"
  [ -f "$MNIST" ] || MNIST="$REPO/shared/data/mnist/t10k-images-idx3-ubyte.gz"
fi
RUN_TIMEOUT="${RUN_TIMEOUT:-120}"
BUDGET="${BUDGET:-240}"
export TOL_SCALE="${TOL_SCALE:-1}"
if [ -z "${VINF_CPU:-}" ]; then
  if [ -x "$BIN_DIR/vinf-cpu" ]; then VINF_CPU="$BIN_DIR/vinf-cpu"; else VINF_CPU="$REPO/target/release/vinf"; fi
fi

say() { printf '\n== %s\n' "$*"; }
die() { printf 'gpu-check.sh: FAIL: %s\n' "$*" >&2; exit 1; }

[ -x "$BIN" ] || die "no binary at $BIN (run scripts/build-cuda.sh and copy target/cuda/ here)"
command -v python3 >/dev/null || die "python3 is needed"
mkdir -p "$WORK"
exec > >(tee "$WORK/gpu-check.log") 2>&1
T0=$(date +%s)

say "GPU"
if command -v nvidia-smi >/dev/null; then
  nvidia-smi --query-gpu=name,compute_cap,driver_version,memory.total,memory.used,utilization.gpu --format=csv
  nvidia-smi | sed -n '1,4p'
elif [ "$DRY" = 1 ]; then
  echo "(dry run: no nvidia-smi)"
else
  die "nvidia-smi not found: no NVIDIA driver here"
fi

# The binary names its NVRTC include dirs as absolute paths from the build
# machine (dfdx's env!("CUDA_INCLUDE_DIR") and env!("OUT_DIR"); nothing
# overrides them at run time): put the headers back at those paths.
ENV_FILE="$BIN.env"
if [ -f "$ENV_FILE" ]; then
  # shellcheck disable=SC1090
  . "$ENV_FILE"
  say "NVRTC headers at the baked paths ($VI_CUDA_INCLUDE_DIR, $VI_DFDX_OUT_DIR)"
  [ -f "$BIN-nvrtc.tar.gz" ] || die "$BIN-nvrtc.tar.gz missing: run-time-compiled kernels (reshape, concat, to_dtype) would panic"
  tar -xzf "$BIN-nvrtc.tar.gz" -C / --skip-old-files
  for f in "$VI_CUDA_INCLUDE_DIR/cuda_fp16.h" "$VI_CUDA_INCLUDE_DIR/cuda_fp16.hpp" \
           "$VI_DFDX_OUT_DIR/cuda_utils.cuh" "$VI_DFDX_OUT_DIR/compatibility.cuh"; do
    [ -r "$f" ] || die "cannot provide $f"
  done
  echo "ok; binary built $VI_CUDA_BUILT with $VI_CUDA_WHEELS"
elif [ "$DRY" = 1 ]; then
  echo "(dry run: no $ENV_FILE)"
else
  die "$ENV_FILE missing (written by build-cuda.sh)"
fi

# Libraries: the driver's libcuda.so.1 from the system; cuBLAS from the cu13
# wheels; NVRTC 13.0 from the bundle when it came along, since a newer NVRTC
# writes PTX the 13.0 driver cannot load (CUDA_ERROR_UNSUPPORTED_PTX_VERSION).
say "libraries"
LIBDIRS=()
# CUDA_LIB_DIRS (colon-separated) goes first, for libraries in places not searched below.
[ -n "${CUDA_LIB_DIRS:-}" ] && IFS=: read -r -a LIBDIRS <<<"$CUDA_LIB_DIRS"
if [ -f "$BIN_DIR/nvrtc-13.0.tar.xz" ]; then
  mkdir -p "$WORK/nvrtc-13.0"
  [ -f "$WORK/nvrtc-13.0/libnvrtc.so.13" ] || tar -xJf "$BIN_DIR/nvrtc-13.0.tar.xz" -C "$WORK/nvrtc-13.0"
  LIBDIRS+=("$WORK/nvrtc-13.0")
fi
while IFS= read -r d; do LIBDIRS+=("$d"); done < <(python3 - <<'EOF'
import os, sys, glob
# cu13 wheels put everything in nvidia/cu13/lib; look in every python's site dirs.
try:
    import nvidia
    roots = list(nvidia.__path__)
except ImportError:
    roots = []
for pat in ("/usr/local/lib/python3*/*-packages/nvidia", "/usr/lib/python3*/*-packages/nvidia",
            "/opt/*/lib/python3*/site-packages/nvidia", os.path.expanduser("~/.local/lib/python3*/site-packages/nvidia"),
            os.environ.get("VIRTUAL_ENV", "/nonexistent") + "/lib/python3*/site-packages/nvidia"):
    roots += glob.glob(pat)
seen = set()
for r in roots:
    for d in [os.path.join(r, "cu13", "lib")] + glob.glob(os.path.join(r, "*", "lib")):
        if glob.glob(os.path.join(d, "lib*.so.13*")) and d not in seen:
            seen.add(d); print(d)
EOF
)
for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib; do [ -d "$d" ] && LIBDIRS+=("$d"); done
LD_LIBRARY_PATH="$(IFS=:; echo "${LIBDIRS[*]:-}")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export LD_LIBRARY_PATH
echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
ldd "$BIN" | grep -E 'cuda|nvrtc|cublas|not found' || true
if ldd "$BIN" | grep -q 'not found'; then
  if [ "$DRY" = 1 ]; then echo "(dry run: missing libraries tolerated)"; else die "the binary's libraries are not all found (above)"; fi
fi
NVRTC_SO="$(ldd "$BIN" | awk '/libnvrtc\.so/{print $3}')"

# Compile a kernel the way dfdx does at run time (its reshape kernel, same
# include paths and arch) and load it with the driver: catches missing headers,
# a missing libnvrtc-builtins, and a PTX ISA newer than the driver, before any fit.
if [ -n "$NVRTC_SO" ] && [ -f "$ENV_FILE" ]; then
  say "NVRTC preflight ($NVRTC_SO)"
  python3 - "$NVRTC_SO" "$VI_CUDA_INCLUDE_DIR" "$VI_DFDX_OUT_DIR" "$VI_CUDA_COMPUTE_CAP" "$DRY" <<'EOF' || die "NVRTC preflight failed"
import ctypes, sys
so, inc, outdir, arch, dry = sys.argv[1:]
nv = ctypes.CDLL(so)
a, b = ctypes.c_int(), ctypes.c_int()
nv.nvrtcVersion(ctypes.byref(a), ctypes.byref(b))
nvrtc_ver = (a.value, b.value)
src = b'''
#if __WORDSIZE == 64
typedef long int intptr_t;
#else
typedef int intptr_t;
#endif
#include "cuda_utils.cuh"
extern "C" __global__ void reshape_fwd(const size_t numel, const size_t inp_num_dims, const size_t out_num_dims,
    const size_t *info, const float *inp, float *out) {
    const size_t *inp_dims = info; const size_t *inp_strides = info + inp_num_dims;
    const size_t *out_dims = info + 2 * inp_num_dims; const size_t *out_strides = info + 2 * inp_num_dims + out_num_dims;
    for (unsigned int i = blockIdx.x * blockDim.x + threadIdx.x; i < numel; i += blockDim.x * gridDim.x) {
        out[get_strided_index(i, out_num_dims, out_dims, out_strides)] = inp[get_strided_index(i, inp_num_dims, inp_dims, inp_strides)];
    }
}'''
prog = ctypes.c_void_p()
assert nv.nvrtcCreateProgram(ctypes.byref(prog), src, b"reshape.cu", 0, None, None) == 0
opts = [f"--include-path={inc}".encode(), f"--include-path={outdir}".encode(), f"--gpu-architecture={arch}".encode()]
rc = nv.nvrtcCompileProgram(prog, len(opts), (ctypes.c_char_p * len(opts))(*opts))
n = ctypes.c_size_t(); nv.nvrtcGetProgramLogSize(prog, ctypes.byref(n))
log = ctypes.create_string_buffer(n.value); nv.nvrtcGetProgramLog(prog, log)
if rc != 0:
    sys.exit(f"NVRTC {nvrtc_ver} compile failed (rc {rc}):\n{log.value.decode()}")
nv.nvrtcGetPTXSize(prog, ctypes.byref(n)); ptx = ctypes.create_string_buffer(n.value); nv.nvrtcGetPTX(prog, ptx)
isa = next(l for l in ptx.value.decode().splitlines() if l.startswith(".version"))
print(f"NVRTC {nvrtc_ver[0]}.{nvrtc_ver[1]} compiled it: PTX {isa}")
try:
    cu = ctypes.CDLL("libcuda.so.1")
except OSError as e:
    if dry == "1":
        print(f"(dry run: no driver: {e})"); sys.exit(0)
    raise
v = ctypes.c_int(); cu.cuDriverGetVersion(ctypes.byref(v))
drv = (v.value // 1000, v.value % 1000 // 10)
print(f"driver CUDA {drv[0]}.{drv[1]}")
def ok(r, what):
    if r != 0:
        s = ctypes.c_char_p(); cu.cuGetErrorName(r, ctypes.byref(s))
        sys.exit(f"{what}: {s.value.decode() if s.value else r}"
                 + (f" (NVRTC {nvrtc_ver} is newer than the driver's CUDA {drv}: bring nvrtc-13.0.tar.xz)"
                    if what.startswith("cuModuleLoadData") and nvrtc_ver > drv else ""))
ok(cu.cuInit(0), "cuInit")
dev = ctypes.c_int(); ok(cu.cuDeviceGet(ctypes.byref(dev), 0), "cuDeviceGet")
ctx = ctypes.c_void_p(); ok(cu.cuDevicePrimaryCtxRetain(ctypes.byref(ctx), dev), "cuDevicePrimaryCtxRetain")
ok(cu.cuCtxSetCurrent(ctx), "cuCtxSetCurrent")
mod = ctypes.c_void_p(); ok(cu.cuModuleLoadData(ctypes.byref(mod), ptx), "cuModuleLoadData (driver JIT of NVRTC's PTX)")
print("driver loaded the NVRTC PTX")
EOF
fi

# One fit = one output folder with summary.json; wall time is measured here.
fit() { # fit NAME WHICH BINARY ARGS...
  local name="$1" which="$2" bin="$3"; shift 3
  local out="$WORK/$name-$which" s rc=0
  rm -rf "$out"
  s=$EPOCHREALTIME
  timeout "$RUN_TIMEOUT" "$bin" fit "$@" --out "$out" >"$out.log" 2>&1 || rc=$?
  awk -v n="$name" -v w="$which" -v rc="$rc" -v s="$s" -v e="$EPOCHREALTIME" \
    'BEGIN { printf "%s %s %s %.3f\n", n, w, rc, e - s }' >>"$WORK/walls.txt"
  if [ "$rc" != 0 ]; then
    echo "  $name on $which: exit $rc; last lines of $out.log:"; tail -n 8 "$out.log" | sed 's/^/    /'
  fi
  return 0
}

GPU_DEV=(--device cuda)
[ "$DRY" = 1 ] && GPU_DEV=()
HAVE_CPU=0
[ -x "$VINF_CPU" ] && HAVE_CPU=1
rm -f "$WORK/walls.txt"

say "vinf-cuda check models/gmm.vi"
"$BIN" check models/gmm.vi >"$WORK/check.log" 2>&1 || { cat "$WORK/check.log"; die "check failed"; }
tail -n 1 "$WORK/check.log"

# name | model | extra args. Small SVI models (gradients on tiny tensors, so
# launch-bound on a GPU) and the VAE's networks for one epoch.
CASES=(
  "eight_schools|models/eight_schools.vi|"
  "logreg|models/logreg.vi|"
  "vae_digits|models/vae.vi|--epochs 1"
)
if [ -f "$MNIST" ]; then
  CASES+=("vae_mnist|models/vae.vi|--epochs 1 --data x=$MNIST")
else
  echo "(no MNIST at $MNIST: its VAE epoch is skipped)"
fi

for c in "${CASES[@]}"; do
  IFS='|' read -r name model extra <<<"$c"
  if [ $(( $(date +%s) - T0 )) -gt "$BUDGET" ]; then
    echo "(over the ${BUDGET}s budget: $name skipped)"; continue
  fi
  # shellcheck disable=SC2086
  say "$name: fit $model $extra"
  # shellcheck disable=SC2086
  fit "$name" gpu "$BIN" "$model" "${GPU_DEV[@]}" $extra
  # shellcheck disable=SC2086
  [ "$HAVE_CPU" = 1 ] && fit "$name" cpu "$VINF_CPU" "$model" $extra
done
[ "$HAVE_CPU" = 1 ] || echo "(no CPU binary at $VINF_CPU: GPU figures only, nothing to compare)"

say "CPU vs GPU"
# Tolerances are about 3x the spread between CPU fits with seeds 0..3 (same
# seed here, but GPU float sums and kernels differ, so treat it as another
# draw): ELBO 0.23 nats (eight schools) and 0.14 (logreg) -> 1 nat; posterior
# means 0.12 sd -> 0.35 sd; VAE per-row ELBO 2.2% (digits), 1.4% (MNIST) ->
# 5%, held-out 4% -> 10%. A broken kernel gives NaN or errors far beyond these.
rc=0
python3 - "$WORK" "${CASES[@]}" <<'EOF' || rc=$?
import json, os, sys
work, cases = sys.argv[1], [c.split("|")[0] for c in sys.argv[2:]]
k = float(os.environ.get("TOL_SCALE", "1"))
walls = {}
for line in open(os.path.join(work, "walls.txt")):
    n, w, rc, t = line.split()
    walls[(n, w)] = (int(rc), float(t))
def load(n, w):
    p = os.path.join(work, f"{n}-{w}", "summary.json")
    return json.load(open(p)) if os.path.exists(p) else None
fails, rows = [], []
def num(x): return float("nan") if x is None else float(x)
for n in cases:
    g, c = load(n, "gpu"), load(n, "cpu")
    gw, cw = walls.get((n, "gpu")), walls.get((n, "cpu"))
    if gw is None:
        rows.append(f"{n:14s} skipped"); continue
    if g is None:
        fails.append(f"{n}: no GPU summary.json (exit {gw[0] if gw else '?'})"); continue
    line = f"{n:14s} GPU elbo {num(g['elbo']):14.4f} time_s {num(g.get('time_s')):8.2f} wall {gw[1]:7.2f}s"
    if g.get("epochs"):
        line += f"  epoch {g['epochs'][-1]['seconds']:.2f}s"
    if g["elbo"] is None or g["elbo"] != g["elbo"]:
        fails.append(f"{n}: GPU ELBO is {g['elbo']}")
    if c is None:
        rows.append(line + ("  (CPU run failed)" if cw else "")); 
        if cw: fails.append(f"{n}: CPU run gave no summary.json (exit {cw[0]})")
        continue
    line += f"\n{'':14s} CPU elbo {num(c['elbo']):14.4f} time_s {num(c.get('time_s')):8.2f} wall {cw[1]:7.2f}s"
    if c.get("epochs"):
        line += f"  epoch {c['epochs'][-1]['seconds']:.2f}s"
    rows.append(line)
    def check(what, gv, cv, tol):
        d = abs(gv - cv)
        bad = not (d <= tol)
        rows.append(f"{'':14s}   {what:28s} gpu {gv:12.4f} cpu {cv:12.4f} |d| {d:9.4f} tol {tol:8.4f}{'  FAIL' if bad else ''}")
        if bad: fails.append(f"{n}: {what} differs by {d:.4g} > {tol:.4g}")
    if g.get("elbo_per_row") is not None and c.get("elbo_per_row") is not None:
        check("elbo_per_row", g["elbo_per_row"], c["elbo_per_row"], 0.05 * k * abs(c["elbo_per_row"]))
        gh, ch = g["epochs"][-1].get("heldout"), c["epochs"][-1].get("heldout")
        if gh and ch:
            check("heldout elbo (per row)", gh["elbo"], ch["elbo"], 0.10 * k * abs(ch["elbo"]))
    else:
        check("elbo", g["elbo"], c["elbo"], 1.0 * k)
    for name, lc in c.get("latents", {}).items():
        lg = g.get("latents", {}).get(name)
        if lg is None:
            fails.append(f"{n}: latent {name} missing on GPU"); continue
        if len(lc["mean"]) > 64:  # per-row codes of amortised models
            continue
        worst = max(range(len(lc["mean"])), key=lambda j: abs(lg["mean"][j] - lc["mean"][j]) / lc["sd"][j])
        check(f"{name}[{worst}] mean (worst/sd)", lg["mean"][worst], lc["mean"][worst], 0.35 * k * lc["sd"][worst])
print("\n".join(rows))
with open(os.path.join(work, "compare.txt"), "w") as f:
    f.write("\n".join(rows) + "\n" + "\n".join(fails) + "\n")
if fails:
    print("\nFAILED:\n  " + "\n  ".join(fails)); sys.exit(1)
print("\nall agree")
EOF
echo "gpu-check took $(( $(date +%s) - T0 )) s; logs and summaries in $WORK"
exit $rc
