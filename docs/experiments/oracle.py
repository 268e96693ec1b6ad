#!/usr/bin/env python3
"""Oracle-program diagnostic: given the TRUE programs, can the interpreter network (each --exec kind)
learn the primitives of a split and run its OOD compositions?

No inductor. Each primitive of the split gets a fixed symbol id (1, 2, ... in order of first use; never
SKIP), each task's hidden program is written as those ids in execution order (slot 0 runs first) padded
with SKIP at the end to T, as the trained inductor writes them ("rotl k as k copies of one symbol among
SKIPs"): comp-i primitives are recipe.py's 8 PRIMS, a comp-i OOD program "f>h" is [h, f, SKIP...];
shift-l / shift-p have one primitive, rotl1, and rotl k is k copies of it. The program goes to recipe.NLI's
interpreter as hard one-hot symbols (no Gumbel on the program). Only the interpreter (state embeddings
Eio, P, the step network) and the instruction embeddings Ev are trained, on recipe.py's NLL of the output,
with recipe.py's state relaxation (Gumbel-softmax states at tau_d annealed td0 -> td1, state noise on by
default, --st_state / --nll_eps as in recipe.py), AdamW, warm-up, global-norm clip and the same data stream.
Evaluation is hard (argmax states, no noise): each primitive alone on --ntest random inputs; ID and OOD
tasks (recipe.py's evaluation tasks: seeds 99 / 1234, ntest tasks of m+1 pairs) with their true programs,
over all pairs and over the query pair only (the latter is the pair recipe.py scores); OOD per program.
ood_pred / id_pred = the accuracy expected if errors came only from independent per-primitive errors
(product of the primitives' accuracies along each program), to tell composition failures from
primitive failures.

CPU smoke test:  python3 docs/experiments/oracle.py --split comp-i --exec film --K 16 --steps 30 --B 16 --ntest 20 --log_every 10
GPU:             python3 docs/experiments/oracle.py --split comp-i --exec film --K 16 --steps 8000 --time_budget 200
Output: JSON lines, "kind": "start" / "train" (every --log_every steps) / "stop" / "summary" (last line).
"""
import json, math, os, shlex, sys, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch
import torch.nn.functional as F
from recipe import (L, V, SKIP, NLI, base_parser, PRIMS, programs, prog_name, sample_tasks, schedule, lr_factor,
                    gnorm, sync, run_fraction, log_train, end_train)


# ----------------------------------------------------------------------------- oracle programs

def prim_steps(step):
    """one step of a recipe.py program -> the primitive names it runs, in order."""
    name, k = step
    if name == "rotl":                       # shift splits: rotl k = k x rotl1 (PRIMS["rotl1"] = rotl(x, 1))
        return ["rotl1"] * k
    return [name]


def decompose(prog):
    return [p for s in prog for p in prim_steps(s)]


class Oracle:
    """the symbol map of a split and the true programs of its parts as SKIP-padded symbol rows."""

    def __init__(s, split, T, K):
        s.prims = []
        for part in ("train", "test"):
            for prog in programs(split, part):
                for p in decompose(prog):
                    if p not in s.prims:
                        s.prims.append(p)
        if len(s.prims) + 1 > K:
            raise SystemExit(f"K={K} has no room for {len(s.prims)} primitives + SKIP")
        s.sym = {p: i + 1 for i, p in enumerate(s.prims)}           # SKIP = 0 is never a primitive
        assert SKIP not in s.sym.values()
        s.seen = set(p for prog in programs(split, "train") for p in decompose(prog))
        s.T, s.K = T, K
        s.rows, s.lens, s.names, s.decs = {}, {}, {}, {}
        for part in ("train", "test"):
            progs = programs(split, part)
            rows, lens = [], []
            for prog in progs:
                ids = [s.sym[p] for p in decompose(prog)]
                if len(ids) > T:
                    raise SystemExit(f"program {prog_name(prog)} needs {len(ids)} slots > T={T}")
                rows.append(ids + [SKIP] * (T - len(ids)))
                lens.append(len(ids))
            s.rows[part] = torch.tensor(rows, dtype=torch.long)    # (n_prog, T)
            s.lens[part] = torch.tensor(lens, dtype=torch.long)
            s.names[part] = [prog_name(p) for p in progs]
            s.decs[part] = [decompose(p) for p in progs]

    def z(s, ids, device):
        """symbol rows (..., T) -> hard one-hot program (..., T, K)."""
        return F.one_hot(ids.to(device), s.K).float()


def execute(model, x, z, tau_d, trim, **kw):
    """model.execute on the first `trim` slots only (trim = the longest program; the rest are SKIP).
    Exact: a hard SKIP slot sets pi <- 1*pi + 0*pt (and the same for the st_state output), so the
    trailing SKIP slots change neither the output nor the gradient; they only cost T/trim x the time.
    Only the Gumbel draws of the skipped slots are not made."""
    T = model.T
    if trim is None or trim >= T:
        return model.execute(x, z, tau_d, **kw)
    model.T = trim
    try:
        return model.execute(x, z[..., :trim, :], tau_d, **kw)
    finally:
        model.T = T


def interpreter_params(model):
    enc, head = model.inductor_params()
    ids = set(id(p) for p in enc + head)
    return [p for p in model.parameters() if id(p) not in ids], enc + head

# ----------------------------------------------------------------------------- training

def train(model, orc, a, device):
    params, frozen = interpreter_params(model)
    for p in frozen:
        p.requires_grad_(False)
    opt = torch.optim.AdamW(params, lr=a.lr, weight_decay=a.wd)     # recipe.py: the "rest" group, lr_mult 1
    gen = torch.Generator().manual_seed(a.data_seed)
    rows, lens = orc.rows["train"], orc.lens["train"]
    t0 = time.time()
    st = dict(steps_done=0, train_s=0.0, diverged=False, nll_win=[], last=None)
    nll_acc, nll_cnt = torch.zeros((), device=device), 0
    step, stop = 0, False
    while step < a.steps and not stop:
        f, stop = run_fraction(a, step, t0)
        td = schedule(a.td0, a.td1, f, a.sched, a.anneal_frac)
        lrf = lr_factor(a, step, f)
        for g in opt.param_groups:
            g["lr"] = a.lr * lrf
        x, y, idx = sample_tasks(a.split, "train", a.B, a.m, gen, device)     # (B, m, L), idx on CPU
        z = orc.z(rows[idx], device)[:, None].expand(-1, a.m, -1, -1)           # (B, m, T, K)
        trim = int(lens[idx].max()) if a.trim else None
        sn = a.state_noise * (min(1.0, f / a.snoise_ramp) if a.snoise_ramp > 0 else 1)
        lp = execute(model, x, z, td, trim, noise=sn, st_state=a.st_state, eps=a.nll_eps)
        nll = -lp.gather(-1, y[..., None]).squeeze(-1).sum(-1).mean()             # as recipe.py
        opt.zero_grad(set_to_none=True)
        nll.backward()
        logging = step % a.log_every == 0 or step == a.steps - 1 or stop
        if logging:
            gn_ev = gnorm([model.Ev])
        gn = torch.nn.utils.clip_grad_norm_(params, a.clip)
        opt.step()
        nll_acc = nll_acc + nll.detach(); nll_cnt += 1
        step += 1
        if logging:
            with torch.no_grad():                                    # the updated model, this batch, hard
                out = execute(model, x, z, 1.0, trim, noise=False, hard=True).argmax(-1)
                ok = (out == y).all(-1).float().mean().item()
                pos = (out == y).float().mean().item()
            sync(device)
            nv = nll.item()
            rec = dict(kind="train", step=step - 1, nll=round(nv, 4), nll_avg=round(nll_acc.item() / nll_cnt, 4),
                       gn=round(gn.item(), 3), gn_ev=round(gn_ev, 4), td=round(td, 3), lr=round(a.lr * lrf, 6),
                       hard_acc=round(ok, 4), hard_pos=round(pos, 4), s=round(time.time() - t0, 1),
                       sps=round(step / max(1e-9, time.time() - t0), 2))
            nll_acc, nll_cnt = torch.zeros((), device=device), 0
            if log_train(st, rec, nv, step):
                break
    return end_train(st, nll_acc, nll_cnt, step, t0, device)

# ----------------------------------------------------------------------------- evaluation

@torch.no_grad()
def hard_ok(model, orc, x, ids, trim, chunk):
    """x (n, ..., L), ids (n, T): each row's program on its inputs -> the hard (argmax) outputs (n, ..., L)."""
    outs = []
    n = x.shape[0]
    c = n if chunk <= 0 else chunk
    for i in range(0, n, c):
        xi = x[i:i + c]
        z = orc.z(ids[i:i + c], x.device)                           # (c, T, K)
        tk = z.shape[1:]
        z = z.reshape(z.shape[0], *([1] * (xi.dim() - 2)), *tk).expand(*xi.shape[:-1], *tk)
        outs.append(execute(model, xi, z, 1.0, trim, noise=False, hard=True).argmax(-1))
    return torch.cat(outs)


def evaluate(model, orc, a, device):
    model.eval()
    res = {}
    trim = None
    # (1) each primitive alone on ntest random inputs
    gen = torch.Generator().manual_seed(7)
    x = torch.randint(0, V, (a.ntest, L), generator=gen)
    prim_acc, prim_pos = {}, {}
    for p in orc.prims:
        ids = torch.full((a.ntest, orc.T), SKIP, dtype=torch.long)
        ids[:, 0] = orc.sym[p]
        out = hard_ok(model, orc, x.to(device), ids, 1 if a.trim else None, a.eval_chunk).cpu()
        prim_acc[p] = round((out == PRIMS[p](x)).all(-1).float().mean().item(), 4)
        prim_pos[p] = round((out == PRIMS[p](x)).float().mean().item(), 4)
    res["prim"] = prim_acc
    res["prim_pos"] = prim_pos                                       # per-position accuracy (exact match: prim)
    res["prim_mean"] = round(sum(prim_acc.values()) / len(prim_acc), 4)
    res["prim_unseen"] = [p for p in orc.prims if p not in orc.seen]     # primitives only OOD programs use
    # (2) ID and (3) OOD: recipe.py's evaluation tasks (same seeds, ntest tasks of m+1 pairs, query = last)
    for part, tag in (("train", "id"), ("test", "ood")):
        gen = torch.Generator().manual_seed(1234 if part == "test" else 99)
        x, y, idx = sample_tasks(a.split, part, a.ntest, a.m + 1, gen, device)
        trim = int(orc.lens[part][idx].max()) if a.trim else None
        out = hard_ok(model, orc, x, orc.rows[part][idx], trim, a.eval_chunk)
        ok = (out == y).all(-1).float().cpu()                        # (ntest, m+1)
        res[tag] = round(ok.mean().item(), 4)                        # every pair of every task
        res[f"{tag}_query"] = round(ok[:, a.m].mean().item(), 4)     # the pair recipe.py scores
        pred = torch.tensor([math.prod(prim_acc[p] for p in orc.decs[part][k]) for k in idx.tolist()])
        res[f"{tag}_pred"] = round(pred.mean().item(), 4)
        by = {orc.names[part][k]: round(ok[idx == k].mean().item(), 3)
              for k in range(len(orc.names[part])) if (idx == k).any()}
        res[f"{tag}_by"] = by
        if part == "test":
            res["ood_by_n"] = {orc.names[part][k]: int((idx == k).sum()) * (a.m + 1)
                               for k in range(len(orc.names[part])) if (idx == k).any()}
    model.train()
    return res

# ----------------------------------------------------------------------------- main

def parse(argv=None):
    ap, A = base_parser(__doc__, "comp-i")
    A("--exec", dest="exec_kind", default="mlp", choices=["mlp", "film", "res", "sym"])
    A("--res_blocks", type=int, default=2)
    A("--lr", type=float, default=3e-4); A("--wd", type=float, default=0.0); A("--clip", type=float, default=1.0)
    A("--warmup", type=int, default=0, help="linear LR warm-up steps")
    A("--lr_sched", default="const", choices=["const", "cos"]); A("--lr_min", type=float, default=0.1)
    A("--td0", type=float, default=2.0); A("--td1", type=float, default=0.5)
    A("--sched", default="geo", choices=["geo", "cos", "linear"])
    A("--anneal_frac", type=float, default=1.0, help="reach td1 at this fraction of training, then hold")
    A("--sched_by_time", type=int, default=0, help="1: training fraction = max(step/steps, elapsed/time_budget)")
    A("--state_noise", type=int, default=1, help="Gumbel noise on interpreter states in training")
    A("--snoise_ramp", type=float, default=0.0, help="ramp the state noise 0 -> 1 over this fraction (0: off)")
    A("--st_state", action="store_true", help="straight-through interpreter states in training (recipe.py)")
    A("--nll_eps", type=float, default=0.0, help="as recipe.py: NLL on log((1-eps) pi + eps/V)")
    A("--trim", type=int, default=1,
      help="1: execute only up to the longest program of the batch (exact: the rest are hard SKIPs); 0: all T")
    A("--time_budget", type=float, default=0.0, help="stop training after this many seconds (0: off), then evaluate")
    A("--seed", type=int, default=0, help="model init and noise seed")
    A("--data_seed", type=int, default=1, help="training data stream seed (recipe.py: 1)")
    A("--ntest", type=int, default=200, help="random inputs per primitive; tasks (of m+1 pairs) per ID / OOD part")
    A("--eval_chunk", type=int, default=0, help="evaluate this many rows at a time (0: all)")
    A("--device", default="auto", choices=["auto", "cpu", "cuda"])
    A("--log_every", type=int, default=0, help="a train line every N steps (0: steps // 20)")
    a = ap.parse_args(argv)
    if a.log_every <= 0:
        a.log_every = max(1, a.steps // 20)
    return a


def main(argv=None):
    a = parse(argv)
    flags = " ".join(shlex.quote(s) for s in (sys.argv[1:] if argv is None else argv))
    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if a.device == "auto" else a.device)
    torch.manual_seed(a.seed)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
    # the whole NLI, created as recipe.py creates it (so the interpreter's init matches recipe.py's for a
    # seed); the inductor's parameters are frozen and never used
    model = NLI(T=a.T, K=a.K, exec_kind=a.exec_kind, res_blocks=a.res_blocks).to(device)
    orc = Oracle(a.split, a.T, a.K)
    params, _ = interpreter_params(model)
    print(json.dumps(dict(kind="start", name=a.name, flags=flags, device=str(device), torch=torch.__version__,
                          params_trained=sum(p.numel() for p in params), symbols=orc.sym,
                          prims_unseen_in_train=[p for p in orc.prims if p not in orc.seen],
                          train_programs={n: r[:max(1, int(l))].tolist() for n, r, l in
                                          zip(orc.names["train"], orc.rows["train"], orc.lens["train"])},
                          n_ood_programs=len(orc.names["test"]))), flush=True)
    st = dict(steps_done=0, train_s=0.0, diverged=False, nll_win=[], last=None)
    if a.steps > 0:
        st = train(model, orc, a, device)
    t0 = time.time()
    r = evaluate(model, orc, a, device)
    sync(device)
    summ = dict(kind="summary", name=a.name, split=a.split, exec=a.exec_kind, flags=flags, device=str(device),
                steps_done=st["steps_done"], train_s=st["train_s"],
                sps=round(st["steps_done"] / max(1e-9, st["train_s"]), 2), diverged=st["diverged"],
                nll_end=st["nll_win"][-1] if st["nll_win"] else None,
                nll_min=min(st["nll_win"]) if st["nll_win"] else None,
                td_end=(st["last"] or {}).get("td"), symbols=orc.sym)
    summ.update(r)
    summ["eval_s"] = round(time.time() - t0, 2)
    summ["args"] = vars(a)
    print(json.dumps(summ), flush=True)


if __name__ == "__main__":
    main()
