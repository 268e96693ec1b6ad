#!/usr/bin/env bash
# Train and evaluate Go-trainer configurations in parallel on one GPU (or the CPU) and tabulate them.
#
#   bash docs/experiments/go_sweep.sh LIST.txt [FIRST-LAST]
#
# LIST.txt: one run a line, 'NAME SPLIT STEPS SEED CONFIG [extra native train flags]'; text after
# '#' and blank lines are ignored. CONFIG is a JSON config looked up beside LIST.txt, then as given
# (from the current directory), else passed on as a preset name (tiny, default, sym). The extra flags go
# to 'native train' (e.g. --lr 3e-4 --log-every 10). FIRST-LAST (1-based, counting runs only) runs
# a subset.
#
# Each run: 'native train --device DEVICE --config CONFIG --split SPLIT --steps STEPS --seed SEED
# --out RUNS/NN_NAME', stopped with SIGINT (it saves its checkpoint and exits) once it has used its
# share of the time; then 'native eval --json' of its weights (or, if training was stopped, of the
# checkpoint) on ID and OOD tasks, with --time-limit 20 s short of its share (a stopped evaluation
# reports the tasks it did: eval column PT), then 'native language --json' of the same weights while
# time is left (the summary's probe and dist columns: the encoder probe, and how many distinct symbol
# programs the inductor writes for the training programs).
#
# Environment (defaults):
#   OUT=./out          results folder: summary.txt, all_logs.txt (and runs/ unless PRUNE=1)
#   NATIVE=bin/native  the binary (build: CUDA_HOME=.cuda ./build.sh native; CPU only: go build -o F ./native)
#   DEVICE=cuda        cuda or cpu (WORKERS=1: CPU worker goroutines per process, cpu only)
#   P=4                runs at once
#   TIMEOUT=570        wall-clock limit of one run, training and evaluation, seconds
#   DEADLINE=585       wall-clock limit of the whole sweep: a run gets at most what is left, and a
#                      run that would get less than MIN_RUN=120 seconds is not started
#   EVAL_RESERVE=150   seconds of a run's limit kept for its evaluation: training gets the rest
#   TASKS=200          tasks per evaluated part (id, ood)
#   MAX_SEQS=16384     eval --max-seqs (bounds each evaluation's memory when several share a GPU)
#   TRAIN_FLAGS=""     flags appended to every 'native train' (after the list's own)
#   EVAL_FLAGS=""      flags appended to every 'native eval' (e.g. "--starts 16 --search-steps 50")
#   SUMPY=python3      writes the table and all_logs.txt
#   PRUNE=1            at the end move $OUT/runs to $RUNS_KEEP (default /tmp/nli_go_sweep_runs) so
#                      that $OUT holds only summary.txt and all_logs.txt (the device machine brings
#                      back at most 8 files from $OUT); PRUNE=0 leaves them
set -u
CFG=${1:?usage: go_sweep.sh LIST.txt [FIRST-LAST]}
RANGE=${2:-}
LISTDIR=$(cd "$(dirname "$CFG")" && pwd)
OUT=${OUT:-$PWD/out}; NATIVE=${NATIVE:-bin/native}; DEVICE=${DEVICE:-cuda}; WORKERS=${WORKERS:-1}
P=${P:-4}; TIMEOUT=${TIMEOUT:-570}; DEADLINE=${DEADLINE:-585}; MIN_RUN=${MIN_RUN:-120}
EVAL_RESERVE=${EVAL_RESERVE:-150}; TASKS=${TASKS:-200}; MAX_SEQS=${MAX_SEQS:-16384}
TRAIN_FLAGS=${TRAIN_FLAGS:-}; EVAL_FLAGS=${EVAL_FLAGS:-}; SUMPY=${SUMPY:-python3}
PRUNE=${PRUNE:-1}; RUNS_KEEP=${RUNS_KEEP:-/tmp/nli_go_sweep_runs}
RUNS=$OUT/runs
START=$(date +%s)
FIRST=1; LAST=1000000
if [ -n "$RANGE" ]; then FIRST=${RANGE%-*}; LAST=${RANGE#*-}; fi
if [ ! -x "$NATIVE" ]; then echo "go_sweep: no executable $NATIVE (set NATIVE)" >&2; exit 2; fi
NATIVE=$(cd "$(dirname "$NATIVE")" && pwd)/$(basename "$NATIVE")
mkdir -p "$RUNS"
DEVFLAGS="--device $DEVICE"
if [ "$DEVICE" = cpu ]; then
  DEVFLAGS="$DEVFLAGS --workers $WORKERS"
else
  export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64   # the real libcuda and cuBLAS (docs/CUDA.md)
fi

names=(); specs=()
n=0
while IFS= read -r raw || [ -n "$raw" ]; do
  line=${raw%%#*}
  read -r -a f <<< "$line"
  [ ${#f[@]} -eq 0 ] && continue
  n=$((n + 1))
  (( n < FIRST || n > LAST )) && continue
  if [ ${#f[@]} -lt 5 ]; then echo "go_sweep: $CFG: want NAME SPLIT STEPS SEED CONFIG [flags]: $line" >&2; exit 2; fi
  cfg=${f[4]}
  if [ -f "$LISTDIR/$cfg" ]; then cfg=$LISTDIR/$cfg; elif [ -f "$cfg" ]; then cfg=$(cd "$(dirname "$cfg")" && pwd)/$(basename "$cfg"); fi
  names+=("$(printf '%02d_%s' "$n" "$(echo "${f[0]}" | tr -cd 'A-Za-z0-9._-')")")
  specs+=("${f[1]}|${f[2]}|${f[3]}|$cfg|${f[*]:5}")
done < "$CFG"
for i in "${!names[@]}"; do printf '%s\t%s\n' "${names[$i]}" "${specs[$i]}"; done > "$RUNS/index.tsv"
echo "go_sweep: ${#names[@]} runs, P=$P, DEVICE=$DEVICE, TIMEOUT=$TIMEOUT, DEADLINE=$DEADLINE, OUT=$OUT"

MON=""
if [ "$DEVICE" != cpu ] && command -v nvidia-smi >/dev/null 2>&1; then
  nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used --format=csv,noheader -l 30 > "$RUNS/gpu.txt" 2>&1 &
  MON=$!; disown "$MON" 2>/dev/null
fi

# run_one NAME LIMIT SPLIT STEPS SEED CONFIG FLAGS: train then evaluate into $RUNS/NAME/.
run_one() {
  local name=$1 lim=$2 split=$3 steps=$4 seed=$5 cfg=$6 flags=$7
  local dir=$RUNS/$name t0 trc erc w tlim elim
  mkdir -p "$dir"
  tlim=$(( lim - EVAL_RESERVE )); (( tlim < 30 )) && tlim=30
  t0=$(date +%s)
  # shellcheck disable=SC2086
  timeout -s INT -k 30 "$tlim" "$NATIVE" train $DEVFLAGS --quiet --config "$cfg" --split "$split" \
    --steps "$steps" --seed "$seed" --out "$dir" $flags $TRAIN_FLAGS > "$dir/train.log" 2>&1
  trc=$?
  local t1; t1=$(date +%s)
  w=$dir/model.nliw.sz
  [ -f "$w" ] || w=$dir/checkpoint.nliw.sz
  elim=$(( lim - (t1 - t0) ))
  if [ ! -f "$w" ]; then
    erc=noweights
  elif (( elim < 10 )); then
    erc=notime
  else
    # shellcheck disable=SC2086
    # --time-limit: the evaluation stops itself 20 s before the kill and reports the tasks done
    # (every part's inductor and prior first, then the searches), instead of losing everything.
    timeout -k 10 "$elim" "$NATIVE" eval $DEVFLAGS --weights "$w" --split "$split" --tasks "$TASKS" \
      --parts id,ood --json --max-seqs "$MAX_SEQS" --time-limit $(( elim > 40 ? elim - 20 : elim / 2 )) \
      $EVAL_FLAGS > "$dir/eval.json" 2> "$dir/eval.log"
    erc=$?
  fi
  # The learned language and the encoder probe (native language; seconds on a GPU), while time is left.
  local left=$(( lim - ($(date +%s) - t0) ))
  if [ -f "$w" ] && (( left >= 15 )); then
    timeout -k 5 $(( left < 70 ? left - 10 : 60 )) "$NATIVE" language $DEVFLAGS --weights "$w" --json \
      > "$dir/language.json" 2> "$dir/language.log"
  fi
  # native select's score (mean training NLL of the last 500 steps; docs/DESIGN.md "Best of three").
  [ -f "$dir/model.nliw.sz" ] && "$NATIVE" select --json "$dir" > "$dir/select.json" 2>> "$dir/eval.log"
  printf '{"kind": "exit", "train_rc": "%s", "eval_rc": "%s", "train_s": %d, "eval_s": %d, "limit_s": %d, "train_limit_s": %d, "weights": "%s"}\n' \
    "$trc" "$erc" $(( t1 - t0 )) $(( $(date +%s) - t1 )) "$lim" "$tlim" "$(basename "$w")" > "$dir/exit.json"
}

for i in "${!names[@]}"; do
  while (( $(jobs -rp | wc -l) >= P )); do wait -n; done
  name=${names[$i]}
  IFS='|' read -r split steps seed cfg flags <<< "${specs[$i]}"
  left=$(( DEADLINE - ($(date +%s) - START) ))
  if (( left < MIN_RUN )); then
    mkdir -p "$RUNS/$name"
    echo "{\"kind\": \"exit\", \"train_rc\": \"skip\", \"eval_rc\": \"skip\", \"left_s\": $left}" > "$RUNS/$name/exit.json"
    echo "skip  $name (only ${left}s left)"; continue
  fi
  lim=$(( TIMEOUT < left ? TIMEOUT : left ))
  echo "start $name (limit ${lim}s): $split $steps steps, seed $seed, $(basename "$cfg") $flags"
  run_one "$name" "$lim" "$split" "$steps" "$seed" "$cfg" "$flags" &
done
wait
[ -n "$MON" ] && kill "$MON" 2>/dev/null
echo "go_sweep done in $(( $(date +%s) - START ))s"

# summary table and all_logs.txt
"$SUMPY" - "$RUNS" "$OUT" "${names[@]}" <<'EOF'
import json, os, re, sys
runs, out, names = sys.argv[1], sys.argv[2], sys.argv[3:]
index = dict(l.rstrip("\n").split("\t", 1) for l in open(f"{runs}/index.tsv") if "\t" in l)
W = 5  # NLL window: logged steps averaged for 'nll' (the last W) and 'nllmin' (the lowest W in a row)

def jl(path):
    """The JSON objects of a JSONL file (other lines skipped)."""
    rs = []
    try:
        for ln in open(path, errors="replace"):
            try: rs.append(json.loads(ln))
            except ValueError: pass
    except FileNotFoundError: pass
    return rs

def jfile(path):
    try: return json.load(open(path))
    except (FileNotFoundError, ValueError): return {}

def lines(path):
    try: return open(path, errors="replace").read().splitlines()
    except FileNotFoundError: return []

def f(v, w=5):
    if v is None: return "-".rjust(w)
    if isinstance(v, float): return f"{v:{w}.2f}" if abs(v) >= 10 else f"{v:{w}.3f}"
    return str(v).rjust(w)

def num(v):
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None

def rc(v, timed_out):
    return {"124": timed_out, "137": "KILL"}.get(str(v), str(v))

hdr = (f"{'run':<26} {'train':>5} {'eval':>5} {'steps':>6} {'sps':>6} {'nll':>6} {'nllmin':>6} {'sym':>4} {'prg':>4} "
       f"{'MI':>5}/{'max':<5} {'hacc':>5} {'spl':>3} {'c1':>3} {'att':>3} {'skp':>3} {'sel':>8} {'probe':>5} {'dist':>5} {'IDind':>5} {'IDpri':>5} {'IDgrd':>5} {'OODind':>6} {'OODpri':>6} {'OODgrd':>6}  split config flags")
table = [f"nll: mean NLL of the last {W} logged steps; nllmin: lowest mean of {W} logged steps in a row; "
         "sym prg MI hacc: the last diagnostics; spl: symbol splits made (train.split_every); c1: of those, cuts of a symbol that held one task program (10 slots or more of one program, none of another); att: restarts made (train.restart_at); skp: updates skipped (train.spike_skip); sel: native select's score (mean NLL of the log lines of the last 500 steps); probe: native language's encoder probe; dist: training programs / distinct symbol programs the inductor writes for them (8/8: none merged); train INT: stopped at its time limit (evaluated from its checkpoint); eval TO: timed out, PT: partial (its --time-limit stopped it: accuracies over the tasks done, tasks_done in all_logs.txt)", hdr]
logs = []
for nm in names:
    d = f"{runs}/{nm}"
    split, steps, seed, cfg, flags = (index.get(nm, "????") + "||||").split("|")[:5]
    met = [r for r in jl(f"{d}/metrics.jsonl") if "step" in r]
    ev, ex, lang = jfile(f"{d}/eval.json"), jfile(f"{d}/exit.json"), jfile(f"{d}/language.json")
    sel = num(((jfile(f"{d}/select.json").get("candidates") or [{}])[0]).get("nll"))
    probe = num((lang.get("encoder") or {}).get("accuracy"))
    progs = lang.get("programs") or []
    dist = f"{len(progs)}/{len({tuple(p.get('symbols') or []) for p in progs})}" if progs else "-"
    nll = [r["nll"] for r in met if "nll" in r]
    win = [sum(nll[i:i + W]) / len(nll[i:i + W]) for i in range(max(1, len(nll) - W + 1))] if nll else []
    last = met[-1] if met else {}
    splits = [r["split"] for r in met if isinstance(r.get("split"), dict) and not r["split"].get("skipped")]
    nsplit = len(splits)
    def nprog(sp):  # task programs with 10 or more of the cut symbol's slots
        cnt = {}
        for side in ("to_new", "stay"):
            for k, v in (sp.get(side) or {}).items():
                cnt[k] = cnt.get(k, 0) + v
        return sum(1 for v in cnt.values() if v >= 10)
    cut1 = sum(1 for sp in splits if nprog(sp) == 1)
    att = max([r.get("attempt", 0) for r in met] or [0])
    skp = max([r.get("skips", 0) for r in met] or [0])
    dg = next((r for r in reversed(met) if "mi" in r), {})
    st = last.get("step")
    stop = [int(m.group(1)) for m in map(re.compile(r"interrupted at step (\d+)").search, lines(f"{d}/train.log")) if m]
    st = stop[-1] if stop else st  # stopped by its time limit: the checkpoint's step
    sps = st / ex["train_s"] if st and ex.get("train_s") else None
    part = lambda p, k: num((ev.get(p) or {}).get(k))
    mi = f"{f(num(dg.get('mi')))}/{f(num(dg.get('mi_max'))):<5}"
    erc = rc(ex.get('eval_rc', '?'), 'TO')
    if ev.get("stopped") and erc == "0":
        erc = "PT"  # partial: --time-limit stopped it; accuracies over the tasks done
    table.append(f"{nm[:26]:<26} {rc(ex.get('train_rc', '?'), 'INT'):>5} {erc:>5} {f(st, 6)} {f(sps, 6)} "
                 f"{f(sum(nll[-W:]) / len(nll[-W:]) if nll else None, 6)} {f(min(win) if win else None, 6)} "
                 f"{f(dg.get('sym_total'), 4)} {f(dg.get('n_prog'), 4)} {mi} {f(num(dg.get('hard_acc')))} {nsplit:>3} {cut1:>3} {att:>3} {skp:>3} {(f'{sel:8.3g}' if sel is not None else '-'.rjust(8))} {f(probe)} {dist:>5} "
                 f"{f(part('id', 'inductor'))} {f(part('id', 'prior'))} {f(part('id', 'gradient'))} "
                 f"{f(part('ood', 'inductor'), 6)} {f(part('ood', 'prior'), 6)} {f(part('ood', 'gradient'), 6)}  "
                 f"{split} {os.path.basename(cfg)} {flags}".rstrip())
    logs.append(f"===== {nm}")
    logs.append(json.dumps(dict(kind="start", name=nm, split=split, steps=steps, seed=seed, config=cfg, flags=flags)))
    c = jfile(f"{d}/config.json")
    if c: logs.append(json.dumps(dict(kind="config", **c)))
    logs += lines(f"{d}/train.log")
    logs += [json.dumps(dict(kind="train", **r)) for r in met]
    logs += lines(f"{d}/eval.log")
    if ev: logs.append(json.dumps(dict(kind="eval", **ev)))
    if lang: logs.append(json.dumps(dict(kind="language", **lang)))
    logs.append(json.dumps(ex or dict(kind="exit", train_rc="?")))
gpu = lines(f"{runs}/gpu.txt")
if gpu: logs += ["===== gpu (timestamp, util, memory)"] + gpu
open(f"{out}/summary.txt", "w").write("\n".join(table) + "\n")
open(f"{out}/all_logs.txt", "w").write("\n".join(logs) + "\n")
print("\n".join(table))
EOF

if [ "$PRUNE" = 1 ]; then
  mkdir -p "$RUNS_KEEP"; rm -rf "$RUNS_KEEP/runs.$START"; mv "$RUNS" "$RUNS_KEEP/runs.$START"
  echo "logs: $OUT/all_logs.txt (runs, weights included, moved to $RUNS_KEEP/runs.$START)"
fi
