#!/usr/bin/env bash
# native/ptx_variants.sh: compare compile-time variants of the kernels on the
# GPU in one call, without rebuilding Go. Each variant is kernels/*.cu
# compiled by nvcc with kernels.NVCCFlags plus its own flags (e.g.
# -DSMALL_BATCH=8, a kernel-internal constant of rows.cu) into a PTX folder
# of its own; bin/native then runs the search benchmark once per variant
# and round, with NLI_PTX_DIR pointing at that folder (the CUDA backend
# loads PTX from there instead of the embedded PTX), variants alternating,
# so that every variant is timed on the same card in the same call.
#
#   native/ptx_variants.sh NAME:FLAGS [NAME:FLAGS ...]
#   e.g. native/ptx_variants.sh base: b8:-DSMALL_BATCH=8 b16:-DSMALL_BATCH=16
#   NAME::FLAGS replaces kernels.NVCCFlags instead of adding to them, e.g.
#   fmad::"-ptx -arch=compute_80 -fmad=true" (contracted multiply-adds: not
#   the CPU's arithmetic, so only the speed is of interest) or
#   sm90::"-ptx -arch=compute_90 -fmad=false".
#
# Run from the repository root on the GPU machine with bin/native built
# beforehand (CUDA_HOME=.cuda ./build.sh native). Environment: ROUNDS=2,
# BENCH_FLAGS (default: the search of native/bench_gpu.sh, 200 tasks × 64
# starts × 200 steps, no training), OUT=ptx-variants (each variant's PTX
# and bench JSON are left there). Only constants that the host does not
# also use may vary (SMALL_ROWS, UNROLL and the like are tied to
# native/cuda/launch.go). The last lines are the table.
set -uo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 1 ] || { sed -n '2,20p' "$0"; exit 2; }
OUT=${OUT:-ptx-variants}; ROUNDS=${ROUNDS:-2}
BENCH_FLAGS=${BENCH_FLAGS:---train-steps 0 --search-steps 200 --tasks 200 --starts 64}
export PATH=$PATH:/usr/local/cuda/bin
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64
[ -x bin/native ] || { echo "ptx_variants: bin/native is missing (CUDA_HOME=.cuda ./build.sh native, then carry it)" >&2; exit 2; }
command -v nvcc >/dev/null || { echo "ptx_variants: nvcc not found" >&2; exit 2; }
flags=$(sed -n 's/^const NVCCFlags = "\(.*\)"$/\1/p' kernels/kernels.go)
mkdir -p "$OUT"
names=()
for v in "$@"; do
  name=${v%%:*}; extra=${v#*:}; vflags=$flags
  if [ "${extra:0:1}" = : ]; then vflags=${extra#:}; extra=""; fi   # NAME::FLAGS replaces NVCCFlags
  case $name in ''|*[!A-Za-z0-9_-]*) echo "ptx_variants: bad variant name in '$v'" >&2; exit 2 ;; esac
  dir=$OUT/ptx-$name; mkdir -p "$dir"
  for src in kernels/*.cu; do
    base=$(basename "$src" .cu)
    # shellcheck disable=SC2086
    if ! nvcc $vflags $extra -o "$dir/$base.ptx.body" "$src" > "$dir/nvcc.txt" 2>&1; then
      echo "ptx_variants: nvcc failed for $name ($vflags $extra) on $src, variant skipped:" >&2; cat "$dir/nvcc.txt" >&2
      continue 2
    fi
    # The header line the backend expects (kernels.HeaderPrefix + source hash).
    { echo "// nli-kernels: source $base.cu sha256 $(sha256sum "$src" | cut -d' ' -f1)"; echo "// nvcc $vflags $extra"
      cat "$dir/$base.ptx.body"; } > "$dir/$base.ptx"
    rm -f "$dir/$base.ptx.body"
  done
  names+=("$name")
  echo "variant $name: nvcc $vflags $extra"
done
for r in $(seq 1 "$ROUNDS"); do
  for name in "${names[@]}"; do
    # shellcheck disable=SC2086
    NLI_PTX_DIR=$OUT/ptx-$name bin/native bench --device cuda $BENCH_FLAGS --json > "$OUT/$name-$r.json" 2> "$OUT/$name-$r.err" ||
      echo "ptx_variants: bench failed for $name (round $r): $(tail -3 "$OUT/$name-$r.err")" >&2
    echo "round $r $name: $(grep -o '"search_start_steps_per_s": [0-9.]*' "$OUT/$name-$r.json" | awk '{print $2}') start-steps/s"
  done
done
echo "== search start-steps/s per variant (rounds 1..$ROUNDS)"
for name in "${names[@]}"; do
  printf '%-12s' "$name"
  for r in $(seq 1 "$ROUNDS"); do
    printf ' %12s' "$(grep -o '"search_start_steps_per_s": [0-9.]*' "$OUT/$name-$r.json" 2>/dev/null | awk '{printf "%.0f", $2}')"
  done
  echo
done
