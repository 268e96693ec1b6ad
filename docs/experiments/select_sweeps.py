#!/usr/bin/env python3
"""Best of N by training NLL, on finished Go sweeps (docs/DESIGN.md, "Best of three").

For every run of the given sweeps (docs/experiments/results/go_sweepNN_{logs.txt.xz,summary.txt}) it
computes `native select`'s score -- the mean NLL of the final attempt's metrics lines at log steps and
the final step within the run's last WINDOW steps -- and prints, per split, the runs sorted by it with
P (met the issue's target: ID gradient >= 0.99 and OOD gradient >= 0.99, comp-i 0.91) or f. With
--groups S1,S2,... it also forms the best-of-N groups {N r, ..., N r + N - 1} of each split's seeds over
those sweeps (one run per split and seed) and says which run `native select` would keep and whether it
meets the target.

    python3 docs/experiments/select_sweeps.py 16 17 18 19 20 21 22 23
    python3 docs/experiments/select_sweeps.py --groups 21 --n 3 21
    python3 docs/experiments/select_sweeps.py --groups 21,24 21 24
    python3 docs/experiments/select_sweeps.py --groups 21,24 --table 21 24   (the groups as a Markdown table)
"""
import argparse
import json
import lzma
import re

SPLITS = ("comp-i", "shift-p", "shift-l")


cols = {}  # run name -> its six accuracies as printed in the summary (filled by load)


def load(sweep, window):
    """Runs of one sweep: name -> (split, seed, score, id_gradient, ood_gradient)."""
    base = f"docs/experiments/results/go_sweep{sweep}"
    acc = {}
    for line in open(base + "_summary.txt"):
        p = line.split()
        if len(p) < 10 or not p[0][:2].isdigit():
            continue
        idx = [k for k, t in enumerate(p) if t in SPLITS]
        if not idx:
            continue
        i = idx[0]
        try:
            acc[p[0]] = (p[i], float(p[i - 4]), float(p[i - 1]))  # IDgrd, OODgrd precede the split
            cols[p[0]] = p[i - 6:i]  # ID inductor / prior / gradient, OOD inductor / prior / gradient
        except ValueError:
            pass
    runs, name, every, seed = {}, None, 50, {}
    with lzma.open(base + "_logs.txt.xz", "rt") as f:
        for line in f:
            if line.startswith("====="):
                name = line.split()[1]
                runs[name] = []
                continue
            if not line.startswith("{") or name is None:
                continue
            try:
                r = json.loads(line)
            except ValueError:
                continue
            if r.get("kind") == "start":
                seed[name] = int(r["seed"])
            elif r.get("kind") == "config":
                every = r["train"]["log_every"]
            elif r.get("kind") == "train" and "nll" in r and not r.get("pretrain"):
                runs[name].append((r.get("attempt", 0), r["step"], r["nll"], every))
    out = {}
    for n, v in runs.items():
        if n not in acc or not v:
            continue
        a = max(x[0] for x in v)
        last = max(x[1] for x in v if x[0] == a)
        w = [x[2] for x in v if x[0] == a and x[1] > last - window and (x[1] % x[3] == 0 or x[1] == last)]
        split, idg, oodg = acc[n]
        out[n] = (split, seed.get(n), sum(w) / len(w), idg, oodg)
    return out


def meets(split, idg, oodg):
    return idg >= 0.99 and oodg >= (0.91 if split == "comp-i" else 0.99)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("sweeps", nargs="+", type=int)
    ap.add_argument("--window", type=int, default=500)
    ap.add_argument("--groups", help="form best-of-N groups from these sweeps' seeds (comma-separated)")
    ap.add_argument("--n", type=int, default=3)
    ap.add_argument("--table", action="store_true", help="print the groups as a Markdown table, every candidate a row")
    args = ap.parse_args()
    allruns = {}
    for s in args.sweeps:
        for n, r in load(s, args.window).items():
            allruns[(s, n)] = r
    for sp in SPLITS:
        v = sorted([(k, r) for k, r in allruns.items() if r[0] == sp], key=lambda kr: kr[1][2])
        if not v:
            continue
        npass = sum(1 for _, r in v if meets(*r[:1], *r[3:]))
        print(f"{sp}: {len(v)} runs, {npass} met the target; by score (P met, f not):")
        print("  " + " ".join(("P" if meets(r[0], r[3], r[4]) else "f") + f"{r[2]:.3g}" for _, r in v))
    if args.groups:
        gs = {int(x) for x in args.groups.split(",")}
        g = {n: r for (s, n), r in allruns.items() if s in gs}
        print(f"best of {args.n} in sweeps {args.groups} (groups of seeds N r .. N r + N - 1):")
        table = []
        for sp in SPLITS:
            bys = {}
            for n, r in g.items():
                if r[0] == sp:
                    if r[1] in bys:
                        raise SystemExit(f"{sp} seed {r[1]} twice: {bys[r[1]][0]} and {n}")
                    bys[r[1]] = (n, r)
            for base in range(0, max(bys or [0]) + 1, args.n):
                grp = [bys[s] for s in range(base, base + args.n) if s in bys]
                if len(grp) < args.n:
                    continue
                n, r = min(grp, key=lambda nr: nr[1][2])
                cands = ", ".join(f"s{x[1]} {x[2]:.3g} (ID {x[3]:.3f}, OOD {x[4]:.3f})" for _, x in grp)
                ok = "meets" if meets(r[0], r[3], r[4]) else "FAILS"
                print(f"  {sp} seeds {base}-{base + args.n - 1}: keeps {n} -> ID {r[3]:.3f} OOD {r[4]:.3f}: {ok}   [{cands}]")
                for gn, x in grp:
                    c = cols[gn]
                    table.append(f"| {sp} | {base // args.n} | {x[1]} | {gn} | {x[2]:.3g} | {' / '.join(c[:3])} | "
                                 f"{' / '.join(c[3:])} | {'yes' if meets(x[0], x[3], x[4]) else 'no'} | "
                                 f"{'**kept**' + (', meets' if ok == 'meets' else ', FAILS') if gn == n else ''} |")
        if args.table:
            print("| split | recipe seed | Go seed | run | score (NLL) | ID inductor / prior / gradient | "
                  "OOD inductor / prior / gradient | met | best of three |")
            print("|---|---|---|---|---|---|---|---|---|")
            print("\n".join(table))


if __name__ == "__main__":
    main()
