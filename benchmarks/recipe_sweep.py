"""The GPU sweep behind the default recipe: which network and training pay?

A stand-alone PyTorch replica of ``CNNClassifier``'s training (AdamW and
a one-cycle schedule stepped per batch, batch 128, lr 3e-3, weight decay
1e-2, input standardisation, BatchNorm, dropout 0.1 before the output layer,
channels-last), so that many settings can run side by side on one GPU in a
few minutes. A network is a string of layers: ``cN`` a 3x3 convolution to N
channels with BatchNorm and ReLU, ``rN`` a residual block (two of them),
``p`` a 2x max-pool, ``gK`` average pooling to a KxK grid (``g1``: one
global average). Augmentations: ``flip`` (left-right, p=1/2), ``crop``
(shift by up to 2 px, zero fill), ``shift`` (3 px), ``erase`` (a random
square). Each run reports the test accuracy (micro-F1 at 0.5 for the
multi-label mosaics) of the last weights and of two exponential moving
averages of them, each without and with test-time flips. One seed per
setting unless a row says otherwise: differences below about 0.003 are noise.

The results of the session that chose the defaults are in
``results/recipe_sweep.jsonl`` (sweep 1 on an H100, sweep 2 on an H200, fp32
without TF32); ``results/recipe_sweep.md`` is rendered from it.

Run (on a GPU; 8 processes share it):
``python benchmarks/recipe_sweep.py --sweep 1 --workers 8`` and ``--sweep 2``,
then ``python benchmarks/recipe_sweep.py --report``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from _common import write_markdown
from _data import fashion_mnist, fashion_mosaics
from torch import nn

RESULTS = Path(__file__).parent / "results"
JSONL = RESULTS / "recipe_sweep.jsonl"
OLD = "c16 p c32 p c64 g4"  # the previous default network on 28x28
NEW = "c16 p c32 p c64 p c128 g3"  # today's default network on 28x28


def sweep_1() -> list[dict]:
    """Architectures and training settings around the previous defaults."""
    rows = [
        {
            "ops": "c32 p r32 c64 p r64 c128 p r128 g3",
            "epochs": 30,
            "ls": 0.1,
            "aug": "flipcrop",
        },
        {"ops": "c32 p c64 p c128 g4", "epochs": 30, "ls": 0.1, "aug": "flipcrop"},
        {
            "ops": "c32 p r32 c64 p r64 c128 g4",
            "epochs": 40,
            "ls": 0.1,
            "aug": "flipcrop",
        },
        {
            "ops": "c64 p r64 c128 p r128 c256 p r256 g1",
            "epochs": 30,
            "ls": 0.1,
            "aug": "flipcrop",
        },
        {
            "ops": "c32 p r32 c64 p r64 c128 p r128 g3",
            "epochs": 30,
            "ls": 0.1,
            "aug": "flipcroperase",
        },
        {
            "mosaic": True,
            "ops": "c16 p c32 p c64 p c128 g4",
            "epochs": 12,
            "ls": 0.0,
            "aug": "",
        },
        {
            "mosaic": True,
            "ops": "c16 p c32 p c64 p c128 g4",
            "epochs": 12,
            "ls": 0.1,
            "aug": "flip",
        },
        {
            "mosaic": True,
            "ops": "c16 p c32 p c64 p c128 g4",
            "epochs": 12,
            "ls": 0.1,
            "aug": "",
        },
        {
            "mosaic": True,
            "ops": "c16 p r16 c32 p r32 c64 p c128 g4",
            "epochs": 12,
            "ls": 0.1,
            "aug": "flip",
        },
        {
            "mosaic": True,
            "ops": "c16 p c32 p c64 p c128 p r128 g3",
            "epochs": 12,
            "ls": 0.1,
            "aug": "flip",
        },
        {"ops": OLD, "epochs": 12, "ls": 0.0, "aug": ""},
        {"ops": OLD, "epochs": 12, "ls": 0.1, "aug": ""},
        {"ops": OLD, "epochs": 12, "ls": 0.1, "aug": "flip"},
        {"ops": OLD, "epochs": 12, "ls": 0.1, "aug": "crop"},
        {"ops": OLD, "epochs": 12, "ls": 0.1, "aug": "flipcrop"},
        {"ops": OLD, "epochs": 16, "ls": 0.1, "aug": "flip"},
        {"ops": OLD, "epochs": 20, "ls": 0.1, "aug": "flip"},
        {"ops": OLD, "epochs": 12, "ls": 0.1, "aug": "flip", "lr": 6e-3},
        {"ops": OLD, "epochs": 12, "ls": 0.1, "aug": "flip", "bs": 64},
        {"ops": OLD, "epochs": 12, "ls": 0.1, "aug": "flip", "bs": 256, "lr": 6e-3},
        {"ops": OLD, "epochs": 12, "ls": 0.1, "aug": "flip", "dropout": 0.0},
        {"ops": "c16 p c32 p c64 g1", "epochs": 12, "ls": 0.1, "aug": "flip"},
        {"ops": "c24 p c48 p c96 g4", "epochs": 12, "ls": 0.1, "aug": "flip"},
        {"ops": "c16 p r16 c32 p r32 c64 g4", "epochs": 12, "ls": 0.1, "aug": "flip"},
        {"ops": "c16 p c32 p c64 r64 g4", "epochs": 12, "ls": 0.1, "aug": "flip"},
        {"ops": "c16 p c32 p c64 p r64 g3", "epochs": 12, "ls": 0.1, "aug": "flip"},
        {"ops": "c32 p c32 p c64 g4", "epochs": 12, "ls": 0.1, "aug": "flip"},
        {"ops": NEW, "epochs": 12, "ls": 0.1, "aug": "flip"},
        {"ops": "c16 p c32 r32 p c64 g4", "epochs": 12, "ls": 0.1, "aug": "flip"},
        {"ops": "c8 c16 p c32 p c64 g4", "epochs": 12, "ls": 0.1, "aug": "flip"},
        {"ops": "c16 p c48 p c96 g4", "epochs": 12, "ls": 0.1, "aug": "flip"},
        {"ops": "c16 p c32 p c64 r64 g4", "epochs": 8, "ls": 0.1, "aug": "flip"},
        {"ops": "c24 p c48 p c96 g4", "epochs": 8, "ls": 0.1, "aug": "flip"},
        {
            "ops": "c16 p r16 c32 p r32 c64 p r64 g3",
            "epochs": 12,
            "ls": 0.1,
            "aug": "flip",
        },
        {"ops": OLD, "epochs": 16, "ls": 0.1, "aug": "flipcrop"},
        {
            "ops": "c16 p r16 c32 p r32 c64 g4",
            "epochs": 16,
            "ls": 0.1,
            "aug": "flipcrop",
        },
    ]
    return rows


def sweep_2() -> list[dict]:
    """Around today's network: epochs, seeds, smoothing, batch, lr, width."""
    return [
        {"ops": NEW, "epochs": 12, "aug": "flip"},
        {"ops": NEW, "epochs": 12, "aug": "flip", "seed": 1},
        {"ops": NEW, "epochs": 12, "aug": "flip", "ls": 0.1},
        {"ops": NEW, "epochs": 14, "aug": "flip"},
        {"ops": NEW, "epochs": 16, "aug": "flip"},
        {"ops": NEW, "epochs": 12, "aug": "flip", "bs": 64},
        {"ops": NEW, "epochs": 12, "aug": "flip", "lr": 6e-3},
        {"ops": NEW, "epochs": 12, "aug": "flip", "dropout": 0.0},
        {"ops": "c20 p c40 p c80 p c160 g3", "epochs": 12, "aug": "flip"},
        {"ops": "c16 p c32 p c64 p c128 p c256 g1", "epochs": 12, "aug": "flip"},
        {"ops": NEW, "epochs": 14, "aug": "flip", "bs": 64},
        {"ops": NEW, "epochs": 12, "aug": "flip", "seed": 2},
        {
            "mosaic": True,
            "ops": "c16 p c32 p c64 p c128 p c256 g3",
            "epochs": 12,
            "aug": "flip",
        },
        {
            "mosaic": True,
            "ops": "c16 p c32 p c64 p c128 p c256 g3",
            "epochs": 12,
            "aug": "flip",
            "ls": 0.1,
        },
    ]


class Res(nn.Module):
    def __init__(self, c, zero=True):
        super().__init__()
        self.c1 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.b1 = nn.BatchNorm2d(c)
        self.c2 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.b2 = nn.BatchNorm2d(c)
        if zero:
            nn.init.zeros_(self.b2.weight)

    def forward(self, x):
        return F.relu(x + self.b2(self.c2(F.relu(self.b1(self.c1(x))))))


def build(ops, in_ch, side, n_out, dropout=0.1):
    layers, c, s = [], in_ch, side
    macs = 0
    for op in ops.split():
        kind, arg = op[0], op[1:]
        if kind == "c":
            out = int(arg)
            layers += [
                nn.Conv2d(c, out, 3, padding=1, bias=False),
                nn.BatchNorm2d(out),
                nn.ReLU(inplace=True),
            ]
            macs += s * s * 9 * c * out
            c = out
        elif kind == "r":
            layers.append(Res(c))
            macs += 2 * s * s * 9 * c * c
        elif kind == "p":
            layers.append(nn.MaxPool2d(2))
            s //= 2
        elif kind == "g":
            g = min(int(arg), s)
            layers += [nn.AdaptiveAvgPool2d(g), nn.Flatten()]
            feat = c * g * g
        elif kind == "m":  # global max + avg
            layers += [nn.AdaptiveMaxPool2d(1), nn.Flatten()]
            feat = c
    if dropout:
        layers.append(nn.Dropout(dropout))
    layers.append(nn.Linear(feat, n_out))
    return nn.Sequential(*layers), 2 * macs / 1e6


def augment(x, kind, g):
    n = x.shape[0]
    if "flip" in kind:
        f = torch.rand(n, device=x.device, generator=g) < 0.5
        x = torch.where(f.view(-1, 1, 1, 1), x.flip(-1), x)
    if "shift" in kind or "crop" in kind:
        p = 3 if "shift" in kind else 2
        H, W = x.shape[-2:]
        xp = F.pad(x, (p, p, p, p))
        dy = torch.randint(0, 2 * p + 1, (n,), device=x.device, generator=g)
        dx = torch.randint(0, 2 * p + 1, (n,), device=x.device, generator=g)
        rows = (
            (dy.view(n, 1) + torch.arange(H, device=x.device))
            .view(n, 1, H, 1)
            .expand(n, x.shape[1], H, W + 2 * p)
        )
        x = xp.gather(2, rows)
        cols = (
            (dx.view(n, 1) + torch.arange(W, device=x.device))
            .view(n, 1, 1, W)
            .expand(n, x.shape[1], H, W)
        )
        x = x.gather(3, cols)
    if "erase" in kind:  # random erasing of one square per image, p=0.5
        H, W = x.shape[-2:]
        size = H // 3
        cy = torch.randint(0, H, (n,), device=x.device, generator=g).view(n, 1, 1, 1)
        cx = torch.randint(0, W, (n,), device=x.device, generator=g).view(n, 1, 1, 1)
        on = (torch.rand(n, device=x.device, generator=g) < 0.5).view(n, 1, 1, 1)
        yy = torch.arange(H, device=x.device).view(1, 1, H, 1)
        xx = torch.arange(W, device=x.device).view(1, 1, 1, W)
        m = on & ((yy - cy).abs() <= size // 2) & ((xx - cx).abs() <= size // 2)
        x = x.masked_fill(m, 0.0)
    return x


def run(cfg, data, device):
    torch.manual_seed(cfg.get("seed", 0))
    np.random.seed(0)
    X, Y, Xt, Yt = data
    Y, Yt = np.asarray(Y), np.asarray(Yt)
    multilabel = Y.ndim == 2
    n_out = Y.shape[1] if multilabel else 10
    Xg = torch.as_tensor(X, device=device).unsqueeze(1)  # uint8
    Xtg = torch.as_tensor(Xt, device=device).unsqueeze(1)
    Yg = torch.as_tensor(Y, device=device)
    mean = float(X.mean() / 255)
    std = float(X.std() / 255)
    net, mflop = build(cfg["ops"], 1, X.shape[1], n_out, cfg.get("dropout", 0.1))
    net = net.to(device).to(memory_format=torch.channels_last)
    ema_decays = cfg.get("ema", [0.99, 0.998])
    emas = [
        [
            p.detach().clone()
            for p in list(net.parameters()) + list(net.buffers())
            if p.is_floating_point()
        ]
        for _ in ema_decays
    ]
    tracked = [
        p for p in list(net.parameters()) + list(net.buffers()) if p.is_floating_point()
    ]
    bs = cfg.get("bs", 128)
    epochs = cfg["epochs"]
    n = len(X)
    steps = n // bs + (n % bs > 0)
    opt = torch.optim.AdamW(
        net.parameters(), lr=cfg.get("lr", 3e-3), weight_decay=cfg.get("wd", 1e-2)
    )
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt,
        max_lr=cfg.get("lr", 3e-3),
        total_steps=epochs * steps,
        pct_start=cfg.get("pct", 0.3),
    )
    ls = cfg.get("ls", 0.0)
    g = torch.Generator(device=device).manual_seed(cfg.get("seed", 0))
    aug = cfg.get("aug", "")

    def prep(xb):
        xb = xb.float().div_(255)
        return ((xb - mean) / std).contiguous(memory_format=torch.channels_last)

    def loss_fn(out, yb):
        if multilabel:
            t = yb.float()
            if ls:
                t = t * (1 - ls) + ls / 2
            return F.binary_cross_entropy_with_logits(out, t)
        return F.cross_entropy(out, yb.long(), label_smoothing=ls)

    def evaluate(params=None):
        if params is not None:
            saved = [p.detach().clone() for p in tracked]
            for p, e in zip(tracked, params, strict=False):
                p.data.copy_(e)
        net.eval()
        outs, outs_t = [], []
        with torch.no_grad():
            for i in range(0, len(Xtg), 2000):
                xb = prep(Xtg[i : i + 2000])
                o = net(xb)
                ot = net(xb.flip(-1))
                if multilabel:
                    outs.append(torch.sigmoid(o))
                    outs_t.append((torch.sigmoid(o) + torch.sigmoid(ot)) / 2)
                else:
                    outs.append(o.softmax(1))
                    outs_t.append((o.softmax(1) + ot.softmax(1)) / 2)
        net.train()
        if params is not None:
            for p, s in zip(tracked, saved, strict=False):
                p.data.copy_(s)
        res = []
        for P in (torch.cat(outs), torch.cat(outs_t)):
            P = P.cpu().numpy()
            if multilabel:
                pred = P >= 0.5
                tp = (pred & (Yt == 1)).sum()
                fp = (pred & (Yt == 0)).sum()
                fn = (~pred & (Yt == 1)).sum()
                res.append(float(2 * tp / (2 * tp + fp + fn)))
            else:
                res.append(float((P.argmax(1) == Yt).mean()))
        return res

    curve = []
    t0 = time.time()
    step = 0
    for _ep in range(epochs):
        perm = torch.randperm(n, device=device, generator=g)
        net.train()
        for i in range(steps):
            idx = perm[i * bs : (i + 1) * bs]
            xb = Xg[idx].float().div_(255)
            if aug:
                xb = augment(xb, aug, g)
            xb = ((xb - mean) / std).contiguous(memory_format=torch.channels_last)
            out = net(xb)
            loss = loss_fn(out, Yg[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            with torch.no_grad():
                cur = [p.detach() for p in tracked]
                for d, e in zip(ema_decays, emas, strict=False):
                    # warm-up: decay min(d, (1+step)/(10+step)) as in TF's EMA
                    dd = (
                        min(d, (1 + step) / (10 + step)) if cfg.get("warm", True) else d
                    )
                    for average, tensor in zip(e, cur, strict=True):
                        average.lerp_(tensor, 1 - dd)
        accs = {"raw": evaluate()}
        for d, e in zip(ema_decays, emas, strict=False):
            accs[f"ema{d}"] = evaluate(e)
        curve.append(accs)
    return {
        "cfg": cfg,
        "mflop": mflop,
        "final": curve[-1],
        "curve": curve,
        "gpu_s": time.time() - t0,
    }


def load(cfg: dict, cache: dict):
    """The data set ``cfg`` trains on: Fashion-MNIST, or the 56x56 mosaics."""
    name = "mosaic" if cfg.get("mosaic") else "fashion"
    if name not in cache:
        cache[name] = (
            fashion_mosaics(40000, 5000) if name == "mosaic" else fashion_mnist()
        )
    return cache[name]


def worker(args) -> None:
    index, n_workers, cfgs, sweep, out = args
    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.backends.cudnn.benchmark = True
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    cache: dict = {}
    for i, cfg in enumerate(cfgs):
        if i % n_workers != index:
            continue
        result = run(cfg, load(cfg, cache), device)
        result.update(sweep=sweep, i=i)
        result.pop("curve")
        with open(out, "a") as file:
            file.write(json.dumps(result) + "\n")
        print(i, cfg, result["final"], flush=True)


def report(path: Path, out: Path) -> None:
    rows = []
    for line in path.read_text().splitlines():
        r = json.loads(line)
        cfg = dict(r["cfg"])
        data = "mosaics (micro-F1)" if cfg.pop("mosaic", False) else "Fashion-MNIST"
        ops = cfg.pop("ops")
        cfg["aug"] = cfg.get("aug") or "none"
        raw, ema = r["final"]["raw"], r["final"]["ema0.998"]
        rows.append(
            [
                r["sweep"],
                data,
                ops,
                f"{r['mflop']:.1f}",
                ", ".join(f"{k}={v}" for k, v in cfg.items()),
                f"{raw[0]:.4f}",
                f"{raw[1]:.4f}",
                f"{ema[1]:.4f}",
            ]
        )
    write_markdown(
        out,
        "Recipe sweep on a GPU (plain PyTorch replica of the training loop)",
        [
            "sweep",
            "data",
            "network",
            "MFLOP/image",
            "training",
            "accuracy",
            "with test-time flips",
            "EMA 0.998 + flips",
        ],
        rows,
        [
            "Full Fashion-MNIST (60k / 10k) or 40k / 5k multi-label mosaics; one "
            "seed per row unless it names one; fp32 without TF32.",
            "Networks: cN conv3x3+BN+ReLU to N channels, rN residual block, p "
            "max-pool, gK average pool to KxK (g1 global). Training: epochs, ls "
            "(label smoothing), aug (flip, crop 2 px, shift 3 px, erase), bs, lr, "
            "dropout; the rest as CNNClassifier's defaults.",
            "Previous default network on 28x28: c16 p c32 p c64 g4; today's: "
            "c16 p c32 p c64 p c128 g3.",
            "Command: `python benchmarks/recipe_sweep.py --sweep 1 --workers 8` "
            "(and `--sweep 2`) on a GPU, then `--report`.",
        ],
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sweep", type=int, choices=[1, 2])
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--report", action="store_true")
    parser.add_argument("--out", default=str(RESULTS / "recipe_sweep.md"))
    args = parser.parse_args(argv)
    if args.report:
        report(JSONL, Path(args.out))
        print(Path(args.out).read_text())
        return
    if args.sweep is None:
        parser.error("pass --sweep 1 or --sweep 2 (or --report)")
    cfgs = sweep_1() if args.sweep == 1 else sweep_2()
    jobs = [(w, args.workers, cfgs, args.sweep, JSONL) for w in range(args.workers)]
    start = time.perf_counter()
    with multiprocessing.get_context("spawn").Pool(args.workers) as pool:
        pool.map(worker, jobs)
    print(f"{len(cfgs)} runs in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
