#!/usr/bin/env bash
# Compare gradient-search settings on trained weights: several `native eval` runs at once on one GPU
# (or the CPU), one table, and every task's answer kept for analysis.
#
#   bash docs/experiments/search_sweep.sh LIST.txt [FIRST-LAST]
#
# LIST.txt: one evaluation a line, 'NAME WEIGHTS [native eval flags]' (e.g. --set search.sigma=2
# --starts 256); text after '#' and blank lines are ignored; WEIGHTS is looked up as given (from the
# current directory). FIRST-LAST (1-based, counting evaluations only) runs a subset.
#
# Each: native eval --device DEVICE --weights WEIGHTS --parts PARTS --tasks TASKS --seed SEED --json
# --per-task OUT/NAME.jsonl [flags] > OUT/NAME.json. Then OUT/summary.txt: one row per evaluation with
# each part's inductor / prior / gradient accuracy, spec-solved share, median steps and search time.
#
# Environment (defaults): OUT=./out, NATIVE=bin/native, DEVICE=cuda, P=4 (evaluations at once),
# PARTS=ood, TASKS=200, SEED=1234, MAX_SEQS=16384, TIMEOUT=540 (one evaluation, seconds),
# DEADLINE=570 (the whole sweep: an evaluation is started only with MIN_RUN=60 seconds left).
set -u
LIST=${1:?usage: search_sweep.sh LIST.txt [FIRST-LAST]}
RANGE=${2:-}
OUT=${OUT:-$PWD/out}; NATIVE=${NATIVE:-bin/native}; DEVICE=${DEVICE:-cuda}; P=${P:-4}
PARTS=${PARTS:-ood}; TASKS=${TASKS:-200}; SEED=${SEED:-1234}; MAX_SEQS=${MAX_SEQS:-16384}
TIMEOUT=${TIMEOUT:-540}; DEADLINE=${DEADLINE:-570}; MIN_RUN=${MIN_RUN:-60}
START=$(date +%s)
[ -x "$NATIVE" ] || { echo "search_sweep: no executable $NATIVE (set NATIVE)" >&2; exit 2; }
[ -f "$LIST" ] || { echo "search_sweep: no list $LIST" >&2; exit 2; }
[ "$DEVICE" = cpu ] || export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64
mkdir -p "$OUT"
FIRST=1; LAST=1000000
if [ -n "$RANGE" ]; then FIRST=${RANGE%-*}; LAST=${RANGE#*-}; fi

names=(); lines=()
n=0
while IFS= read -r raw || [ -n "$raw" ]; do
  line=${raw%%#*}
  read -r -a f <<< "$line"
  [ ${#f[@]} -eq 0 ] && continue
  n=$((n + 1))
  (( n < FIRST || n > LAST )) && continue
  if [ ${#f[@]} -lt 2 ]; then echo "search_sweep: $LIST: want NAME WEIGHTS [flags]: $line" >&2; exit 2; fi
  if [ ! -f "${f[1]}" ]; then echo "search_sweep: $LIST: no weights file ${f[1]} (line: $line)" >&2; exit 2; fi
  names+=("$(printf '%02d_%s' "$n" "$(echo "${f[0]}" | tr -cd 'A-Za-z0-9._-')")")
  lines+=("${f[*]:1}")
done < "$LIST"
echo "search_sweep: ${#names[@]} evaluations, P=$P, PARTS=$PARTS, TASKS=$TASKS, OUT=$OUT"

running=0
for i in "${!names[@]}"; do
  name=${names[$i]}
  read -r -a f <<< "${lines[$i]}"
  left=$(( DEADLINE - ($(date +%s) - START) ))
  if (( left < MIN_RUN )); then echo "skip $name: ${left}s left"; continue; fi
  lim=$(( TIMEOUT < left ? TIMEOUT : left ))
  echo "start $name (limit ${lim}s): ${lines[$i]}"
  ( timeout -s INT -k 10 "$lim" "$NATIVE" eval --device "$DEVICE" --weights "${f[0]}" --parts "$PARTS" --tasks "$TASKS" \
      --seed "$SEED" --max-seqs "$MAX_SEQS" --json --per-task "$OUT/$name.jsonl" "${f[@]:1}" > "$OUT/$name.json" 2> "$OUT/$name.err"
    echo "$?" > "$OUT/$name.rc" ) &
  running=$((running + 1))
  if (( running >= P )); then wait -n; running=$((running - 1)); fi
done
wait

{
  echo "# search_sweep $LIST: PARTS=$PARTS TASKS=$TASKS SEED=$SEED DEVICE=$DEVICE"
  printf '%-28s %-4s %5s %8s %6s %8s %6s %6s %7s  %s\n' run part rc inductor prior gradient solved medst search_s flags
  for i in "${!names[@]}"; do
    name=${names[$i]}
    rc=$(cat "$OUT/$name.rc" 2>/dev/null || echo -)
    python3 - "$OUT/$name.json" "$name" "$rc" "${lines[$i]}" <<'EOF'
import json, sys
path, name, rc, flags = sys.argv[1:5]
try:
    rep = json.load(open(path))
except Exception:
    print(f"{name:<28s} -    {rc:>5s} (no report)  {flags}"); sys.exit()
for part in ("id", "ood"):
    if part not in rep: continue
    r = rep[part]; g = r["detail"]["gradient"]
    print(f"{name:<28s} {part:<4s} {rc:>5s} {r['inductor']:8.3f} {r['prior']:6.3f} {r['gradient']:8.3f} "
          f"{g['spec_solved']:6.3f} {g.get('median_steps_to_solution', 0):6.0f} {g['wall_s']:7.1f}  {flags}")
EOF
  done
} > "$OUT/summary.txt"
cat "$OUT/summary.txt"
