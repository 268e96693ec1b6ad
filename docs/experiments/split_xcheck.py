#!/usr/bin/env python3
"""Cross-check of the Go symbol split (model/split.go) against recipe.py's split_symbol.

The Go test TestSplitCrossCheck (model/split_xcheck_test.go) writes a model with its AdamW
moments and one training batch (input.json/.bin), and for both routes the Go split's
intermediate values and the parameters and moments after it (go_head.*, go_map.*):

  NLI_SPLIT_XCHECK=/tmp/xc go test ./model -run TestSplitCrossCheck -v
  python3 docs/experiments/split_xcheck.py /tmp/xc [--dtype float32|float64]

This script loads the same weights, moments and batch into recipe.py's NLI (exec sym) and an
AdamW with that state, runs recipe.py's own split_symbol (both routes), and compares: the
programs (argmax per slot), the dead symbol D, the pairs' NLL, the per-symbol cost, A, the
states read and the logit gradients of every step, the slots' gradient marginals, the
projection on the top direction (up to scale and sign), the median split, and after the split
every parameter and moment. torch.linalg.eigh's eigenvector has an arbitrary sign, so the plus
side of recipe.py may be the Go minus side; the split is then also run with the eigenvector's
sign set as Go sets it (largest-magnitude element positive), the "aligned" run, whose outputs
should agree with Go's to float rounding.
"""
import argparse, json, os, sys
import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import recipe as ref  # noqa: E402


def read(d, stem):
    meta = json.load(open(os.path.join(d, stem + ".json")))
    raw = np.fromfile(os.path.join(d, stem + ".bin"), dtype="<f8")
    out = {}
    for t in meta["tensors"]:
        n = int(np.prod(t["shape"]))
        out[t["name"]] = raw[t["offset"]:t["offset"] + n].reshape(t["shape"])
    return meta["meta"], out


def mad(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    return float(np.abs(a - b).max()) if a.size else 0.0


def rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return mad(a, b) / max(float(np.abs(b).max()), 1e-30)


class Run:
    """recipe.py's model and optimiser with the Go state; split_symbol with its intermediates."""

    def __init__(s, meta, t, dtype, route, align_sign):
        c = meta["config"]
        s.c, s.meta, s.t = c, meta, t
        torch.set_default_dtype(dtype)
        s.model = ref.NLI(T=c["T"], K=c["K"], d=c["d"], layers=c["layers"], heads=c["heads"], ds=c["ds"],
                          dv=c["dv"], H=c["H"], exec_kind="sym").to(dtype)
        sd = {n: torch.tensor(t[n], dtype=dtype) for n in s.model.state_dict()}
        s.model.load_state_dict(sd)
        tr = c["train"]
        s.a = ref.parse(["--exec", "sym", "--split", "comp-i", "--split_route", route,
                         "--K", str(c["K"]), "--T", str(c["T"]), "--B", str(meta["B"]), "--m", str(meta["m"])]
                        + [f"--{k}={v}" for k, v in (("split_eta", tr.get("split_eta")), ("split_alpha", tr.get("split_alpha")),
                                                     ("split_delta", tr.get("split_delta"))) if v])
        s.opt, _ = ref.make_optimizer(s.model, s.a)
        for n, p in s.model.named_parameters():
            s.opt.state[p] = dict(step=torch.tensor(float(meta["step"])),
                                  exp_avg=torch.tensor(t["adam_m/" + n], dtype=dtype),
                                  exp_avg_sq=torch.tensor(t["adam_v/" + n], dtype=dtype))
        B, m, L = meta["B"], meta["m"], c["L"]
        s.x = torch.tensor(t["x"]).long().reshape(B, m, L)
        s.y = torch.tensor(t["y"]).long().reshape(B, m, L)
        s.idx = torch.tensor(t["prog"]).long()
        s.cap = {}
        orig_grads, orig_eigh = ref._sym_slot_grads, torch.linalg.eigh

        def grads(*args, **kw):
            r = orig_grads(*args, **kw)
            s.cap["g"], s.cap["nll"], s.cap["sts"], s.cap["dns"] = [v.detach().clone() for v in r]
            return r

        def eigh(M):
            ev, U = orig_eigh(M)
            s.cap["raw_last"] = U[:, -1].clone()
            if align_sign:
                v = U[:, -1]
                if v[v.abs().argmax()] < 0:        # torch's argmax: the first of ties, as Go's
                    U = U.clone(); U[:, -1] = -v
            s.cap["U_last"] = U[:, -1].clone()
            return ev, U

        ref._sym_slot_grads, torch.linalg.eigh = grads, eigh
        orig_float = torch.Tensor.float
        if dtype == torch.float64:                     # recipe.py's one-hot states use .float()
            torch.Tensor.float = lambda self, *args, **kw: self.double()
        try:
            s.rec = ref.split_symbol(s.model, s.opt, s.a, s.x, s.y, s.idx, meta["tau_d"], meta["step"])
        finally:
            ref._sym_slot_grads, torch.linalg.eigh = orig_grads, orig_eigh
            torch.Tensor.float = orig_float
        with torch.no_grad():                                   # the split's first lines, for am
            lg, _ = ref.loo_logits(s.pre_model(), s.x, s.y)
        s.am = lg.argmax(-1).flatten().numpy()

    def pre_model(s):
        c, t = s.c, s.t
        mdl = ref.NLI(T=c["T"], K=c["K"], d=c["d"], layers=c["layers"], heads=c["heads"], ds=c["ds"],
                      dv=c["dv"], H=c["H"], exec_kind="sym")
        mdl.load_state_dict({n: torch.tensor(t[n], dtype=torch.get_default_dtype()) for n in mdl.state_dict()})
        return mdl

    def after(s):
        out = {}
        for n, p in s.model.named_parameters():
            out[n] = p.detach().numpy().astype(np.float64)
            st = s.opt.state[p]
            out["adam_m/" + n] = st["exp_avg"].numpy().astype(np.float64)
            out["adam_v/" + n] = st["exp_avg_sq"].numpy().astype(np.float64)
        return out


def compare(d, dtype, route, report):
    meta, t = read(d, "input")
    gm, g = read(d, "go_" + route)
    ev = gm["event"]
    c = meta["config"]
    B, m, T, K, L, V, DS = meta["B"], meta["m"], c["T"], c["K"], c["L"], c["V"], c["ds"]
    N, LV = B * m, L * V
    r = {"route": route, "dtype": str(dtype).replace("torch.", ""), "go_event": {k: ev.get(k) for k in
         ("symbol", "new", "slots", "cost", "top_share", "to_D", "capped", "skipped")}}
    raw = Run(meta, t, dtype, route, align_sign=False)
    al = Run(meta, t, dtype, route, align_sign=True)
    r["recipe_record"] = {k: raw.rec.get(k) for k in ("symbol", "new", "slots", "cost", "top_share", "to_D", "capped", "skipped")}
    gam = g["trace/am"].astype(int)
    r["am_mismatch"] = int((raw.am != gam).sum())
    A, D = int(g["trace/A"][0]), int(g["trace/dead"][0])
    r["A_same"] = raw.rec.get("symbol") == A
    r["D_same"] = raw.rec.get("new") == D
    cap = raw.cap
    r["pair_nll_max_abs"] = mad(cap["nll"].flatten().numpy(), g["trace/pair_nll"])
    nl = cap["nll"].flatten().numpy().astype(np.float64)
    am3 = raw.am.reshape(N, T)
    cost = np.zeros(K)
    for k in range(1, K):
        on = (am3 == k).any(-1)
        cost[k] = nl[on].sum()
    r["cost_max_abs"] = mad(cost, g["trace/cost"])
    # per-step states read and logit gradients: Go (T, N, L*V) at (t*N+n); recipe (B, m, T, ·)
    gst = g["trace/st"].reshape(T, N, L, V)
    emb = np.einsum("tnlv,vd->tnld", gst, t["Eio"]) + t["P"][None, None]
    rs = cap["sts"].numpy().reshape(N, T, L * DS).transpose(1, 0, 2)
    r["state_embedding_max_abs"] = mad(rs, emb.reshape(T, N, L * DS))
    rdn = cap["dns"].numpy().reshape(N, T, LV).transpose(1, 0, 2)
    gdn = g["trace/dn"].reshape(T, N, LV)
    r["dn_max_abs"], r["dn_scale"] = mad(rdn, gdn), float(np.abs(gdn).max())
    rows = g["trace/rows"].astype(int)
    sel = (raw.am == A)
    r["rows_same"] = bool(np.array_equal(np.nonzero(sel)[0], rows))
    if not (r["rows_same"] and r["A_same"] and r["D_same"]):
        report.append(r)                              # a tie decided otherwise: nothing below compares
        return r
    G = cap["g"].numpy().reshape(N * T, -1)[sel]
    r["marginals_max_abs"], r["marginals_scale"] = mad(G, g["trace/G"]), float(np.abs(g["trace/G"]).max())
    # the projections, to unit length; sign as each side has it
    gp = g["trace/proj"]
    gpu = gp / np.linalg.norm(gp)
    rp = cap["raw_last"].numpy().astype(np.float64)
    sign = float(np.sign(rp @ gpu))
    r["proj_sign_recipe_vs_go"] = sign
    r["proj_unit_max_abs"] = mad(sign * rp, gpu)
    rmed = float(torch.tensor(rp).median())
    gplus = g["trace/plus"].astype(bool)
    rplus_raw = rp > rmed
    ap_ = al.cap["U_last"]
    apv = ap_.numpy().astype(np.float64)
    aplus = apv > float(ap_.median())
    # torch's median (the lower middle value) against Go's (the mean of the middle pair), both unit scale
    r["median_aligned"] = [float(ap_.median()), float(g["trace/median"][0] / np.linalg.norm(gp))]
    r["n"], r["plus_go"], r["plus_recipe"] = len(gp), int(gplus.sum()), int(rplus_raw.sum())
    r["plus_same_raw"] = bool(np.array_equal(rplus_raw, gplus))
    r["plus_same_as_go_minus_raw"] = bool(np.array_equal(rplus_raw, ~gplus))
    r["plus_diff_aligned"] = int((aplus != gplus).sum())
    # after the split: the aligned run against Go's, every tensor
    ga = {k: v for k, v in g.items() if not k.startswith("trace/") and k != "plus_rows"}
    ra = al.after()
    worst = {}
    for n, v in ra.items():
        gv = ga[n].reshape(v.shape)
        worst[n] = (mad(v, gv), float(np.abs(gv).max()))
    r["after_aligned_max_abs"] = {n: [round(a, 9), round(b, 6)] for n, (a, b) in worst.items() if a > 0}
    r["after_aligned_all_max_abs"] = max(a for a, _ in worst.values())
    LVk = LV                                          # D's symW columns
    hw, hb = "head.2.weight", "head.2.bias"
    r["D_head_row_max_abs"] = mad(ra[hw][D], ga[hw].reshape(K, -1)[D])
    r["D_bias"] = [float(ra[hb][D]), float(ga[hb][D])]
    sw = ga["symW"].reshape(L * DS, K * LV)
    r["D_symW_max_abs"] = mad(ra["symW"][:, D * LVk:(D + 1) * LVk], sw[:, D * LVk:(D + 1) * LVk])
    r["D_symW_minus_A_scale"] = float(np.abs(sw[:, D * LVk:(D + 1) * LVk] - sw[:, A * LVk:(A + 1) * LVk]).max())
    r["D_symB_max_abs"] = mad(ra["symB"][D], ga["symB"].reshape(K, LV)[D])
    r["A_unchanged_go"] = bool(np.array_equal(ga["symW"].reshape(L * DS, K * LV)[:, A * LVk:(A + 1) * LVk],
                                              t["symW"].reshape(L * DS, K * LV)[:, A * LVk:(A + 1) * LVk])
                               and np.array_equal(ga[hw].reshape(K, -1)[A], t[hw].reshape(K, -1)[A]))
    rr = raw.after()
    r["after_raw_D_symW_max_abs"] = mad(rr["symW"][:, D * LVk:(D + 1) * LVk], sw[:, D * LVk:(D + 1) * LVk])
    r["after_raw_D_head_row_max_abs"] = mad(rr[hw][D], ga[hw].reshape(K, -1)[D])
    r["recipe_aligned_record"] = {k: al.rec.get(k) for k in ("to_D", "capped", "top_share")}
    report.append(r)
    return r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--dtype", default="float32,float64")
    a = ap.parse_args()
    report = []
    for dt in a.dtype.split(","):
        for route in ("head", "map"):
            r = compare(a.dir, getattr(torch, dt), route, report)
            print(json.dumps(r), flush=True)
    json.dump(report, open(os.path.join(a.dir, "report.json"), "w"), indent=1)


if __name__ == "__main__":
    main()
