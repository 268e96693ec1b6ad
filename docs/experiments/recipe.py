#!/usr/bin/env python3
"""NLI recipe experiments: the SPEC model, task suite and evaluation, plus training-recipe flags.

Written for the search of a recipe that trains shift-p and comp-i (SPEC §3). With every flag at
its default this script computes what ../../../shared/anchors/nli_torch.py computes (same task
suite, same parameter creation order and initialisation, same random-number consumption, same
loss, same evaluation), so its default run is a control. Every recipe flag changes one thing.

  python3 recipe.py --split comp-i --st --te0 2 --exec film --lr 1e-3 --warmup 200 --time_budget 420

Output: one JSON object per line.
  {"kind": "train", ...}    every steps//20 steps: loss, temperatures, grad norms, inductor diagnostics
  {"kind": "eval", ...}     one per evaluated part (train = ID programs on fresh tasks, test = OOD)
  {"kind": "summary", ...}  one at the end: the numbers that sweep.sh tabulates
Runs on CUDA when available, else on the CPU (smoke tests). See README.md for every flag.
"""
import argparse, collections, itertools, json, math, os, shlex, sys, time
import torch, torch.nn as nn, torch.nn.functional as F

L, V = 20, 10
SKIP = 0

# ----------------------------------------------------------------------------- task suite (SPEC §1)

def rotl(x, k): return torch.roll(x, -k, -1)            # y[i] = x[(i+k) % L]
def swap(x): return x.reshape(*x.shape[:-1], L // 2, 2).flip(-1).reshape(x.shape)
def addpos(x): return (x + torch.arange(L, device=x.device)) % V

PRIMS = {
    "rotl1": lambda x: rotl(x, 1), "rotr1": lambda x: rotl(x, -1),
    "inc": lambda x: (x + 1) % V, "dec": lambda x: (x - 1) % V,
    "rev": lambda x: x.flip(-1), "swap": swap,
    "neg": lambda x: V - 1 - x, "addpos": addpos,
}
NAMES = list(PRIMS)


def comp_pairs():
    """Ordered pairs (f, h), program = f after h, minus identities and single-primitive equals."""
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, V, (64, L), generator=g)
    singles = [PRIMS[n](x) for n in NAMES]
    out = []
    for f, h in itertools.permutations(NAMES, 2):
        y = PRIMS[f](PRIMS[h](x))
        if torch.equal(y, x) or any(torch.equal(y, s) for s in singles):
            continue
        out.append((f, h))
    return out


def programs(split, part):
    """part 'train' = the training programs (also the ID test), 'test' = the OOD programs."""
    if split == "shift-l":
        ks = range(1, 6) if part == "train" else range(6, 11)
        return [[("rotl", k)] for k in ks]
    if split == "shift-p":
        ks = range(4, 9) if part == "train" else range(1, 4)
        return [[("rotl", k)] for k in ks]
    if split == "comp-i":
        if part == "train":
            return [[(n, 0)] for n in NAMES]
        return [[(h, 0), (f, 0)] for f, h in comp_pairs()]   # applied left to right
    raise ValueError(split)


def prog_name(prog):
    return ">".join(f"rotl{k}" if n == "rotl" else n for n, k in prog)


def run_prog(prog, x):
    for name, k in prog:
        x = rotl(x, k) if name == "rotl" else PRIMS[name](x)
    return x


def sample_tasks(split, part, n, m, gen, device):
    """n tasks of m pairs; same generator calls as the reference. Returns x, y (n, m, L) and the
    program index of each task (CPU tensor)."""
    progs = programs(split, part)
    idx = torch.randint(0, len(progs), (n,), generator=gen)
    x = torch.randint(0, V, (n, m, L), generator=gen)
    y = torch.empty_like(x)
    for j, p in enumerate(progs):
        sel = idx == j
        if sel.any():
            y[sel] = run_prog(p, x[sel])
    return x.to(device), y.to(device), idx

# ----------------------------------------------------------------------------- relaxations

def gumbel_softmax(logits, tau, noise=True):
    """noise: False/0 none, True/1 standard Gumbel, a float in (0, 1) scales the Gumbel draw."""
    if noise:
        u = torch.rand_like(logits).clamp_(1e-9, 1 - 1e-9)
        g = torch.log(-torch.log(u))
        logits = logits - (g if noise is True or noise == 1 else float(noise) * g)
    return F.softmax(logits / tau, dim=-1)


def relax(logits, tau, noise=True, st=False, alpha=1.0, soft_gate=False):
    """Gumbel-softmax; with st, straight-through: hard one-hot forward, soft gradient back.
    alpha < 1: the forward is alpha·hard + (1−alpha)·soft (a ramp into straight-through), the
    gradient still the soft one. soft_gate: the hard part keeps the soft SKIP mass g and puts the
    rest on the most likely non-SKIP symbol, (1−g)·onehot(argmax_{k≠SKIP}) + g·onehot(SKIP), so the
    step network sees one real instruction while the gate stays soft (a hard argmax turned whole
    programs into SKIPs when st_from switched on: sweep 12)."""
    z = gumbel_softmax(logits, tau, noise)
    if st:
        if soft_gate:
            g = z[..., SKIP:SKIP + 1]
            zi = z.detach().clone()
            zi[..., SKIP] = -1.0
            zh = (1 - g) * F.one_hot(zi.argmax(-1), z.shape[-1]).to(z.dtype)
            zh[..., SKIP] = g[..., 0]
        else:
            zh = F.one_hot(z.argmax(-1), z.shape[-1]).to(z.dtype)
        z = z + alpha * (zh - z).detach()
    return z


def anneal(a, b, f): return a * (b / a) ** f


def schedule(a, b, f, kind="geo", frac=1.0):
    """Temperature at training fraction f: reach b at fraction `frac`, then hold."""
    p = min(1.0, f / frac) if frac > 0 else 1.0
    if kind == "geo":
        return a * (b / a) ** p
    if kind == "linear":
        return a + (b - a) * p
    if kind == "cos":
        return b + (a - b) * 0.5 * (1 + math.cos(math.pi * p))
    raise ValueError(kind)

# ----------------------------------------------------------------------------- model (SPEC §2)

class Block(nn.Module):
    def __init__(s, d, h):
        super().__init__()
        s.ln1, s.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        s.att = nn.MultiheadAttention(d, h, batch_first=True)
        s.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))

    def forward(s, x):
        a = s.ln1(x); x = x + s.att(a, a, a, need_weights=False)[0]
        return x + s.mlp(s.ln2(x))


class NLI(nn.Module):
    """The SPEC model. exec_kind picks the interpreter's step network:
      mlp  : SPEC: MLP([s, v]) -> 512 -> GELU -> 512 -> GELU -> L*V
      film : the same MLP, and each hidden layer's pre-activation is modulated by the instruction:
             h <- h * (1 + gamma_l(v)) + beta_l(v)   (gamma, beta: one Linear(dv, 2H) per layer)
      res  : h = Linear(s); res_blocks times h <- h + Linear(GELU(Linear([LN(h), v])));
             n = Linear(GELU(LN(h)))  (the instruction enters every block)
      sym  : a weight set per symbol (the issue's "symbol-selected weight set"): n = sum_k z_k (W_k s +
             b_k), one affine map of the state embedding per codebook symbol, mixed by the relaxed
             symbol z_t (one map exactly when z_t is one-hot). Every primitive of the suite is a
             permutation of the one-hot state's L*V coordinates, so one map per symbol can run it.
    The recurrence over discretised states, the Gumbel over states and the SKIP gating are SPEC's
    for every kind. Parameters are created in the reference's order, and the extra ones of film/res
    after the inductor's, so the inductor's initialisation is the same for every kind and seed."""

    def __init__(s, T=12, K=64, d=128, layers=2, heads=4, ds=32, dv=64, H=512,
                 exec_kind="mlp", res_blocks=2, logit_scale=1.0, pair_tokens=False):
        super().__init__()
        s.T, s.K, s.exec_kind, s.logit_scale = T, K, exec_kind, logit_scale
        s.val = nn.Embedding(V, d); s.pos = nn.Embedding(L, d); s.chan = nn.Embedding(3, d)
        s.slot = nn.Parameter(torch.randn(T, d) * 0.02)
        s.blocks = nn.ModuleList(Block(d, heads) for _ in range(layers))
        s.lnf = nn.LayerNorm(d)
        s.head = nn.Sequential(nn.Linear(d, d), nn.GELU(), nn.Linear(d, K))       # f_phi
        s.Eio = nn.Parameter(torch.randn(V, ds) * 0.5); s.P = nn.Parameter(torch.randn(L, ds) * 0.5)
        s.Ev = nn.Parameter(torch.randn(K, dv) * 0.5)
        if exec_kind in ("mlp", "film"):
            s.exe = nn.Sequential(nn.Linear(L * ds + dv, H), nn.GELU(), nn.Linear(H, H), nn.GELU(),
                                  nn.Linear(H, L * V))
            if exec_kind == "film":
                s.film = nn.ModuleList(nn.Linear(dv, 2 * H) for _ in range(2))
        elif exec_kind == "res":
            s.inp = nn.Linear(L * ds, H)
            s.rln = nn.ModuleList(nn.LayerNorm(H) for _ in range(res_blocks))
            s.ra = nn.ModuleList(nn.Linear(H + dv, H) for _ in range(res_blocks))
            s.rb = nn.ModuleList(nn.Linear(H, H) for _ in range(res_blocks))
            s.lno = nn.LayerNorm(H)
            s.out = nn.Linear(H, L * V)
        elif exec_kind == "sym":
            s.symW = nn.Parameter(torch.randn(L * ds, K * L * V) / math.sqrt(L * ds))  # W_k side by side
            s.symB = nn.Parameter(torch.zeros(K, L * V))
        else:
            raise ValueError(exec_kind)
        s.pair_tokens = pair_tokens
        if pair_tokens:                    # created last: the other parameters' init is unchanged
            s.pe = nn.Embedding(V * V, d)

    def inductor_params(s):
        enc = [s.val.weight, s.pos.weight, s.chan.weight, s.slot] + list(s.blocks.parameters()) + list(s.lnf.parameters())
        if s.pair_tokens:
            enc.append(s.pe.weight)
        return enc, list(s.head.parameters())

    def encode(s, x, y):                       # (..., L) pairs -> (..., T, d)
        sh = x.shape[:-1]; x = x.reshape(-1, L); y = y.reshape(-1, L)
        p = s.pos.weight
        ts = (s.slot + s.chan.weight[2]).expand(x.shape[0], -1, -1)
        if s.pair_tokens:                  # one token per position: the (input, output) value pair
            h = torch.cat([s.pe(x * V + y) + p + s.chan.weight[0], ts], 1)
        else:
            tx = s.val(x) + p + s.chan.weight[0]; ty = s.val(y) + p + s.chan.weight[1]
            h = torch.cat([tx, ty, ts], 1)
        for b in s.blocks:
            h = b(h)
        return s.lnf(h[:, -s.T:]).reshape(*sh, s.T, -1)

    def logits(s, e):
        lg = s.head(e)
        return lg * s.logit_scale if s.logit_scale != 1.0 else lg

    def _cond(s, instr):
        """per-program precomputation from the instruction embeddings (..., T, dv)."""
        if s.exec_kind == "film":
            return [f(instr) for f in s.film]              # each (..., T, 2H)
        return None

    def _step(s, st, v, cond, t):
        if s.exec_kind == "mlp":
            return s.exe(torch.cat([st, v], -1))
        if s.exec_kind == "film":
            l1, l2, l3 = s.exe[0], s.exe[2], s.exe[4]
            g1, b1 = cond[0][..., t, :].chunk(2, -1)
            g2, b2 = cond[1][..., t, :].chunk(2, -1)
            h = F.gelu(l1(torch.cat([st, v], -1)) * (1 + g1) + b1)
            h = F.gelu(l2(h) * (1 + g2) + b2)
            return l3(h)
        h = s.inp(st)
        for ln, a, b in zip(s.rln, s.ra, s.rb):
            h = h + b(F.gelu(a(torch.cat([ln(h), v], -1))))
        return s.out(F.gelu(s.lno(h)))

    def execute(s, x, z, tau_d, noise=True, hard=False, st_state=False, eps=0.0, instr=None):
        """x (..., L) ints; z (..., T, K) relaxed program -> log pi_T (..., L, V).
        st_state: the carried state is straight-through (hard one-hot forward, soft gradient); the
        returned distribution is then the relaxed (soft) output of the last executed step, given
        hard inputs, so that the NLL is finite and has a gradient where the hard state is wrong.
        eps > 0: return log((1-eps) pi + eps/V) instead of log(max(pi, 1e-8))."""
        pi = F.one_hot(x, V).float()
        po = pi
        st_state = st_state and not hard
        if instr is None:                                            # instr: given (symbol splitting)
            instr = z @ s.Ev                                         # (..., T, dv)
        cond = s._cond(instr)
        for t in range(s.T):
            st = (pi @ s.Eio + s.P).flatten(-2)                       # (..., L*ds)
            if s.exec_kind == "sym":                                   # sum_k z_k (W_k st + b_k)
                zt = z[..., t, :]
                h = (st @ s.symW).reshape(*st.shape[:-1], s.K, L * V)
                n = (zt.unsqueeze(-2) @ h).squeeze(-2) + zt @ s.symB
            else:
                n = s._step(st, instr[..., t, :], cond, t)
            n = n.reshape(*n.shape[:-1], L, V)
            g = z[..., t, SKIP, None, None]
            if hard:
                pt = F.one_hot(n.argmax(-1), V).float()
            elif st_state:
                ps = gumbel_softmax(n, tau_d, noise)
                pt = F.one_hot(ps.argmax(-1), V).float() - ps.detach() + ps
                po = g * po + (1 - g) * ps
            else:
                pt = gumbel_softmax(n, tau_d, noise)
            pi = g * pi + (1 - g) * pt
        out = po if st_state else pi
        if eps > 0:
            return torch.log((1 - eps) * out + eps / V)
        return torch.log(out.clamp_min(1e-8))


def loo_logits(model, x, y):
    """leave-one-out pooled logits (B, m, T, K) and the per-pair encodings (B, m, T, d)."""
    e = model.encode(x, y)
    m = x.shape[1]
    eb = (e.sum(1, keepdim=True) - e) / (m - 1)
    return model.logits(eb), e


def reuse_reg(logits, tau_e):
    q = F.softmax(logits / tau_e, -1).reshape(-1, *logits.shape[-2:])
    return (1 - torch.exp(torch.log1p(-q.clamp(max=1 - 1e-6)).sum(0))).sum()

# ----------------------------------------------------------------------------- diagnostics

def _entropy_bits(counter, n):
    return -sum(c / n * math.log2(c / n) for c in counter.values() if c)


@torch.no_grad()
def diagnostics(model, x, y, idx, lg_loo, e, te, split):
    """Inductor diagnostics on one training batch (no random numbers are drawn)."""
    lg = model.logits(e.mean(1))                                     # (B, T, K): full-spec program
    am = lg.argmax(-1)                                               # (B, T)
    B, T = am.shape
    rows = am.tolist()
    per_slot = [len(set(r[t] for r in rows)) for t in range(T)]
    syms = collections.Counter(k for r in rows for k in r)
    pairs = set((t, k) for r in rows for t, k in enumerate(r))
    p1 = F.softmax(lg, -1); pt = F.softmax(lg / te, -1)
    ent = -(p1 * torch.log(p1.clamp_min(1e-30))).sum(-1).mean().item()
    ent_te = -(pt * torch.log(pt.clamp_min(1e-30))).sum(-1).mean().item()
    maxp = p1.max(-1).values.mean().item()
    progs = [" ".join(str(k) for k in r if k != SKIP) or "-" for r in rows]   # effective program
    pc = collections.Counter(progs)
    top = pc.most_common(3)
    # task dependence: class = the task's true program index
    cls = idx.tolist()
    cc = collections.Counter(cls)
    joint = collections.Counter(zip(cls, progs))
    h_prog, h_cls, h_joint = _entropy_bits(pc, B), _entropy_bits(cc, B), _entropy_bits(joint, B)
    mi = h_prog + h_cls - h_joint
    names = [prog_name(p) for p in programs(split, "train")]
    maj, pur = {}, 0
    for c in sorted(cc):
        sub = collections.Counter(p for k, p in zip(cls, progs) if k == c)
        mp, mc = sub.most_common(1)[0]
        maj[names[c]] = mp; pur += mc
    # hard execution of the leave-one-out programs on the held-out pairs
    zh = F.one_hot(lg_loo.argmax(-1), model.K).float()
    out = model.execute(x, zh, 1.0, noise=False, hard=True).argmax(-1)
    ok = (out == y).all(-1).float()                                  # (B, m)
    okc = ok.mean(1).cpu()
    acc_by = {names[c]: round(okc[idx == c].mean().item(), 3) for c in sorted(cc)}
    return dict(
        sym_slot=per_slot, sym_total=len(syms), pairs_total=len(pairs),
        ent=round(ent, 3), ent_te=round(ent_te, 3), maxp=round(maxp, 3),
        skip=round(syms.get(SKIP, 0) / (B * T), 3),
        n_prog=len(pc), differ=round(1 - top[0][1] / B, 3),
        mi=round(mi, 3), mi_max=round(h_cls, 3), purity=round(pur / B, 3),
        distinct_majority=len(set(maj.values())),
        hard_acc=round(ok.mean().item(), 4), acc_by=acc_by,
        top_progs=[[p, c] for p, c in top], class_prog=maj)

# ----------------------------------------------------------------------------- training (SPEC §3)

def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def make_optimizer(model, a):
    enc, head = model.inductor_params()
    ids = set(id(p) for p in enc + head)
    rest = [p for p in model.parameters() if id(p) not in ids]
    groups = [dict(params=enc, lr_mult=a.enc_lr_mult), dict(params=head, lr_mult=a.head_lr_mult),
              dict(params=rest, lr_mult=1.0)]
    return torch.optim.AdamW(groups, lr=a.lr, weight_decay=a.wd), (enc, head, rest)


def lr_factor(a, step, f):
    w = min(1.0, (step + 1) / a.warmup) if a.warmup > 0 else 1.0
    if a.lr_sched == "cos":
        w *= a.lr_min + (1 - a.lr_min) * 0.5 * (1 + math.cos(math.pi * min(1.0, f)))
    return w


def gnorm(ps):
    g = [p.grad.detach().norm() for p in ps if p.grad is not None]
    return torch.stack(g).norm().item() if g else 0.0


def split_symbol(model, opt, a, x, y, idx, td, step):
    """Gradient-guided symbol splitting (like re-seeding a dead code of a VQ codebook, with the LBG
    split along the direction the data disagrees most). Picks the used symbol A whose tasks carry the
    most NLL, the gradient of each of those tasks' NLL with respect to its instruction embedding, and
    the top principal direction u of those gradients; tasks on either side of the median projection
    want A to move opposite ways. A dead symbol D becomes A - eta*|A|*u (A stays), the head's output
    row of D becomes A's plus a linear discriminant of the two sides' head features, so the inductor
    routes one side to D, and D's rows take A's Adam state. Returns a log record. (As model/split.go;
    a first version that also moved A by +eta*|A|*u with eta 0.25 and reset the Adam state made a tiny
    CPU run's NLL jump from 42 to 97 at one split.)"""
    K = model.K
    with torch.no_grad():
        lg, e = loo_logits(model, x, y)                              # (B, m, T, K)
        am = lg.argmax(-1)                                           # (B, m, T)
        used = torch.bincount(am.flatten(), minlength=K)
    dead = [k for k in range(1, K) if used[k] == 0]
    if not dead:
        return dict(kind="split", step=step, skipped="no dead symbol")
    z = F.one_hot(am, K).float()
    sym = model.exec_kind == "sym"
    if sym:                                                          # no instruction embedding: the per-slot
        g, nll, sts, dns = _sym_slot_grads(model, x, y, z, td)       # gradient of the symbol's own map
    else:
        instr = (z @ model.Ev).detach().requires_grad_(True)        # (B, m, T, dv)
        lp = model.execute(x, z, td, noise=False, instr=instr)
        nll = -lp.gather(-1, y[..., None]).squeeze(-1).sum(-1)       # (B, m)
        g, = torch.autograd.grad(nll.sum(), instr)                   # per (b, i, t): d nll_bi / d instr_bit
    nl = nll.detach()
    cost = torch.zeros(K, device=x.device)
    for k in range(1, K):
        on = (am == k).any(-1)
        cost[k] = nl[on].sum() if on.any() else 0.0
    if float(cost.max()) <= 0:
        return dict(kind="split", step=step, skipped="no symbol but SKIP in use")
    A = int(cost.argmax())
    sel = am == A                                                    # (B, m, T): the slots holding A
    G = g[sel]                                                       # (n, dv)
    if G.shape[0] < 8:
        return dict(kind="split", step=step, skipped=f"symbol {A} in {G.shape[0]} slots")
    Gc = G - G.mean(0, keepdim=True)
    if sym:                                                          # (n, V*V + L*L), rows of unit length:
        Gc = F.normalize(G, dim=-1)                                  # the n x n Gram's top eigenvector is the
        Gc = Gc - Gc.mean(0, keepdim=True)                           # projection on the top principal
        ev_, U = torch.linalg.eigh(Gc @ Gc.T)                        # direction (up to scale)
        sv = ev_.clamp_min(0).flip(0).sqrt()
        proj = U[:, -1]
    else:
        _, sv, vh = torch.linalg.svd(Gc, full_matrices=False)
        u = vh[0]                                                    # (dv,)
        proj = G @ u
    plus = proj > proj.median()                                      # these want instr to move along -u
    with torch.no_grad():
        eb = (e.sum(1, keepdim=True) - e) / (e.shape[1] - 1)           # leave-one-out pooled, as in training
        h = model.head[1](model.head[0](eb))                         # the head's hidden features (B, m, T, d)
        hs = h[sel]
        mp, mm = hs[plus].mean(0), hs[~plus].mean(0)
        w = mp - mm
        w2 = (w * w).sum()
        if float(w2) < 1e-6 * float((mp * mp + mm * mm).sum() / 2) or float(w2) == 0:
            return dict(kind="split", step=step, skipped=f"symbol {A}: the two sides' head features do not differ")
        mid = (mp + mm) / 2
        D = dead[0]
        out = model.head[2]
        capped = 0
        if sym and a.split_route == "map":                           # D's head row is A's, its bias lower by
            out.weight[D] = out.weight[A]                            # split_delta: no slot turns to D, which
            out.bias[D] = out.bias[A] - a.split_delta                # the program noise samples on A's slots
        elif sym:                                                    # the discriminant in units of the spread
            wn = w / w2.sqrt()                                       # of A's slots along it, and D's bias
            sp = ((hs - mid) @ wn).std().clamp_min(1e-6)             # capped so that no slot of another
            wD = out.weight[A] + a.split_alpha * wn / sp             # symbol (or SKIP) turns to D
            bD = out.bias[A] - a.split_alpha * (wn @ mid) / sp
            ls = model.logit_scale
            other = ~(lg.argmax(-1) == A)
            if other.any():
                cap = ((lg.max(-1).values[other] / ls - h[other] @ wD).min() - 1.0 / ls)
                if float(bD) > float(cap):
                    bD, capped = cap, 1
            out.weight[D], out.bias[D] = wD, bD
        else:
            out.weight[D] = out.weight[A] + a.split_alpha * w / w2
            out.bias[D] = out.bias[A] - a.split_alpha * (w @ mid) / w2
        rows = [(out.weight, D, A), (out.bias, D, A)]                 # (parameter, to, from) rows of the copy
        if sym:                                                      # D's map starts as A's: its tasks lose
            LV = L * V                                               # nothing; from then on D's map learns
            model.symW[:, D * LV:(D + 1) * LV] = model.symW[:, A * LV:(A + 1) * LV]  # from D's tasks only
            model.symB[D] = model.symB[A]
            rows.append((model.symB, D, A))
            if a.split_route == "map":                               # ... one step down the plus side's
                ps = sel & torch.zeros_like(sel).masked_scatter(sel, plus)   # gradient of A's map, so that
                GW = torch.einsum("nc,nj->cj", sts[ps], dns[ps])     # the plus side's tasks do better on D
                Gb = dns[ps].sum(0)                                  # and the inductor's own gradient routes
                wa = torch.cat([model.symW[:, A * LV:(A + 1) * LV], model.symB[A][None]], 0)   # them there
                gc = torch.cat([GW, Gb[None]], 0)
                step_ = a.split_eta * wa.norm() * gc / gc.norm().clamp_min(1e-12)
                model.symW[:, D * LV:(D + 1) * LV] -= step_[:-1]
                model.symB[D] -= step_[-1]
        else:
            ea = model.Ev[A].clone()
            model.Ev[D] = ea - a.split_eta * ea.norm() * u           # A stays: its tasks lose nothing
            rows.append((model.Ev, D, A))
        for prm, to, fr in rows:                                     # D starts as a copy of A's Adam state
            st = opt.state.get(prm, {})
            for key in ("exp_avg", "exp_avg_sq"):
                if key in st:
                    st[key][to] = st[key][fr]
        if sym:
            st = opt.state.get(model.symW, {})
            for key in ("exp_avg", "exp_avg_sq"):
                if key in st:
                    st[key][:, D * LV:(D + 1) * LV] = st[key][:, A * LV:(A + 1) * LV]
    cls = idx.to(x.device)[:, None, None].expand_as(am)[sel]
    names = [prog_name(p) for p in programs(a.split, "train")]
    side = lambda m_: dict(collections.Counter(names[c] for c in cls[m_].tolist()).most_common())
    with torch.no_grad():
        am2 = model.logits(eb).argmax(-1)
    moved = dict(to_D=int((am2[sel] == D).sum()), others_to_D=int((am2[~sel] == D).sum()), capped=capped)
    return dict(kind="split", step=step, symbol=A, new=D, slots=int(G.shape[0]), cost=round(float(cost[A]), 1), **moved,
                top_share=round(float(sv[0] ** 2 / (sv ** 2).sum()), 3),
                to_new=side(plus), stay=side(~plus))


def _sym_slot_grads(model, x, y, z, td):
    """For --exec sym: per slot (b, i, t), the gradient of pair (b, i)'s NLL with respect to the map of
    the symbol in that slot, in the folded state coordinates, outer(pi_t, dNLL/dn_t) (pi_t the state the
    step reads, n_t its output logits; z one-hot and no noise, so slot t's symbol alone made n_t),
    reduced to its two marginals that do not depend on the random input: the value map (V x V, summed
    over positions, same position in and out) and the position map (L x L, summed over values, same
    value in and out). Returns them (B, m, T, V*V + L*L), the NLL (B, m), and per slot the state
    embedding the step read (B, m, T, L*ds) and dNLL/dn_t (B, m, T, L*V), whose outer product summed
    over slots is the gradient of the symbol's map (--split_route map)."""
    pi = F.one_hot(x, V).float()
    ins, outs, sts = [], [], []
    for t in range(model.T):
        st = (pi @ model.Eio + model.P).flatten(-2)
        sts.append(st.detach())
        zt = z[..., t, :]
        h = (st @ model.symW).reshape(*st.shape[:-1], model.K, L * V)
        n = (zt.unsqueeze(-2) @ h).squeeze(-2) + zt @ model.symB
        n.retain_grad()
        ins.append(pi.detach().flatten(-2)); outs.append(n)
        gt = z[..., t, SKIP, None, None]
        pi = gt * pi + (1 - gt) * gumbel_softmax(n.reshape(*n.shape[:-1], L, V), td, False)
    lp = torch.log(pi.clamp_min(1e-8))
    nll = -lp.gather(-1, y[..., None]).squeeze(-1).sum(-1)
    nll.sum().backward(inputs=outs)
    g = []
    for p_, n_ in zip(ins, outs):
        p_, d_ = p_.reshape(*p_.shape[:-1], L, V), n_.grad.reshape(*p_.shape[:-1], L, V)
        gv = torch.einsum("...lv,...lw->...vw", p_, d_).flatten(-2)      # value map: v at l -> w at l
        gp = torch.einsum("...lv,...kv->...lk", p_, d_).flatten(-2)      # position map: v at l -> v at k
        g.append(torch.cat([gv, gp], -1))
    sts = torch.stack(sts, -2)                                        # (B, m, T, L*ds): what each step read
    dns = torch.stack([n_.grad for n_ in outs], -2)                  # (B, m, T, L*V): dNLL/dn_t
    return torch.stack(g, -2), nll.detach(), sts, dns


def train(model, a, device, log_every):
    opt, (enc, head, rest) = make_optimizer(model, a)
    gen = torch.Generator().manual_seed(a.data_seed)
    skip1 = F.one_hot(torch.tensor(SKIP), model.K).float().to(device)
    t0 = time.time()
    st = dict(steps_done=0, train_s=0.0, diverged=False, last=None, nll_win=[])
    nll_acc, nll_cnt = torch.zeros((), device=device), 0
    step = 0
    stop = False
    while step < a.steps and not stop:
        f, stop = run_fraction(a, step, t0)
        te = schedule(a.te0, a.te1, f, a.sched, a.anneal_frac)
        td = schedule(a.td0, a.td1, f, a.sched, a.anneal_frac)
        lrf = lr_factor(a, step, f)
        for g in opt.param_groups:
            g["lr"] = a.lr * g["lr_mult"] * lrf
        x, y, idx = sample_tasks(a.split, "train", a.B, a.m, gen, device)
        if (a.split_every > 0 and step >= a.split_start and step % a.split_every == 0
                and f < a.split_end):
            print(json.dumps(split_symbol(model, opt, a, x, y, idx, td, step)), flush=True)
        logits, e = loo_logits(model, x, y)
        pn = min(1.0, f / a.noise_ramp) if a.noise_ramp > 0 else True       # program-noise scale
        sn = a.state_noise * (min(1.0, f / a.snoise_ramp) if a.snoise_ramp > 0 else 1)
        wta = a.wta > 1 and f < a.wta_frac
        st_now = a.st or (a.st_from > 0 and f >= a.st_from)
        st_alpha = min(1.0, (f - a.st_from) / a.st_ramp) if st_now and not a.st and a.st_ramp > 0 else 1.0
        if wta:                                                      # best of S program samples (multiple choice)
            logits_s = logits.unsqueeze(0).expand(a.wta, *logits.shape)
            z = relax(logits_s, te, pn if pn != 1.0 else True, st_now, st_alpha, a.st_soft_gate)   # (S, B, m, T, K)
        else:
            z = relax(logits, te, pn if pn != 1.0 else True, st_now, st_alpha, a.st_soft_gate)
        act = model.T
        if a.curr_t0 > 0:                                            # short-program curriculum
            act = a.curr_t0 + (model.T - a.curr_t0) * min(1.0, f / a.curr_frac) if a.curr_frac > 0 else model.T
            act = int(act)
            if act < model.T:
                z = torch.cat([z[..., :act, :], skip1.expand(*z.shape[:-2], model.T - act, model.K)], -2)
        if wta:
            xs, ys = x.unsqueeze(0).expand(a.wta, *x.shape), y.unsqueeze(0).expand(a.wta, *y.shape)
            lp = model.execute(xs, z, td, noise=sn, st_state=a.st_state, eps=a.nll_eps)
            nll_s = -lp.gather(-1, ys[..., None]).squeeze(-1).sum(-1)          # (S, B, m)
            best = nll_s.detach().argmin(0)                                  # (B, m)
            nll = nll_s.gather(0, best[None]).squeeze(0).mean()
        else:
            lp = model.execute(x, z, td, noise=sn, st_state=a.st_state, eps=a.nll_eps)
            nll = -lp.gather(-1, y[..., None]).squeeze(-1).sum(-1).mean()
        reg = reuse_reg(logits, te)
        lw = a.lam * (min(1.0, f / a.lam_warm) if a.lam_warm > 0 else 1.0)
        loss = nll + lw * reg
        if wta and a.wta_ce > 0:                                     # the inductor imitates the winning sample
            zb = z.detach().gather(0, best[None, ..., None, None].expand(1, *z.shape[1:])).squeeze(0)
            loss = loss + a.wta_ce * F.cross_entropy(logits.reshape(-1, model.K), zb.argmax(-1).reshape(-1)) * model.T
        if a.div > 0:                                                # symbol-diversity bonus (anti-collapse)
            dw = a.div * max(0.0, 1.0 - f / a.div_frac) if a.div_frac > 0 else a.div
            na = act if a.curr_t0 > 0 else model.T
            qm = F.softmax(logits[..., :na, :] / te, -1).reshape(-1, na, model.K).mean(0)   # (na, K)
            loss = loss - dw * -(qm * torch.log(qm.clamp_min(1e-12))).sum()
        ctr = None
        if a.contrast > 0:                                           # task identity (InfoNCE) on the encoder
            cw = a.contrast * (max(0.0, 1.0 - f / a.contrast_frac) if a.contrast_frac > 0 else 1.0)
            mh = e.shape[1] // 2                                     # two disjoint halves of each task's pairs
            TD, Bc = e.shape[2] * e.shape[3], e.shape[0]             # as the Go trainer (train.contrast): centred on the
            loo = lambda h: h - (h.sum(0, keepdim=True) - h) / (Bc - 1)  # batch (minus the other tasks' mean), then
            h1 = F.layer_norm(loo(e[:, :mh].mean(1).flatten(1)), (TD,))  # normalised: h1 . h2 / TD is a correlation
            h2 = F.layer_norm(loo(e[:, mh:].mean(1).flatten(1)), (TD,))
            sim = h1 @ h2.T / (TD * a.contrast_tau)                  # (B, B): the same task on the diagonal
            tgt = torch.arange(sim.shape[0], device=sim.device)
            ctr = 0.5 * (F.cross_entropy(sim, tgt) + F.cross_entropy(sim.T, tgt))
            loss = loss + cw * ctr
        hx = None
        if a.hard_exec > 0 and f >= a.hard_exec_from:                # self-training, as the oracle trains: the
            zh = F.one_hot(logits.detach().argmax(-1), model.K).to(logits.dtype)  # interpreter also runs the
            lph = model.execute(x, zh, td, noise=sn)                 # inductor's own argmax programs, hard and
            hx = -lph.gather(-1, y[..., None]).squeeze(-1).sum(-1).mean()  # detached (no gradient into the inductor)
            loss = loss + a.hard_exec * hx
        opt.zero_grad(set_to_none=True); loss.backward()
        logging = step % log_every == 0 or step == a.steps - 1 or stop
        if logging:
            gns = dict(gn_enc=round(gnorm(enc), 4), gn_head=round(gnorm(head), 4), gn_exe=round(gnorm(rest), 4))
            diag = diagnostics(model, x, y, idx, logits, e, te, a.split)   # the model of this step, before its update
        if a.clip_mode == "group":                                   # clip inductor encoder, head, interpreter apart
            gn = torch.stack([torch.nn.utils.clip_grad_norm_(ps, a.clip) for ps in (enc, head, rest)]).norm()
        else:
            gn = torch.nn.utils.clip_grad_norm_(model.parameters(), a.clip)
        opt.step()
        nll_acc = nll_acc + nll.detach(); nll_cnt += 1
        step += 1
        if logging:
            sync(device)
            nv = nll.item()
            rec = dict(kind="train", step=step - 1, nll=round(nv, 4), nll_avg=round(nll_acc.item() / nll_cnt, 4),
                       reg=round(reg.item(), 2), gn=round(gn.item(), 3), **gns,
                       te=round(te, 3), td=round(td, 3), lr=round(a.lr * lrf, 6), lam=round(lw, 5),
                       s=round(time.time() - t0, 1), sps=round(step / max(1e-9, time.time() - t0), 2))
            rec.update(diag)
            if ctr is not None:
                rec["ctr"] = round(ctr.item(), 4)
            if hx is not None:
                rec["hard_nll"] = round(hx.item(), 4)
            nll_acc, nll_cnt = torch.zeros((), device=device), 0
            if log_train(st, rec, nv, step):
                break
    return end_train(st, nll_acc, nll_cnt, step, t0, device)


def run_fraction(a, step, t0):
    """the training fraction f of this step (step/steps, or elapsed/time_budget if larger with
    --sched_by_time) and whether it is the last one (past --time_budget; a stop line is printed)."""
    el = time.time() - t0
    stop = a.time_budget > 0 and el > a.time_budget                  # this step is the last one, logged
    if stop:
        print(json.dumps(dict(kind="stop", reason="time_budget", step=step, s=round(el, 1))), flush=True)
    f = step / a.steps
    if a.sched_by_time and a.time_budget > 0:
        f = max(f, el / a.time_budget)
    return f, stop


def log_train(st, rec, nv, step):
    """print a train line and keep it in st; True (after a stop line) when the NLL is not finite."""
    print(json.dumps(rec), flush=True)
    st["last"] = rec
    st["nll_win"].append(rec["nll_avg"])
    if not math.isfinite(nv):
        st["diverged"] = True
        print(json.dumps(dict(kind="stop", reason="non-finite nll", step=step - 1)), flush=True)
        return True
    return False


def end_train(st, nll_acc, nll_cnt, step, t0, device):
    """the training loop's epilogue: the last NLL window's mean, the steps done and the time."""
    sync(device)
    if nll_cnt:
        st["nll_win"].append(round(nll_acc.item() / nll_cnt, 4))
    st["steps_done"] = step
    st["train_s"] = round(time.time() - t0, 1)
    return st

# ----------------------------------------------------------------------------- evaluation (SPEC §4)

@torch.no_grad()
def spec_score(model, xs, ys, z):
    """hard execution of program z on spec pairs: (#pairs exactly right)"""
    lp = model.execute(xs, z, 1.0, noise=False, hard=True)
    return (lp.argmax(-1) == ys).all(-1).sum(-1)


def chunks(n, c):
    c = n if c <= 0 else c
    return [(i, min(n, i + c)) for i in range(0, n, c)]


def evaluate(model, a, part, device):
    """As the reference's evaluate: inductor, prior search, gradient search (selection by the
    number of spec pairs reproduced by the hard program, first best). eval_chunk only splits the
    tasks into groups (Adam is elementwise, so each task's search is unchanged)."""
    n, m, S, K = a.ntest, a.m, a.starts, model.K
    gen = torch.Generator().manual_seed(1234 if part == "test" else 99)
    x, y, idx = sample_tasks(a.split, part, n, m + 1, gen, device)
    xs, ys, xq, yq = x[:, :m], y[:, :m], x[:, m], y[:, m]
    res = {}
    with torch.no_grad():
        e = model.encode(xs, ys).mean(1)                              # (n, T, d)
        lg = model.logits(e)
        zh = F.one_hot(lg.argmax(-1), K).float()
        pq = model.execute(xq, zh, 1.0, noise=False, hard=True).argmax(-1)
        res["inductor"] = (pq == yq).all(-1).float().mean().item()
        res["inductor_spec"] = (spec_score(model, xs, ys, zh[:, None].expand(-1, m, -1, -1)) == m).float().mean().item()
        # prior search: sample programs from the inductor distribution, keep best by spec
        zs = F.one_hot(torch.distributions.Categorical(logits=lg[:, None].expand(-1, S, -1, -1)).sample(), K).float()
        best = torch.cat([spec_score(model, xs[i:j, None].expand(-1, S, -1, -1), ys[i:j, None].expand(-1, S, -1, -1),
                                     zs[i:j, :, None].expand(-1, -1, m, -1, -1)).argmax(1)
                          for i, j in chunks(n, a.eval_chunk)])
        zb = zs[torch.arange(n, device=zs.device), best]
        pq = model.execute(xq, zb, 1.0, noise=False, hard=True).argmax(-1)
        res["prior"] = (pq == yq).all(-1).float().mean().item()
    if not a.search:
        return res
    # gradient search (frozen networks)
    req = [p.requires_grad for p in model.parameters()]
    for p in model.parameters():
        p.requires_grad_(False)
    sync(device); t0 = time.time()
    grad_ok = torch.zeros(n, dtype=torch.bool, device=device)
    solved = torch.zeros(n, device=device)
    toks = []
    for i, j in chunks(n, a.eval_chunk):
        c = j - i
        ee = (e[i:j, None] + a.sigma * torch.randn(c, S, *e.shape[1:], device=device)).requires_grad_(True)
        opt = torch.optim.Adam([ee], lr=a.search_lr)
        xsS, ysS = xs[i:j, None].expand(-1, S, -1, -1), ys[i:j, None].expand(-1, S, -1, -1)
        for it in range(a.search_steps):
            f = it / max(1, a.search_steps - 1)
            te, td = anneal(a.ste0, a.ste1, f), anneal(a.std0, a.std1, f)
            z = relax(model.logits(ee), te, True, a.search_st)[:, :, None].expand(-1, -1, m, -1, -1)
            lp = model.execute(xsS, z, td)
            loss = -lp.gather(-1, ysS[..., None]).sum()
            opt.zero_grad(); loss.backward(); opt.step()
        with torch.no_grad():
            zh = F.one_hot(model.logits(ee).argmax(-1), K).float()
            sc = spec_score(model, xsS, ysS, zh[:, :, None].expand(-1, -1, m, -1, -1))
            best = sc.argmax(1)
            zb = zh[torch.arange(c, device=zh.device), best]
            pq = model.execute(xq[i:j], zb, 1.0, noise=False, hard=True).argmax(-1)
            grad_ok[i:j] = (pq == yq[i:j]).all(-1)
            solved[i:j] = (sc.max(1).values == m).float()
            if i == 0:
                toks = zb[:4].argmax(-1).tolist()
        del ee, opt
    sync(device)
    for p, r in zip(model.parameters(), req):
        p.requires_grad_(r)
    res["gradient"] = grad_ok.float().mean().item()
    res["spec_solved"] = solved.mean().item()
    res["tokens"] = toks
    res["search_s"] = round(time.time() - t0, 2)
    progs = programs(a.split, part)
    if len(progs) <= 10:
        gc = grad_ok.cpu()
        res["gradient_by"] = {prog_name(p): round(gc[idx == k].float().mean().item(), 3)
                              for k, p in enumerate(progs) if (idx == k).any()}
    return res

# ----------------------------------------------------------------------------- main

def base_parser(doc, split):
    """The arguments recipe.py and oracle.py share (run name, split, steps, batch, program shape);
    returns the parser and its add_argument."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    A = ap.add_argument
    A("--name", default="", help="run name (echoed into every JSON line)")
    A("--split", default=split, choices=["shift-l", "shift-p", "comp-i"])
    A("--steps", type=int, default=5000, help="planned training steps (the schedules run over these)")
    A("--B", type=int, default=128); A("--m", type=int, default=4)
    A("--T", type=int, default=12); A("--K", type=int, default=64)
    return ap, A


def parse(argv=None):
    ap, A = base_parser(__doc__, "shift-l")
    A("--seed", type=int, default=0, help="model init and noise seed")
    A("--data_seed", type=int, default=1, help="training data stream seed (reference: 1)")
    # loss
    A("--lam", type=float, default=0.01, help="reuse regulariser weight")
    A("--lam_warm", type=float, default=0.0, help="ramp lam linearly over this fraction of training")
    # temperatures
    A("--te0", type=float, default=8.0); A("--te1", type=float, default=0.5)
    A("--td0", type=float, default=2.0); A("--td1", type=float, default=0.5)
    A("--sched", default="geo", choices=["geo", "cos", "linear"])
    A("--anneal_frac", type=float, default=1.0, help="reach te1/td1 at this fraction of training, then hold")
    A("--sched_by_time", type=int, default=0,
      help="1: training fraction = max(step/steps, elapsed/time_budget), so the anneal ends by the budget")
    # relaxation
    A("--st", action="store_true", help="straight-through Gumbel for the program in training")
    A("--st_from", type=float, default=0.0,
      help="straight-through program (as --st) from this fraction of training on (0: off); the Go trainer's train.st_from")
    A("--st_ramp", type=float, default=0.0,
      help="with --st_from: the hard share of the program rises from 0 to 1 over this fraction of training")
    A("--st_soft_gate", action="store_true",
      help="straight-through keeps the SKIP gate soft: hard instruction (best non-SKIP symbol), soft gate")
    A("--hard_exec", type=float, default=0.0,
      help="weight of a second NLL: the interpreter runs the inductor's argmax programs (hard one-hot, "
           "detached: it trains only the interpreter), as oracle.py trains it on the true programs (0: off)")
    A("--hard_exec_from", type=float, default=0.0, help="with --hard_exec: from this fraction of training on")
    A("--st_state", action="store_true", help="straight-through Gumbel for interpreter states in training")
    A("--state_noise", type=int, default=1, help="Gumbel noise on interpreter states in training")
    A("--nll_eps", type=float, default=0.0,
      help="training NLL on log((1-eps) pi + eps/V) instead of log(max(pi, 1e-8)) (bounds 1/pi gradients)")
    A("--noise_ramp", type=float, default=0.0,
      help="scale the Gumbel noise on the program from 0 to 1 over this fraction of training (0: always 1)")
    A("--snoise_ramp", type=float, default=0.0, help="the same for the Gumbel noise on the interpreter states")
    A("--div", type=float, default=0.0,
      help="diversity bonus: subtract div x entropy of the batch-mean symbol distribution of each active slot")
    A("--div_frac", type=float, default=0.5, help="the diversity weight decays linearly to 0 by this fraction")
    A("--contrast", type=float, default=0.0,
      help="task-identity loss on the inductor's encoder: weight x InfoNCE between the pooled encodings of two "
           "disjoint halves of each task's pairs (same task = positive, the batch's other tasks = negatives; "
           "no program labels)")
    A("--contrast_frac", type=float, default=0.0, help="the contrast weight decays linearly to 0 by this fraction (0: constant)")
    A("--contrast_tau", type=float, default=0.1, help="InfoNCE temperature (cosine similarities / tau)")
    A("--wta", type=int, default=0,
      help="S >= 2: draw S program samples per held-out pair and train on the best one's NLL only "
           "(winner takes all: symbols specialise; S x the interpreter's cost)")
    A("--wta_frac", type=float, default=1.0, help="use --wta for this fraction of training, then one sample")
    A("--wta_ce", type=float, default=0.0,
      help="with --wta: add this x T x cross-entropy of the inductor's logits to the winning sample's symbols")
    A("--split_every", type=int, default=0,
      help="gradient-guided symbol splitting every N steps (0: off): a dead symbol takes over half of the "
           "tasks of the costliest symbol, split along their instruction gradients")
    A("--split_start", type=int, default=1500, help="first step that may split")
    A("--split_end", type=float, default=0.7, help="no splits after this fraction of training")
    A("--split_eta", type=float, default=0.1, help="split: the new symbol's embedding is Ev[A] - eta x |Ev[A]| x u")
    A("--split_alpha", type=float, default=4.0, help="split: logit margin (x 1/2) of the head's discriminant at the side means")
    A("--split_route", default="head", choices=["head", "map"],
      help="exec sym: head = D's head row is A's plus the capped discriminant; map = D's head row is A's "
           "with its bias lower by --split_delta, and D's map is A's one step (--split_eta, relative) down "
           "the gradient of the plus side's NLL, so the inductor's own gradient routes those tasks to D")
    A("--split_delta", type=float, default=0.5, help="split_route map: D's head bias is A's minus this")
    A("--skip_bias", type=float, default=0.0, help="added to the SKIP logit bias at init")
    A("--curr_t0", type=int, default=0, help="short-program curriculum: start with this many active slots (0: off)")
    A("--curr_frac", type=float, default=0.3, help="active slots grow linearly to T over this fraction")
    # optimiser
    A("--lr", type=float, default=3e-4); A("--wd", type=float, default=0.0); A("--clip", type=float, default=1.0)
    A("--clip_mode", default="global", choices=["global", "group"],
      help="group: clip encoder, head and interpreter gradients separately (each to --clip)")
    A("--warmup", type=int, default=0, help="linear LR warm-up steps")
    A("--lr_sched", default="const", choices=["const", "cos"], help="cos: cosine decay to lr_min*lr")
    A("--lr_min", type=float, default=0.1)
    A("--head_lr_mult", type=float, default=1.0, help="LR multiplier of the inductor head f_phi")
    A("--enc_lr_mult", type=float, default=1.0, help="LR multiplier of the inductor encoder")
    A("--logit_scale", type=float, default=1.0, help="multiply the inductor logits (train and test)")
    # model
    A("--pair_tokens", action="store_true",
      help="inductor: one token per position embedding the (input, output) value pair (V*V table) instead of two")
    A("--exec", dest="exec_kind", default="mlp", choices=["mlp", "film", "res", "sym"])
    A("--d", type=int, default=128, help="the inductor's width (SPEC: 128; smaller for CPU experiments)")
    A("--layers", type=int, default=2, help="the inductor's transformer layers (SPEC: 2)")
    A("--res_blocks", type=int, default=2)
    # run control
    A("--time_budget", type=float, default=0.0, help="stop training after this many seconds (0: off), then evaluate")
    A("--device", default="auto")
    A("--save", default=""); A("--load", default="")
    # evaluation
    A("--ntest", type=int, default=200); A("--starts", type=int, default=64)
    A("--search_steps", type=int, default=200); A("--search_lr", type=float, default=0.1)
    A("--sigma", type=float, default=0.5)
    A("--ste0", type=float, default=2.0); A("--ste1", type=float, default=0.3)
    A("--std0", type=float, default=1.0); A("--std1", type=float, default=0.3)
    A("--search_st", action="store_true", help="straight-through program relaxation in gradient search")
    A("--search", type=int, default=1, help="0: skip gradient search everywhere")
    A("--id_search", type=int, default=1, help="0: skip gradient search on the ID part (inductor/prior still run)")
    A("--parts", default="train,test", help="evaluated parts in order (train = ID, test = OOD)")
    A("--eval_chunk", type=int, default=0, help="evaluate this many tasks at a time (0: all; memory)")
    return ap.parse_args(argv)


def main(argv=None):
    a = parse(argv)
    flags = " ".join(shlex.quote(s) for s in (sys.argv[1:] if argv is None else argv))
    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if a.device == "auto" else a.device)
    torch.manual_seed(a.seed)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
    model = NLI(T=a.T, K=a.K, d=a.d, layers=a.layers, exec_kind=a.exec_kind, res_blocks=a.res_blocks,
                logit_scale=a.logit_scale, pair_tokens=a.pair_tokens).to(device)
    with torch.no_grad():
        model.head[-1].bias[SKIP] += a.skip_bias
    if a.load:
        model.load_state_dict(torch.load(a.load, map_location=device))
    nparam = sum(p.numel() for p in model.parameters())
    print(json.dumps(dict(kind="start", name=a.name, flags=flags, device=str(device), params=nparam,
                          torch=torch.__version__)), flush=True)
    st = dict(steps_done=0, train_s=0.0, diverged=False, last=None, nll_win=[])
    if a.steps > 0:
        st = train(model, a, device, max(1, a.steps // 20))
    if a.save:
        torch.save(model.state_dict(), a.save)
    summ = dict(kind="summary", name=a.name, split=a.split, flags=flags, steps_done=st["steps_done"],
                train_s=st["train_s"], sps=round(st["steps_done"] / max(1e-9, st["train_s"]), 2),
                diverged=st["diverged"])
    last = st["last"] or {}
    summ["nll_end"] = st["nll_win"][-1] if st["nll_win"] else None
    summ["nll_min"] = min(st["nll_win"]) if st["nll_win"] else None
    for k in ("te", "td", "sym_total", "pairs_total", "n_prog", "mi", "mi_max", "purity", "hard_acc", "skip", "class_prog"):
        summ[k] = last.get(k)
    print(json.dumps(dict(kind="train_end", name=a.name, **{k: summ[k] for k in ("steps_done", "train_s", "sps", "nll_end")})), flush=True)
    for part in [p for p in a.parts.split(",") if p]:
        t0 = time.time()
        sub = argparse.Namespace(**vars(a))
        sub.search = a.search and (a.id_search or part != "train")
        r = evaluate(model, sub, part, device)
        r["eval_s"] = round(time.time() - t0, 2)
        print(json.dumps(dict(kind="eval", name=a.name, split=a.split, part=part, steps_done=st["steps_done"],
                              **r, flags=flags, args=vars(a))), flush=True)
        tag = "id" if part == "train" else "ood"
        for k in ("inductor", "prior", "gradient", "spec_solved"):
            if k in r:
                summ[f"{tag}_{k}"] = r[k]
    print(json.dumps(summ), flush=True)


if __name__ == "__main__":
    main()
