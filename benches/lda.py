#!/usr/bin/env python3
"""W6: LDA by CAVI against scikit-learn's batch variational LDA on the same generated corpus,
and how vi's cost grows with tokens, topics and vocabulary.

    python benches/lda.py [--vinf PATH] [--work DIR] [--quick]

Run it with the anchors' interpreter (numpy, scipy and scikit-learn; see
../shared/bench/anchors/setup.sh), e.g. `/work/.venv-anchors/bin/python benches/lda.py`.

The corpus: D documents of N tokens each, K topics with word distributions ~ Dirichlet(0.1)
over V words, each document's topic weights ~ Dirichlet(0.5); numpy seed 0. Both fits use the
generating concentrations as their priors (alpha 0.5 on the document-topic weights, eta 0.1
on the topic-word distributions). vi fits `models/lda.vi`'s model with the constants set
(one restart); scikit-learn runs `LatentDirichletAllocation(learning_method="batch",
max_iter=100)` on the document-term counts. Recovery: the mean cosine between the true
topic-word vectors and each fit's (vi: the posterior means of beta; scikit-learn: its
normalised `components_`), topics matched by the Hungarian algorithm.

Rows:
  W6   vi (wall time of `vinf fit` with its diagnostics off, and with them) against
       scikit-learn (fit time), same corpus, recovery beside each.
  Scaling: the base corpus, then tokens, topics and vocabulary doubled one at a time: vi's
       seconds per sweep and peak memory (the process's maximum resident set), which should
       double with tokens and topics and stay put with vocabulary.
"""
import argparse
import os
import resource
import subprocess
import sys
import time

import numpy as np
from scipy.optimize import linear_sum_assignment

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

MODEL = """# LDA (benches/lda.py): K topics over V words, D documents
data w: count[T] from "{csv}"
data doc: count[T] from "{csv}"
const K = {K}
const V = {V}
const D = {D}
const alpha = 0.5
const eta = 0.1
theta ~ Dirichlet(fill(alpha, K)) [D]
beta ~ Dirichlet(fill(eta, V)) [K]
for t in 1..T {{
    z[t] ~ Categorical(theta[doc[t]])
    w[t] ~ Categorical(beta[z[t]])
}}
"""


def corpus(docs, per_doc, k, v, seed=0):
    rng = np.random.default_rng(seed)
    beta = rng.dirichlet(np.full(v, 0.1), size=k)
    theta = rng.dirichlet(np.full(k, 0.5), size=docs)
    z = np.array([rng.choice(k, size=per_doc, p=t) for t in theta])
    w = np.array([[rng.choice(v, p=beta[zi]) for zi in row] for row in z])
    return beta, w


def recovery(truth, fitted):
    t = truth / np.linalg.norm(truth, axis=1, keepdims=True)
    f = fitted / np.linalg.norm(fitted, axis=1, keepdims=True)
    cos = t @ f.T
    r, c = linear_sum_assignment(-cos)
    return float(cos[r, c].mean())


def write(work, name, w, k, v):
    csv = os.path.join(work, name + ".csv")
    docs = np.repeat(np.arange(w.shape[0]), w.shape[1])
    np.savetxt(csv, np.column_stack([w.ravel(), docs]), fmt="%d", delimiter=",", header="w,doc", comments="")
    vi = os.path.join(work, name + ".vi")
    with open(vi, "w") as f:
        f.write(MODEL.format(csv=csv, K=k, V=v, D=w.shape[0]))
    return vi


def run_vinf(vinf, model, out, diagnostics):
    cmd = [vinf, "fit", model, "--restarts", "1", "--out", out]
    if not diagnostics:
        cmd += ["--diagnostic-draws", "0"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if p.returncode not in (0, 3):
        sys.exit(f"vinf failed ({p.returncode}): {p.stderr[-2000:]}")
    import json

    with open(os.path.join(out, "summary.json")) as f:
        s = json.load(f)
    return s, wall, peak if peak > before else None


def vi_beta(summary, k, v):
    return np.array(summary["latents"]["beta"]["mean"]).reshape(k, v)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--vinf", default=os.path.join(ROOT, "target", "release", "vinf"))
    ap.add_argument("--work", default="/tmp/vi_lda_bench")
    ap.add_argument("--quick", action="store_true", help="the base corpus only")
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    from sklearn.decomposition import LatentDirichletAllocation

    base = dict(docs=200, per_doc=100, k=5, v=100)
    print("## W6: LDA, vi CAVI against scikit-learn batch variational LDA (same corpus)\n")
    print("| corpus | fit | seconds | iterations | recovery (mean cosine) |")
    print("|---|---|---|---|---|")
    beta, w = corpus(**base)
    model = write(a.work, "w6", w, base["k"], base["v"])
    name = f"D={base['docs']} N={base['per_doc']} K={base['k']} V={base['v']}"
    s, wall, _ = run_vinf(a.vinf, model, os.path.join(a.work, "w6_out"), False)
    rec = recovery(beta, vi_beta(s, base["k"], base["v"]))
    print(f"| {name} | vi CAVI, diagnostics off | {wall:.2f} | {s['iterations']} sweeps ({s['status']}) | {rec:.4f} |")
    s2, wall2, _ = run_vinf(a.vinf, model, os.path.join(a.work, "w6_out_diag"), True)
    print(f"| {name} | vi CAVI, with diagnostics | {wall2:.2f} | {s2['iterations']} sweeps | {recovery(beta, vi_beta(s2, base['k'], base['v'])):.4f} |")
    counts = np.zeros((w.shape[0], base["v"]))
    for d, row in enumerate(w):
        np.add.at(counts[d], row, 1)
    lda = LatentDirichletAllocation(
        n_components=base["k"], learning_method="batch", max_iter=100, doc_topic_prior=0.5, topic_word_prior=0.1, random_state=0
    )
    t0 = time.perf_counter()
    lda.fit(counts)
    sk = time.perf_counter() - t0
    print(f"| {name} | scikit-learn batch, 100 iterations | {sk:.2f} | {lda.n_iter_} | {recovery(beta, lda.components_):.4f} |")
    print(f"\nvi / scikit-learn time: {wall / sk:.2f}x (diagnostics off), {wall2 / sk:.2f}x (with them)")
    if a.quick:
        return
    print("\n## vi's cost as the corpus grows (each row doubles one thing from the base)\n")
    print("| corpus | tokens × topics × words | sweeps | s per sweep | peak memory MB | recovery |")
    print("|---|---|---|---|---|---|")
    for label, c in [
        ("base", base),
        ("2× tokens", dict(base, docs=2 * base["docs"])),
        ("2× topics", dict(base, k=2 * base["k"])),
        ("2× words", dict(base, v=2 * base["v"])),
    ]:
        beta, w = corpus(**c)
        model = write(a.work, "scale", w, c["k"], c["v"])
        # A fresh process per row, so that its peak is its own.
        code = (
            "import resource,subprocess,sys;"
            f"p=subprocess.run({[a.vinf, 'fit', model, '--restarts', '1', '--diagnostic-draws', '0', '--out', os.path.join(a.work, 'scale_out')]!r},capture_output=True);"
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
        )
        peak_kb = int(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip())
        import json

        with open(os.path.join(a.work, "scale_out", "summary.json")) as f:
            s = json.load(f)
        per = s["loop_time_s"] / max(s["iterations"], 1)
        tokens = c["docs"] * c["per_doc"]
        print(
            f"| {label} (T={tokens}, K={c['k']}, V={c['v']}) | {tokens * c['k'] * c['v']:.2e} | {s['iterations']} | {per * 1000:.2f} ms | {peak_kb / 1024:.0f} | {recovery(beta, vi_beta(s, c['k'], c['v'])):.4f} |"
        )


if __name__ == "__main__":
    main()
