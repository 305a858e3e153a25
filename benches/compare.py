#!/usr/bin/env python3
"""Times `vinf fit` against the anchor baselines in ../shared/bench/anchors, in one run, on
identical data, and prints the figures side by side with their ratios.

    python benches/compare.py [--anchors DIR] [--python PY] [--quick] [--only w1|w2|w34|w5|w6]

PY is the anchors' virtual environment's interpreter (make it with
`bash ../shared/bench/anchors/setup.sh DIR`); it defaults to ../.venv-anchors/bin/python.
--quick skips the N = 3,000,000 mixture (about 2 minutes, mostly scikit-learn).

Workloads (the anchors' names):
  W1  Ganguly & Earp's K=3 mixture by CAVI, N = 3,000 and 3,000,000: seconds per sweep and
      sweeps to convergence (relative ELBO change below 1e-10, the anchor's rule), against the
      vectorised numpy CAVI, with scikit-learn's BayesianGaussianMixture for reference.
  W2  Bayesian linear regression (N=10,000, D=10): how far each final ELBO is below the exact
      log evidence (RESULTS.md: -7228.221633).
  W3  Bayesian logistic regression (N=10,000, D=20), SVI, 5,000 steps: steps per second against
      NumPyro's jit loop and compiled scan, and the final ELBO.
  W4  Eight schools, non-centred, SVI, 10,000 steps: steps per second and the final ELBO.
  W5  Kingma & Welling's VAE (784-400-20, tanh, Bernoulli, L^B, batch 100, Adam 1e-3) on the
      MNIST test set (9,000 train, last 1,000 held out), 20 epochs: seconds per epoch against
      the JAX anchor, and the held-out ELBO per image after epochs 1, 5 and 20.
  W6  LDA by CAVI against scikit-learn's batch variational LDA on one generated corpus (20,000
      tokens, K=5, V=100): time and topic recovery, then vi's cost with tokens, topics and
      vocabulary each doubled (benches/lda.py; --quick runs the comparison only).

vi's time per iteration is its loop time (summary.json `loop_time_s` / `iterations`), the best
of three runs; the anchors report the minimum over their own repeats.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
LOG_EVIDENCE_W2 = -7228.221633


def run_json(cmd, cwd=None):
    """Run an anchor script; it prints one JSON line on stdout."""
    t = time.perf_counter()
    out = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{out.stderr[-2000:]}")
    line = [l for l in out.stdout.splitlines() if l.startswith("{")][-1]
    return json.loads(line), time.perf_counter() - t


def vi_fit(model, args, repeats=3):
    """Best-of-`repeats` vinf fit; returns (summary.json, seconds per iteration)."""
    best = None
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as out:
            cmd = [os.path.join(ROOT, "target", "release", "vinf"), "fit", model, "--out", out] + args
            r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
            if r.returncode != 0:
                sys.exit(f"failed: {' '.join(cmd)}\n{r.stderr[-2000:]}")
            s = json.load(open(os.path.join(out, "summary.json")))
        per = s["loop_time_s"] / max(s["iterations"], 1)
        if best is None or per < best[1]:
            best = (s, per)
    return best


def row(cells):
    print("| " + " | ".join(str(c) for c in cells) + " |")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--anchors", default=os.path.join(ROOT, "..", "shared", "bench", "anchors"))
    ap.add_argument("--python", default=os.path.join(ROOT, "..", ".venv-anchors", "bin", "python"))
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", choices=["w1", "w2", "w34", "w5", "w6"], help="run one workload group")
    a = ap.parse_args()
    anchors = os.path.abspath(a.anchors)
    py = a.python
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)

    groups = {"w1": w1, "w2": w2, "w34": w34, "w5": w5, "w6": w6}
    for name, run in groups.items():
        if a.only in (None, name):
            run(anchors, py, a.quick)


def w6(anchors, py, quick):
    # In the anchors' interpreter: it needs numpy, scipy and scikit-learn.
    print()
    cmd = [py, os.path.join(HERE, "lda.py"), "--vinf", os.path.join(ROOT, "target", "release", "vinf")]
    subprocess.run(cmd + (["--quick"] if quick else []), check=True)


def w1(anchors, py, quick):
    print("## W1: GMM CAVI (K=3), vi vs numpy (and scikit-learn BGM)\n")
    row(["N", "vi s/sweep", "vi sweeps", "numpy s/sweep", "numpy sweeps", "numpy/vi per sweep",
         "vi ELBO", "numpy ELBO", "sklearn BGM s (iters)"])
    row(["---"] * 9)
    sizes = [1000] if quick else [1000, 1000000]
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            data = os.path.join(anchors, "data", "w1_gmm_seed0_n1000.csv") if n == 1000 else os.path.join(tmp, "gmm.csv")
            cmd = [py, os.path.join(anchors, "gmm_cavi.py"), "--seed", "0", "--n-per-component", str(n)]
            if n != 1000:
                cmd += ["--dump-data", data]
            anchor, _ = run_json(cmd, cwd=anchors)
            s, per = vi_fit("models/gmm.vi", ["--data", f"x={data}", "--tol", "1e-10"])
            c = anchor["cavi"]
            bgm = anchor.get("sklearn_bgm", {})
            row([3 * n, f"{per:.3g}", s["iterations"], f"{c['s_per_iter']:.3g}", c["iterations"],
                 f"{c['s_per_iter'] / per:.2f}x", f"{s['elbo']:.6f}", f"{c['elbo_final']:.6f}",
                 f"{bgm.get('wall_s', float('nan')):.3g} ({bgm.get('n_iter', '?')})"])



def w2(anchors, py, quick):
    print("\n## W2: linear regression, gap to the exact log evidence (-7228.221633)\n")
    row(["method", "final ELBO", "log p(y) - ELBO"])
    row(["---"] * 3)
    w2 = os.path.join(anchors, "data", "w2_linreg_seed0.csv")
    s, _ = vi_fit("models/linreg.vi", ["--data", w2, "--method", "cavi"], repeats=1)
    row(["vi CAVI", f"{s['elbo']:.4f}", f"{LOG_EVIDENCE_W2 - s['elbo']:.4f}"])
    s, _ = vi_fit("models/linreg.vi", ["--data", w2, "--method", "svi", "--steps", "5000", "--tol", "0"], repeats=1)
    row(["vi SVI mean-field, 5000 steps (mean of last 100)", f"{s['elbo']:.4f}", f"{LOG_EVIDENCE_W2 - s['elbo']:.4f}"])
    row(["NumPyro AutoNormal, 5000 steps (RESULTS.md)", "-7241.146", "12.92"])



def w34(anchors, py, quick):
    print("\n## W3/W4: SVI steps per second, vi vs NumPyro (same steps, lr 0.01, 1 particle)\n")
    row(["workload", "vi steps/s", "NumPyro loop steps/s", "NumPyro scan steps/s",
         "vi / loop", "vi / scan", "vi ELBO", "NumPyro ELBO (last 100)"])
    row(["---"] * 8)
    w3 = os.path.join(anchors, "data", "w3_logreg_seed0.csv")
    anchor, _ = run_json([py, os.path.join(anchors, "logreg_svi.py"), "--seed", "0"], cwd=anchors)
    s, per = vi_fit("models/logreg.vi", ["--data", w3, "--steps", "5000", "--tol", "0"])
    ns = anchor["numpyro_svi"]
    row(["W3 logreg", f"{1 / per:.0f}", f"{ns['loop']['steps_per_s']:.0f}", f"{ns['scan']['steps_per_s']:.0f}",
         f"{ns['loop']['s_per_step'] / per:.2f}x", f"{ns['scan']['s_per_step'] / per:.2f}x",
         f"{s['elbo']:.3f}", f"{ns['scan']['elbo_last100_mean']:.3f}"])
    anchor, _ = run_json([py, os.path.join(anchors, "eight_schools_svi.py"), "--seed", "0", "--nuts-samples", "0"], cwd=anchors)
    s, per = vi_fit("models/eight_schools.vi", ["--steps", "10000", "--tol", "0"])
    ns = anchor["numpyro_svi"]
    row(["W4 eight schools", f"{1 / per:.0f}", f"{ns['loop']['steps_per_s']:.0f}", f"{ns['scan']['steps_per_s']:.0f}",
         f"{ns['loop']['s_per_step'] / per:.2f}x", f"{ns['scan']['s_per_step'] / per:.2f}x",
         f"{s['elbo']:.3f}", f"{ns['scan']['elbo_last100_mean']:.3f}"])



def w5(anchors, py, quick):
    mnist = os.path.join(anchors, "..", "..", "data", "mnist", "t10k-images-idx3-ubyte.gz")
    print("\n## W5: VAE on MNIST t10k, 20 epochs, vi vs JAX + optax\n")
    if not os.path.exists(mnist):
        print(f"skipped: {mnist} not here")
        return
    anchor, _ = run_json([py, os.path.join(anchors, "vae.py"), "--seed", "0", "--epochs", "20"], cwd=anchors)
    with tempfile.TemporaryDirectory() as out:
        cmd = [os.path.join(ROOT, "target", "release", "vinf"), "fit", "models/vae.vi", "--data",
               f"x={os.path.abspath(mnist)}", "--epochs", "20", "--out", out]
        r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        if r.returncode != 0:
            sys.exit(f"failed: {' '.join(cmd)}\n{r.stderr[-2000:]}")
        s = json.load(open(os.path.join(out, "summary.json")))
    epochs = s["epochs"]
    vi_per = sum(e["seconds"] for e in epochs) / len(epochs)
    jax_per = anchor["s_per_epoch_mean"]
    row(["", "s/epoch (mean)", "held-out ELBO ep 1", "ep 5", "ep 20"])
    row(["---"] * 5)
    row(["vi", f"{vi_per:.3f}"] + [f"{epochs[k - 1]['heldout']['elbo']:.2f}" for k in (1, 5, 20)])
    row(["JAX", f"{jax_per:.3f}"] + [f"{anchor['elbo_per_example'][str(k)]['heldout']:.2f}" for k in (1, 5, 20)])
    print(f"\nvi / JAX time per epoch: {vi_per / jax_per:.2f}x")


if __name__ == "__main__":
    main()
