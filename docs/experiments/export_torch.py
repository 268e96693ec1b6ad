"""Train a model with the PyTorch reference (nli_torch.py) and export its weights as a
raw bundle (JSON manifest + little-endian float32 .bin) that `native convert` turns into a
.nliw.sz weights file. Parameter names are the Go model's: the executor's first layer is
split into exe.0.weight_s / exe.0.weight_v.

  python3 export_torch.py --ref nli_torch.py --split shift-l --steps 8000 --seed 0 --out DIR
"""
import argparse, importlib.util, json, os, sys
import numpy as np
import torch

ap = argparse.ArgumentParser()
ap.add_argument("--ref", required=True)
ap.add_argument("--split", default="shift-l")
ap.add_argument("--steps", type=int, default=8000)
ap.add_argument("--seed", type=int, default=0)
ap.add_argument("--lam", type=float, default=0.01)
ap.add_argument("--ntest", type=int, default=200)
ap.add_argument("--out", required=True)
a = ap.parse_args()
spec = importlib.util.spec_from_file_location("nli_torch", a.ref)
ref = importlib.util.module_from_spec(spec); spec.loader.exec_module(ref)
torch.manual_seed(a.seed)
torch.backends.cuda.matmul.allow_tf32 = True
model = ref.NLI().cuda()
secs = ref.train(model, a.split, a.steps, 128, 4, a.lam, 3e-4, "cuda", max(1, a.steps // 20))
print(json.dumps(dict(train_s=round(secs, 1))), flush=True)
for part in ("train", "test"):
    r = ref.evaluate(model, a.split, part, a.ntest, 4, "cuda", 64, 200, 0.1, 0.5)
    print(json.dumps(dict(split=a.split, part=part, **r)), flush=True)
os.makedirs(a.out, exist_ok=True)
L, ds = ref.L, model.Eio.shape[1]
entries, chunks, off = [], [], 0
for name, p in model.state_dict().items():
    p = p.detach().float().cpu().numpy()
    parts = [(name, p)]
    if name == "exe.0.weight":
        parts = [("exe.0.weight_s", p[:, :L * ds]), ("exe.0.weight_v", p[:, L * ds:])]
    for n, arr in parts:
        arr = np.ascontiguousarray(arr, dtype="<f4")
        entries.append({"name": n, "shape": list(arr.shape), "offset": off})
        chunks.append(arr.reshape(-1)); off += arr.size
np.concatenate(chunks).tofile(os.path.join(a.out, "weights.bin"))
meta = {"source": "nli_torch.py", "torch": torch.__version__, "split": a.split, "steps": a.steps, "seed": a.seed,
        "lambda": a.lam, "command": " ".join(sys.argv), "tensors": entries}
json.dump(meta, open(os.path.join(a.out, "weights.json"), "w"), indent=1)
print("exported", len(entries), "tensors to", a.out)
