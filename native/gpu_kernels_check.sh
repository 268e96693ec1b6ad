#!/usr/bin/env bash
# native/gpu_kernels_check.sh: one GPU call that compiles changed kernels and
# checks and measures them, for a branch whose kernels/*.ptx are stale (made
# where there is no nvcc). Run from the repository root on the GPU machine,
# with bin/native and bin/cuda.test built beforehand from the same tree
# (CUDA_HOME=.cuda ./build.sh native; their embedded PTX is the old one, so
# both run here with NLI_PTX_DIR pointing at the PTX made in step 1):
#   native/gpu_kernels_check.sh [path/to/nli_torch.py]   (default .scratch/nli_torch.py)
# Steps, each logged under $OUT (default gpu-check/):
#   1. ./build.sh kernels (nvcc, kernels.NVCCFlags): fresh kernels/*.ptx, each
#      with its source's SHA-256; copied to $OUT/kernels/ so that they can be
#      committed afterwards (cp $OUT/kernels/*.ptx kernels/).
#   2. bin/cuda.test -test.v: the conformance suite, TF32 and fast-GELU
#      bounds, Gumbel bit for bit, index errors, TestTrainParity.
#   3. native/bench_gpu.sh: PyTorch and Go side by side (training and search
#      ratios, peak memory, the per-op profile).
#   4. the search rate of bin/native and, with BASE=path/to/a/main/binary
#      (built from main, its own PTX embedded), of that binary, alternating,
#      twice each: an A/B on the same card in the same call.
# The last lines are a summary. Every step runs even when one before fails
# (except that nothing runs without fresh PTX); the exit status is that of
# the first failed step.
set -uo pipefail
cd "$(dirname "$0")/.."
REF=${1:-.scratch/nli_torch.py}
OUT=${OUT:-gpu-check}
mkdir -p "$OUT/kernels"
OUT=$(cd "$OUT" && pwd)
export PATH=$PATH:/usr/local/cuda/bin
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64 PYTHONUNBUFFERED=1
status=0
fail() {
  echo "gpu_kernels_check: $1" >&2
  [ "$status" = 0 ] && status=${2:-1}
}
for f in bin/native bin/cuda.test "$REF"; do
  [ -e "$f" ] || { echo "gpu_kernels_check: $f is missing (carry bin/native, bin/cuda.test and the PyTorch reference)" >&2; exit 2; }
done
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"

echo "== 1. ./build.sh kernels"
if ! ./build.sh kernels 2>&1 | tee "$OUT/kernels.txt"; then
  echo "gpu_kernels_check: nvcc failed; nothing else runs (see $OUT/kernels.txt)" >&2
  exit 1
fi
ptx=$(mktemp -d)
cp kernels/*.ptx "$ptx/"
cp kernels/*.ptx "$OUT/kernels/"
export NLI_PTX_DIR=$ptx
# Every kernel that kernels/kernels.go lists must be an entry of the new PTX
# (the backend checks it too, at New).
for src in kernels/*.cu; do
  name=$(basename "$src" .cu)
  want=$(grep -o 'extern "C" __global__ void [a-z0-9_]*' "$src" | awk '{print $5}' | sort)
  got=$(sed -n 's/^\.visible \.entry \([a-z0-9_]*\)(.*/\1/p' "$ptx/$name.ptx" | sort)
  [ "$want" = "$got" ] || fail "$name.ptx: entries differ from $src's kernels"
done

echo "== 2. bin/cuda.test -test.v (NLI_PTX_DIR=$ptx)"
timeout 420 bin/cuda.test -test.v -test.timeout 400s 2>&1 | tee "$OUT/cuda_test.txt"
[ "${PIPESTATUS[0]}" = 0 ] || fail "bin/cuda.test failed"

echo "== 3. native/bench_gpu.sh $REF"
timeout 200 native/bench_gpu.sh "$REF" 2>&1 | tee "$OUT/bench.txt"
[ "${PIPESTATUS[0]}" = 0 ] || fail "native/bench_gpu.sh failed"

echo "== 4. search A/B: BASE=${BASE:-(unset)} and bin/native, alternating, twice each"
AB="--device cuda --train-steps 0 --search-steps 200 --tasks 200 --starts 64 --json"
rate() { python3 -c 'import json, sys; print(round(json.load(sys.stdin)["search_start_steps_per_s"]))' 2>/dev/null || echo failed; }
: > "$OUT/ab.txt"
for i in 1 2; do
  if [ -n "${BASE:-}" ]; then # the base binary runs its own embedded PTX
    # shellcheck disable=SC2086
    echo "base   $BASE: $(env -u NLI_PTX_DIR timeout 60 "$BASE" bench $AB | rate)" | tee -a "$OUT/ab.txt"
  fi
  # shellcheck disable=SC2086
  echo "branch bin/native: $(timeout 60 bin/native bench $AB | rate)" | tee -a "$OUT/ab.txt"
done
grep -q failed "$OUT/ab.txt" && fail "search A/B: a bench failed"

echo
echo "== summary ($(cat "$OUT/gpu.txt"))"
echo "PTX regenerated into $OUT/kernels/: $(ls "$OUT/kernels" | tr '\n' ' ')"
grep -E '^(--- (PASS|FAIL|SKIP)|PASS$|FAIL$|ok|panic)' "$OUT/cuda_test.txt" | grep -v '^    ' || echo "cuda.test: no result lines"
grep -E 'FastGELU|largest error' "$OUT/cuda_test.txt" | head -8
grep -E '^(training:|search: +torch|search, one hard check|peak GPU)' "$OUT/bench.txt" || echo "bench_gpu.sh: no result lines"
echo "search start-steps/s, alternating runs:"
cat "$OUT/ab.txt"
echo "search profile, top rows:"
awk '/^search: time per op/{on=1; n=0} on{print; if (++n > 11) exit}' "$OUT/bench.txt"
exit "$status"
