#!/usr/bin/env python3
"""Issue #17's figures: the MLP VAE, the convolutional VAE and the convolutional VAE-GAN on
MNIST, same machine, seeds and epochs.

    python3 benches/sample_quality.py [--vinf PATH] [--work DIR] [--epochs N] [--eval-rows R]

Each model is fitted on the MNIST test images (../shared/data/mnist/t10k-images-idx3-ubyte.gz;
the last 10% held out) with `--classifier benches/classifiers/mnist_mlp.safetensors`, the
fixed classifier that benches/mnist_classifier.py trained once on the labelled test digits.
After the last epoch vi decodes 2000 prior draws and the classifier reads them.

Per model it prints: the held-out ELBO per row after the last epoch; with --eval-rows R > 0,
`vinf eval -k 5000` on the first R held-out rows (log p(x), importance-weighted); the
classifier's mean max-probability on the prior draws (confidence), the entropy of the
predicted-class histogram (ln 10 = 2.30 when even), the smallest class share (issue: every
class at least 5%), the draws' spread against the data's, and the seconds per epoch. The
image grids are in WORK/<model>/{samples,reconstructions}.png. Needs only the standard
library.
"""
import argparse
import gzip
import json
import os
import struct
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MNIST = os.path.join(ROOT, "..", "shared", "data", "mnist", "t10k-images-idx3-ubyte.gz")
CLASSIFIER = os.path.join(ROOT, "benches", "classifiers", "mnist_mlp.safetensors")
MODELS = [
    ("MLP VAE", "models/vae.vi"),
    ("conv VAE", "models/conv_vae.vi"),
    ("conv VAE-GAN", "models/vae_gan.vi"),
]


def heldout_images(work):
    """The last 10% of the test images (the rows every fit holds out), as an IDX file."""
    path = os.path.join(work, "heldout-images-idx3-ubyte.gz")
    raw = gzip.open(MNIST).read()
    magic, n, r, c = struct.unpack(">IIII", raw[:16])
    first = n - n // 10
    with gzip.GzipFile(path, "wb", mtime=0) as f:
        f.write(struct.pack(">IIII", magic, n - first, r, c) + raw[16 + first * r * c :])
    return path


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--vinf", default=os.path.join(ROOT, "target", "release", "vinf"))
    ap.add_argument("--work", default="/tmp/vi_sample_quality")
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--eval-rows", type=int, default=200)
    ap.add_argument("--only", help="comma-separated model files to run")
    args = ap.parse_args()
    if not os.path.exists(MNIST):
        sys.exit(f"needs the MNIST test images at {MNIST}")
    os.makedirs(args.work, exist_ok=True)
    held = heldout_images(args.work)
    rows = []
    for label, model in MODELS:
        if args.only and model not in args.only.split(","):
            continue
        out = os.path.join(args.work, os.path.splitext(os.path.basename(model))[0])
        cmd = [args.vinf, "fit", model, "--data", f"x={MNIST}", "--epochs", str(args.epochs),
               "--seed", str(args.seed), "--classifier", CLASSIFIER, "--out", out]
        t0 = time.time()
        subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wall = time.time() - t0
        summary = json.load(open(os.path.join(out, "summary.json")))
        last = summary["epochs"][-1]
        per_epoch = sum(e["seconds"] for e in summary["epochs"]) / len(summary["epochs"])
        logp = None
        if args.eval_rows > 0:
            subprocess.run([args.vinf, "eval", model, "--from", out, "--data", f"x={held}", "-k", "5000",
                            "--rows", str(args.eval_rows)], cwd=ROOT, check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            ev = json.load(open(os.path.join(out, "eval.json")))
            logp = (ev.get("log_px"), ev.get("log_px_se"))
        s = last["samples"] or {}
        k = s.get("classes") or {}
        rows.append((label, last["heldout"]["elbo"], logp, k.get("confidence"), k.get("entropy"),
                     min(k.get("shares") or [float("nan")]), s.get("diversity"), per_epoch, wall,
                     s.get("collapse")))
        print(f"{label}: done in {wall:.0f} s", file=sys.stderr)
    print(f"| model | held-out ELBO/row | log p(x) k=5000 ({args.eval_rows} held-out rows) | confidence | "
          f"class entropy (of 2.30) | smallest class | spread vs data | s/epoch |")
    print("|---|---|---|---|---|---|---|---|")
    for label, elbo, logp, conf, ent, low, div, sec, _, _ in rows:
        lp = "—" if not logp or logp[0] is None else f"{logp[0]:.2f} ± {logp[1]:.2f}"
        f = lambda v, p=3: "—" if v is None else f"{v:.{p}f}"
        print(f"| {label} | {elbo:.2f} | {lp} | {f(conf)} | {f(ent, 2)} | {f(100 * low if low is not None else None, 1)}% | "
              f"{f(div, 2)} | {sec:.1f} |")
    for r in rows:
        if r[-1]:
            print(f"warning: {r[0]}: {r[-1]}")


if __name__ == "__main__":
    main()
