"""Golden parity outputs from the PyTorch reference (../shared/anchors/nli_torch.py).

The Go test TestParityGolden (model/parity_test.go) writes inputs.json + inputs.bin
(a tiny config, its weights, one training batch and its Gumbel noise) with
`go test ./model -run TestParityGolden -update-parity-inputs`. This script loads
them into the reference model in float64, runs one training-loss forward and
backward with that exact noise, and writes golden.json + golden.bin: the
leave-one-out inductor logits, the mean-pooled (eval) logits, the interpreter's
final distribution pi_T, the NLL, the regulariser, the loss and every parameter
gradient. Run it anywhere python3 has torch (CPU is enough):

  python3 torch_parity.py --ref /path/to/nli_torch.py --dir model/testdata/parity

The FiLM interpreter's golden (TestParityGoldenFiLM) comes from the recipe harness's model,
whose default flags are the reference's, with its FiLM step network:

  go test ./model -run TestParityGoldenFiLM -update-parity-film-inputs
  python3 torch_parity.py --ref docs/experiments/recipe.py --exec film \
      --inputs film_inputs --golden film_golden --dir model/testdata/parity

and the symbol-selected interpreter's (TestParityGoldenSym) likewise, with --exec sym (its Ev
takes no part in the loss; its gradient is written as zeros):

  go test ./model -run TestParityGoldenSym -update-parity-sym-inputs
  python3 torch_parity.py --ref docs/experiments/recipe.py --exec sym \
      --inputs sym_inputs --golden sym_golden --dir model/testdata/parity
"""
import argparse, importlib.util, json, os
import numpy as np
import torch


def read_bundle(d, stem):
    meta = json.load(open(os.path.join(d, stem + ".json")))
    raw = np.fromfile(os.path.join(d, stem + ".bin"), dtype="<f4")
    out = {}
    for t in meta["tensors"]:
        n = int(np.prod(t["shape"]))
        out[t["name"]] = raw[t["offset"]:t["offset"] + n].reshape(t["shape"]).astype(np.float64)
    return meta, out


def write_bundle(d, stem, meta, tensors):
    entries, chunks, off = [], [], 0
    for name, arr in tensors:
        a = np.ascontiguousarray(np.asarray(arr, dtype="<f4"))
        entries.append({"name": name, "shape": list(a.shape), "offset": off})
        chunks.append(a.reshape(-1))
        off += a.size
    meta = dict(meta, tensors=entries)
    np.concatenate(chunks).astype("<f4").tofile(os.path.join(d, stem + ".bin"))
    json.dump(meta, open(os.path.join(d, stem + ".json"), "w"), indent=1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ref", required=True, help="path to nli_torch.py")
    ap.add_argument("--dir", required=True, help="folder with inputs.json/.bin")
    ap.add_argument("--exec", default="", help="interpreter kind (recipe.py's --exec; empty: the reference's)")
    ap.add_argument("--inputs", default="inputs", help="input bundle stem")
    ap.add_argument("--golden", default="golden", help="output bundle stem")
    a = ap.parse_args()
    spec = importlib.util.spec_from_file_location("nli_torch", a.ref)
    ref = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ref)
    torch.set_default_dtype(torch.float64)

    meta, t = read_bundle(a.dir, a.inputs)
    c = meta["config"]
    B, m = meta["B"], meta["m"]
    T, K, L, V = c["T"], c["K"], c["L"], c["V"]
    assert c.get("exec", "") in ("", "mlp", a.exec), (c.get("exec"), a.exec)
    kw = dict(exec_kind=a.exec) if a.exec else {}
    model = ref.NLI(T=T, K=K, d=c["d"], layers=c["layers"], heads=c["heads"], ds=c["ds"], dv=c["dv"], H=c["H"], **kw).double()
    sd = {}
    for name in model.state_dict():
        if name == "exe.0.weight":
            sd[name] = torch.tensor(np.concatenate([t["exe.0.weight_s"], t["exe.0.weight_v"]], 1))
        else:
            sd[name] = torch.tensor(t[name])
    model.load_state_dict(sd)

    x = torch.tensor(t["x"]).long().reshape(B, m, L)
    y = torch.tensor(t["y"]).long().reshape(B, m, L)
    nz = torch.tensor(t["noise_z"]).reshape(B, m, T, K)
    ns = torch.tensor(t["noise_s"]).reshape(T, B, m, L, V)
    tau_e, tau_d, lam = meta["tau_e"], meta["tau_d"], meta["lambda"]

    # Replace the reference's noise draws by the Go side's noise, in call order:
    # first the program (B,m,T,K), then one state draw per interpreter step.
    queue = [nz] + [ns[i] for i in range(T)]
    def gumbel_softmax(logits, tau, noise=True):
        g = queue.pop(0)
        assert g.shape == logits.shape, (g.shape, logits.shape)
        return torch.softmax((logits + g) / tau, dim=-1)
    ref.gumbel_softmax = gumbel_softmax
    ref.STATE_NOISE = True
    # The reference builds its one-hot state with .float(); keep everything in float64.
    torch.Tensor.float = lambda self, *args, **kw: self.double()

    logits = ref.loo_logits(model, x, y)
    if isinstance(logits, tuple):  # recipe.py also returns the per-pair encodings
        logits = logits[0]
    z = ref.gumbel_softmax(logits, tau_e)
    lp = model.execute(x, z, tau_d, noise=True)
    assert not queue, "noise left over: the reference drew fewer samples than expected"
    nll = -lp.gather(-1, y[..., None]).squeeze(-1).sum(-1).mean()
    reg = ref.reuse_reg(logits, tau_e)
    loss = nll + lam * reg
    model.zero_grad()
    loss.backward()
    with torch.no_grad():
        mean_logits = model.head(model.encode(x, y).mean(1))

    out = [("logits", logits.detach()), ("mean_logits", mean_logits), ("pi", lp.detach().exp()),
           ("nll", nll.detach().reshape(1)), ("reg", reg.detach().reshape(1)), ("loss", loss.detach().reshape(1))]
    for name, p in model.named_parameters():
        g = p.grad.detach() if p.grad is not None else torch.zeros_like(p)  # exec sym: Ev is unused
        if name == "exe.0.weight":
            ns_ = L * c["ds"]
            out += [("grad/exe.0.weight_s", g[:, :ns_]), ("grad/exe.0.weight_v", g[:, ns_:])]
        else:
            out.append(("grad/" + name, g))
    write_bundle(a.dir, a.golden, {"torch": torch.__version__, "dtype": "float64", "loss": loss.item()}, out)
    print(json.dumps({"loss": loss.item(), "nll": nll.item(), "reg": reg.item(), "tensors": len(out)}))


if __name__ == "__main__":
    main()
