#!/usr/bin/env bash
# Run recipe.py configurations in parallel on one GPU and tabulate the results.
#
#   bash docs/experiments/sweep.sh CONFIGS.txt [FIRST-LAST]
#
# CONFIGS.txt: one configuration a line, as recipe.py flags. Blank lines and text after '#' are
# ignored. A line '@common FLAGS' sets flags put before every following configuration (they are
# left out of the run names). FIRST-LAST (1-based, counting configurations only) runs a subset.
#
# Environment (defaults):
#   OUT=./out        results folder: runs/NAME.log, summary.txt, all_logs.txt
#   P=8              runs at once
#   TIMEOUT=570      wall-clock limit of one run, seconds (timeout -k 10)
#   DEADLINE=585     wall-clock limit of the whole sweep: a run gets at most what is left, and a
#                    run that would get less than MIN_RUN=120 seconds is not started
#   PY=python3       interpreter of the runs (SUMPY=python3 writes the table)
#   EXTRA=""         flags appended to every run (e.g. EXTRA="--seed 1")
#   PRUNE=1          at the end move $OUT/runs to $RUNS_KEEP (default /tmp/nli_sweep_runs) so
#                    that $OUT holds only summary.txt and all_logs.txt (the device machine brings
#                    back at most 8 files from $OUT); PRUNE=0 leaves them
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
CFG=${1:?usage: sweep.sh CONFIGS.txt [FIRST-LAST]}
RANGE=${2:-}
OUT=${OUT:-$PWD/out}; P=${P:-8}; TIMEOUT=${TIMEOUT:-570}; DEADLINE=${DEADLINE:-585}; MIN_RUN=${MIN_RUN:-120}
PY=${PY:-python3}; SUMPY=${SUMPY:-python3}; EXTRA=${EXTRA:-}; PRUNE=${PRUNE:-1}; RUNS_KEEP=${RUNS_KEEP:-/tmp/nli_sweep_runs}
RUNS=$OUT/runs
mkdir -p "$RUNS"
export PYTHONUNBUFFERED=1
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}   # P processes share the CPU cores (tiny CPU ops)
START=$(date +%s)
FIRST=1; LAST=1000000
if [ -n "$RANGE" ]; then FIRST=${RANGE%-*}; LAST=${RANGE#*-}; fi

names=(); lines=()
common=""; n=0
while IFS= read -r raw || [ -n "$raw" ]; do
  line=${raw%%#*}
  line=$(echo "$line" | sed -E 's/^[[:space:]]+//; s/[[:space:]]+$//')
  [ -z "$line" ] && continue
  if [[ $line == @common* ]]; then common=${line#@common}; continue; fi
  n=$((n + 1))
  (( n < FIRST || n > LAST )) && continue
  # NAME: NN_ + the flags, '--flag value' -> 'flag-value', '--split x' -> 'x' (letters, digits, . _ - only)
  short=$(echo "$line" | sed -E 's/--split[[:space:]]+([^[:space:]]+)/\1/; s/--([A-Za-z0-9_]+)[[:space:]]+([^-[:space:]][^[:space:]]*)/\1-\2/g; s/--//g; s/[[:space:]]+/_/g; s/[^A-Za-z0-9._-]//g' | cut -c1-90)
  names+=("$(printf '%02d_%s' "$n" "$short")")
  lines+=("$common $line")
done < "$CFG"
for i in "${!names[@]}"; do printf '%s\t%s\n' "${names[$i]}" "${lines[$i]}"; done > "$RUNS/index.tsv"
echo "sweep: ${#names[@]} runs, P=$P, TIMEOUT=$TIMEOUT, DEADLINE=$DEADLINE, OUT=$OUT"

MON=""
if command -v nvidia-smi >/dev/null 2>&1; then
  nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used --format=csv,noheader -l 30 > "$RUNS/gpu.txt" 2>&1 &
  MON=$!; disown "$MON" 2>/dev/null
fi

for i in "${!names[@]}"; do
  while (( $(jobs -rp | wc -l) >= P )); do wait -n; done
  name=${names[$i]}; args=${lines[$i]}
  left=$(( DEADLINE - ($(date +%s) - START) ))
  if (( left < MIN_RUN )); then
    echo "{\"kind\": \"exit\", \"rc\": \"skip\", \"left_s\": $left}" > "$RUNS/$name.log"
    echo "skip  $name (only ${left}s left)"; continue
  fi
  lim=$(( TIMEOUT < left ? TIMEOUT : left ))
  echo "start $name (limit ${lim}s): $args"
  (
    # shellcheck disable=SC2086
    timeout -k 10 "$lim" "$PY" "$HERE/recipe.py" $args $EXTRA --name "$name" > "$RUNS/$name.log" 2>&1
    rc=$?
    echo "{\"kind\": \"exit\", \"rc\": $rc, \"limit_s\": $lim}" >> "$RUNS/$name.log"
  ) &
done
wait
[ -n "$MON" ] && kill "$MON" 2>/dev/null
echo "sweep done in $(( $(date +%s) - START ))s"

# summary table
SWEEP_COMMON="$common" "$SUMPY" - "$RUNS" "$OUT/summary.txt" "${names[@]}" <<'EOF'
import json, os, sys
runs, dest, names = sys.argv[1], sys.argv[2], sys.argv[3:]
common = " ".join(os.environ.get("SWEEP_COMMON", "").split())
cfg = dict(l.rstrip("\n").split("\t", 1) for l in open(f"{runs}/index.tsv") if "\t" in l)
def own(flags):   # the run's own flags: without --name and the @common prefix
    fl = " ".join((flags or "").split(" --name ")[0].split())
    return fl[len(common):].strip() if common and fl.startswith(common) else fl
def f(v, w=5):
    if v is None: return "-".rjust(w)
    if isinstance(v, float): return f"{v:{w}.2f}" if abs(v) >= 10 else f"{v:{w}.3f}"
    return str(v).rjust(w)
hdr = (f"{'run':<44} {'rc':>4} {'steps':>6} {'sps':>6} {'nll':>6} {'nllmin':>6} {'sym':>4} {'prg':>4} "
       f"{'MI':>5}/{'max':<5} {'hacc':>5} {'IDind':>5} {'OODind':>6} {'OODpri':>6} {'OODgrd':>6}  flags")
out = ([f"common flags: {common}"] if common else []) + [hdr]
for nm in names:
    S, T, rc = {}, {}, "?"
    try:
        for ln in open(f"{runs}/{nm}.log", errors="replace"):
            if not ln.startswith("{"): continue
            try: r = json.loads(ln)
            except Exception: continue
            k = r.get("kind")
            if k == "summary": S = r
            elif k == "train": T = r
            elif k == "exit": rc = r.get("rc")
            elif k == "start": S.setdefault("flags", r.get("flags"))
    except FileNotFoundError:
        rc = "nolog"
    g = lambda k: S.get(k, T.get(k))
    steps = S.get("steps_done", (T.get("step", -1) + 1) if T else None)
    nll = S.get("nll_end", T.get("nll_avg"))
    rcs = "TO" if rc in (124, 137) else str(rc)
    out.append(f"{nm[:44]:<44} {rcs:>4} {f(steps,6)} {f(g('sps'),6)} {f(nll,6)} {f(S.get('nll_min'),6)} "
               f"{f(g('sym_total'),4)} {f(g('n_prog'),4)} {f(g('mi'),5)}/{f(g('mi_max'),5):<5} {f(g('hard_acc'),5)} "
               f"{f(S.get('id_inductor'),5)} {f(S.get('ood_inductor'),6)} {f(S.get('ood_prior'),6)} {f(S.get('ood_gradient'),6)}  "
               f"{own(S.get('flags') or cfg.get(nm, ''))}")
open(dest, "w").write("\n".join(out) + "\n")
print("\n".join(out))
EOF

# all logs in one file
{
  for nm in "${names[@]}"; do
    echo "===== $nm"
    cat "$RUNS/$nm.log" 2>/dev/null
  done
  if [ -f "$RUNS/gpu.txt" ]; then echo "===== gpu (timestamp, util, memory)"; cat "$RUNS/gpu.txt"; fi
} > "$OUT/all_logs.txt"

if [ "$PRUNE" = 1 ]; then
  mkdir -p "$RUNS_KEEP"; rm -rf "$RUNS_KEEP/runs.$START"; mv "$RUNS" "$RUNS_KEEP/runs.$START"
  echo "logs: $OUT/all_logs.txt (per-run logs moved to $RUNS_KEEP/runs.$START)"
fi
