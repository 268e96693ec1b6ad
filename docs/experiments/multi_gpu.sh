#!/usr/bin/env bash
# Run several sweeps at once, one per GPU of a host, and pack what comes back into few files.
#
#   bash docs/experiments/multi_gpu.sh JOB [JOB ...]
#
# JOB is KIND:LIST[:FIRST-LAST], run on GPU i (the i-th JOB, counting from 0, modulo the GPUs seen):
#   sweep:docs/experiments/sweep10.txt:1-4         recipe.py runs (docs/experiments/sweep.sh), P=4
#   go:docs/experiments/go/sweep_go5.txt:1-3       Go-trainer runs (docs/experiments/go_sweep.sh), P=3
#   search:docs/experiments/search1.txt:1-8         native eval runs (docs/experiments/search_sweep.sh), P_SEARCH=4
#   check:PATH/TO/nli_torch.py                     native/gpu_kernels_check.sh (CUDA tests + benchmark)
#   curve:PATH/TO/W.nliw.sz:DIR                    native curve --device cuda --tasks ${CURVE_TASKS:-200} --out DIR
#                                                  --resume (continues a partial DIR, e.g. docs/curves' json
#                                                  copied there as curve.json), stopped cleanly by its time limit
#                                                  (CURVE_DEVICE=cuda, CURVE_FLAGS: more flags, NATIVE=bin/native,
#                                                  CURVE_LIMIT=540 its --time-limit, CURVE_TIMEOUT=570 its kill)
# Environment: OUT (default ./out), P_SWEEP=4, P_GO=3, MAX_SEQS=8192 (Go evaluations beside others),
# and anything sweep.sh / go_sweep.sh read (TIMEOUT, DEADLINE, ...).
#
# At the end $OUT holds results.tar.xz (every job's summary.txt and all_logs.txt, and the check's
# logs and fresh PTX), the Go runs' weights as NN_NAME.nliw.sz (the final weights, or those of the
# checkpoint of a run stopped by its time limit, converted by native convert; at most KEEP_WEIGHTS=5
# files, since the device machine brings back 8 files of 16 MiB, 64 MiB together), and the
# summaries are printed last.
set -u
[ $# -ge 1 ] || { sed -n '2,20p' "$0"; exit 2; }
OUT=${OUT:-$PWD/out}; P_SWEEP=${P_SWEEP:-4}; P_GO=${P_GO:-3}; P_SEARCH=${P_SEARCH:-4}; KEEP_WEIGHTS=${KEEP_WEIGHTS:-5}
export MAX_SEQS=${MAX_SEQS:-8192}
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64
mkdir -p "$OUT"
# Runs kept by an earlier call on the same (warm) machine would be brought back instead of this
# call's (the eleventh session's sweep 21 returned three of sweep 20's weights): start clean.
rm -rf /tmp/multi_gpu_j*
N=$(nvidia-smi -L 2>/dev/null | wc -l); (( N > 0 )) || N=1
nvidia-smi -L 2>/dev/null
i=0
for job in "$@"; do
  IFS=: read -r kind list range <<< "$job"
  gpu=$(( i % N )); name=j$i; i=$((i + 1))
  case $kind in
    sweep) (CUDA_VISIBLE_DEVICES=$gpu P=$P_SWEEP OUT=$OUT/$name bash docs/experiments/sweep.sh "$list" $range > "$OUT/$name.txt" 2>&1) & ;;
    go) (CUDA_VISIBLE_DEVICES=$gpu P=$P_GO OUT=$OUT/$name RUNS_KEEP=/tmp/multi_gpu_$name bash docs/experiments/go_sweep.sh "$list" $range > "$OUT/$name.txt" 2>&1) & ;;
    search) (CUDA_VISIBLE_DEVICES=$gpu P=$P_SEARCH OUT=$OUT/$name NATIVE=${NATIVE:-bin/native} bash docs/experiments/search_sweep.sh "$list" $range > "$OUT/$name.txt" 2>&1) & ;;
    check) (CUDA_VISIBLE_DEVICES=$gpu OUT=$OUT/$name timeout 560 bash native/gpu_kernels_check.sh "$list" > "$OUT/$name.txt" 2>&1; echo "check rc $?" >> "$OUT/$name.txt") & ;;
    curve) (mkdir -p "$range"; CUDA_VISIBLE_DEVICES=$gpu timeout "${CURVE_TIMEOUT:-570}" "${NATIVE:-bin/native}" curve --device "${CURVE_DEVICE:-cuda}" \
              --weights "$list" --tasks "${CURVE_TASKS:-200}" --out "$range" --resume --time-limit "${CURVE_LIMIT:-540}" --quiet ${CURVE_FLAGS:-} \
              > "$OUT/$name.txt" 2>&1
            echo "curve rc $?" >> "$OUT/$name.txt"; mkdir -p "$OUT/$name"; cp "$range"/curve.* "$OUT/$name/" 2>/dev/null) & ;;
    *) echo "multi_gpu: unknown job kind '$kind' in '$job' (sweep, go, search, check, curve)" >&2; exit 2 ;;
  esac
  echo "job $name on GPU $gpu: $job"
done
wait
# A checkpoint (a run stopped by its time limit) holds the optimiser's moments too, 3x the weights
# (30 MB for exec sym): convert it to its weights alone, which fit the 16 MiB a file brought back.
kept=0
for d in /tmp/multi_gpu_j*/runs*/*/; do
  [ -d "$d" ] || continue
  (( kept < KEEP_WEIGHTS )) || break
  dst=$OUT/$(basename "$d").nliw.sz
  if [ -f "$d/model.nliw.sz" ]; then cp "$d/model.nliw.sz" "$dst"
  elif [ -f "$d/checkpoint.nliw.sz" ]; then
    "${NATIVE:-bin/native}" convert --weights "$d/checkpoint.nliw.sz" --out "$dst" >/dev/null || continue
  else continue; fi
  if (( $(stat -c %s "$dst") > 16000000 )); then echo "multi_gpu: $dst is over 16 MB, not brought back" >&2; rm -f "$dst"; continue; fi
  kept=$((kept + 1))
done
cd "$OUT" || exit 1
parts=$(ls -d j* 2>/dev/null)
tar cJf results.tar.xz $parts && rm -rf $parts
ls -la "$OUT"
for j in $(tar tJf results.tar.xz | grep -E '^j[0-9]+/summary.txt$'); do echo "== $j"; tar xJf results.tar.xz -O "$j" | cut -c1-200; done
tar xJf results.tar.xz -O $(tar tJf results.tar.xz | grep -E '^j[0-9]+\.txt$') 2>/dev/null | grep -E '^(training:|search:|check rc|curve rc|stopped|--- FAIL)' || true
