#!/usr/bin/env python3
"""Calibrates the SVI stop rule (src/infer/stop.rs): how often a fit it calls `converged` had
more to gain, and how long after its plateau it stopped.

    python3 benches/stop_calibration.py [--vinf PATH] [--models NAME,NAME] [--seeds 0-9]
                                        [--guide mean-field|full-rank] [--json OUT.json]
                                        [--work DIR] [--budget-s SECONDS] [--extra N]
                                        [--nice N] [--floor-seeds K] [--table-only]

Examples:

    python3 benches/stop_calibration.py --vinf /tmp/vinf_cal --json /tmp/stop_calibration.json
    python3 benches/stop_calibration.py --models garch11 --seeds 0-4 --json /tmp/sc.json
    python3 benches/stop_calibration.py --guide full-rank --seeds 0-4 --json /tmp/sc.json
    python3 benches/stop_calibration.py --json /tmp/sc.json --table-only   # tables from the file

Model names are file stems: the example models (eight_schools, linreg, logreg, beta_bernoulli,
poisson_gamma; the default set is those that `--method svi` fits without networks or discrete
latents) and the nine models/posteriordb/ ones. Results accumulate in --json: a run adds or
replaces the (guide, model, seed) entries it computes, so configurations can be run one at a
time and tabulated together. --budget-s stops starting new fits after that many seconds.

For each model and seed (python3 standard library only):

 A  `vinf fit MODEL --method svi --seed S [--guide G] --out A` (defaults otherwise): its status,
    its stop step n (`iterations`), its ELBO, its latent means.
 B  the same with `--tol 0 --steps n+EXTRA` (EXTRA 20,000): the same trajectory (fits are
    deterministic given the seed; the script checks that B's per-step ELBO trace repeats A's
    first n steps exactly) continued EXTRA steps past the stop.
 R  once per model (its first seed), `--tol 0 --steps n`: does it reproduce A's result? (The
    tail average's horizon is steps/20 clamped to 10..100 steps, so for n < 2000 it is shorter
    than A's, and the finish keeps the better of average and last iterate: small differences
    are expected there.)
 C  for the first --floor-seeds seeds (default 3), `--tol 0 --steps n+EXTRA/2`: how far the
    means still move between C and B, where nothing is left to gain (optimiser jitter in flat
    directions): the floor the 0.1-sd criterion should be read against. The table's last
    column counts the false stops left when a move must also exceed the model's largest
    C->B move.

A false stop: A converged and B's ELBO exceeds A's by more than 1 nat, or some mean moved by
more than 0.1 sd. The ELBO compared is `elbo_at_final_params.mean` (1000 draws of q at the final
parameters, the same draws for A and B, so the difference is nearly free of Monte-Carlo noise);
the trace-tail `elbo` (the mean of the last 100 per-step estimates) is recorded beside it
(`gain_trace`) but not used for the verdict, since its noise is comparable to 1 nat on the
larger models. Means: for posteriordb models, the reference parameters of
models/posteriordb/reference.json in reference sds, computed as benches/posteriordb.py does
(1000 draws by `vinf sample --seed S`, the same seed for A and B, Stan's 1-based names mapped to
0-based elements, derived quantities theta/alpha/sigma from the draws); for the example
models, summary.json's per-element means in units of B's own posterior sd.

Delay (converged fits): n minus the first step at which B's per-step ELBO trace, smoothed by a
centred 200-step running mean, is within 1 nat of its final smoothed value (the mean of the
last 200 steps). Negative: it stopped before that point.

The 95% upper bound on the false-stop rate is the exact one-sided Clopper-Pearson bound
(1 - 0.05^(1/n) when there are none, about 3/n).
"""
import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.dont_write_bytecode = True  # no benches/__pycache__ from importing posteriordb.py
sys.path.insert(0, HERE)
import posteriordb as pdb  # noqa: E402  (MODELS, read_latent_draws, mean_sd)

EXAMPLES = ["eight_schools", "linreg", "logreg", "beta_bernoulli", "poisson_gamma"]
PDB = list(pdb.MODELS)
SMOOTH = 200
NATS = 1.0
SDS = 0.1


def model_path(name):
    if name in pdb.MODELS:
        return os.path.join("models", "posteriordb", name + ".vi")
    return os.path.join("models", name + ".vi")


def parse_seeds(text):
    out = []
    for part in text.split(","):
        if "-" in part:
            a, b = part.split("-")
            out += list(range(int(a), int(b) + 1))
        else:
            out.append(int(part))
    return out


def vinf(a, args, timeout=1200):
    cmd = ["nice", "-n", str(a.nice), a.vinf] + args
    t0 = time.perf_counter()
    p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    return p, time.perf_counter() - t0


def fit(a, name, seed, out, extra_flags):
    if os.path.exists(out):
        shutil.rmtree(out)
    flags = ["fit", model_path(name), "--method", "svi", "--seed", str(seed), "--out", out]
    if a.guide != "mean-field":
        flags += ["--guide", a.guide]
    p, wall = vinf(a, flags + extra_flags)
    path = os.path.join(out, "summary.json")
    if p.returncode not in (0, 3, 4) or not os.path.exists(path):
        raise RuntimeError(f"vinf fit {name} seed {seed} {extra_flags}: exit {p.returncode}: "
                           + pdb.headline(p.stderr))
    s = json.load(open(path))
    s["_wall_s"] = wall
    return s


def trace(out):
    with open(os.path.join(out, "elbo.csv")) as f:
        f.readline()
        return [float(line.split(",")[1]) for line in f]


def summary_means(s):
    """{latent[k]: (mean, sd)} from summary.json, 0-based elements."""
    out = {}
    for name, l in s["latents"].items():
        for k, (m, sd) in enumerate(zip(l["mean"], l["sd"])):
            out[f"{name}[{k}]" if l["shape"] else name] = (m, sd)
    return out


def ref_means(a, name, seed, out):
    """{reference name: draws' mean}, as benches/posteriordb.py computes them."""
    csv = os.path.join(out, "draws.csv")
    p, _ = vinf(a, ["sample", model_path(name), "--from", out, "-n", "1000", "--seed", str(seed),
                    "--out", csv])
    if p.returncode != 0:
        raise RuntimeError(f"vinf sample {name}: exit {p.returncode}: {pdb.headline(p.stderr)}")
    draws = pdb.read_latent_draws(csv)
    os.remove(csv)
    means = {}
    for ref in REFS[pdb.MODELS[name]]["params"]:
        if "[" in ref:
            base, idx = ref.split("[")[0], int(ref.split("[")[1].rstrip("]")) - 1
            x = [row[idx] for row in draws[base]]
        else:
            x = [v for row in draws[ref] for v in row]
        means[ref] = pdb.mean_sd(x)[0]
    return means


def mean_move(a, name, seed, sa, sb, dir_a, dir_b):
    """The largest |mean_B - mean_A| in sds (reference sds for posteriordb), and where."""
    if name in pdb.MODELS:
        ref = REFS[pdb.MODELS[name]]["params"]
        ma, mb = ref_means(a, name, seed, dir_a), ref_means(a, name, seed, dir_b)
        moves = [(abs(mb[k] - ma[k]) / ref[k]["sd"], k) for k in ref]
    else:
        ma, mb = summary_means(sa), summary_means(sb)
        moves = [(abs(mb[k][0] - ma[k][0]) / mb[k][1], k) for k in mb if mb[k][1] > 0]
    moves = [(m if math.isfinite(m) else math.inf, k) for m, k in moves]
    return max(moves)


def smoothed(t, w=SMOOTH):
    """Centred running mean of width w (shorter at the ends), 1-based steps."""
    c = [0.0]
    for v in t:
        c.append(c[-1] + v)
    n, h = len(t), w // 2
    return [(c[min(n, i + h)] - c[max(0, i - h)]) / (min(n, i + h) - max(0, i - h))
            for i in range(n)]


def delay(tb, n):
    s = smoothed(tb)
    final = sum(tb[-SMOOTH:]) / len(tb[-SMOOTH:])
    first = next(i + 1 for i, v in enumerate(s) if v >= final - NATS)
    return n - first, first


def one(a, name, seed, check_repro, floor):
    base = os.path.join(a.work, a.guide, name, str(seed))
    dir_a, dir_b = base + "_A", base + "_B"
    sa = fit(a, name, seed, dir_a, [])
    n = sa["iterations"]
    sb = fit(a, name, seed, dir_b, ["--tol", "0", "--steps", str(n + a.extra)])
    ta, tb = trace(dir_a), trace(dir_b)
    same = len(ta) == n and len(tb) == n + a.extra and ta == tb[:n]
    diff_trace = max((abs(x - y) for x, y in zip(ta, tb)), default=0.0)
    fa, fb = sa["elbo_at_final_params"]["mean"], sb["elbo_at_final_params"]["mean"]
    move, at = mean_move(a, name, seed, sa, sb, dir_a, dir_b)
    d, first = delay(tb, n)
    r = dict(model=name, seed=seed, guide=a.guide, status=sa["status"], n=n,
             elbo_a=fa, elbo_b=fb, gain=fb - fa, gain_trace=sb["elbo"] - sa["elbo"],
             elbo_a_trace=sa["elbo"], elbo_b_trace=sb["elbo"],
             se_a=sa["elbo_at_final_params"]["se"], se_b=sb["elbo_at_final_params"]["se"],
             max_move_sd=move, max_move_at=at, delay=d, within_1nat_at=first,
             trace_repeats=same, trace_max_diff=diff_trace,
             wall_a=sa["_wall_s"], wall_b=sb["_wall_s"])
    r["false_stop"] = r["status"] == "converged" and (r["gain"] > NATS or move > SDS)
    if floor:
        # The noise floor: the same trajectory stopped halfway between A and B, against B. A
        # mean that still wanders this much with nothing left to gain is optimiser jitter.
        dir_c = base + "_C"
        sc = fit(a, name, seed, dir_c, ["--tol", "0", "--steps", str(n + a.extra // 2)])
        r["floor_gain"] = fb - sc["elbo_at_final_params"]["mean"]
        r["floor_move_sd"], r["floor_move_at"] = mean_move(a, name, seed, sc, sb, dir_c, dir_b)
        shutil.rmtree(dir_c)
    if check_repro:
        dir_r = base + "_R"
        sr = fit(a, name, seed, dir_r, ["--tol", "0", "--steps", str(n)])
        r["repro_elbo_diff"] = sr["elbo_at_final_params"]["mean"] - fa
        r["repro_trace_repeats"] = trace(dir_r) == ta
        ma, mr = summary_means(sa), summary_means(sr)
        r["repro_max_move_sd"], r["repro_max_move_at"] = max(
            (abs(mr[k][0] - ma[k][0]) / ma[k][1], k) for k in ma if ma[k][1] > 0)
        shutil.rmtree(dir_r)
    for d_ in (dir_a, dir_b):
        p = os.path.join(d_, "params.safetensors")
        if os.path.exists(p):
            os.remove(p)
    return r


def log_binom_cdf(x, n, p):
    if p <= 0:
        return 0.0
    if p >= 1:
        return -math.inf if x < n else 0.0
    terms = [math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)
             + k * math.log(p) + (n - k) * math.log1p(-p) for k in range(x + 1)]
    m = max(terms)
    return m + math.log(sum(math.exp(t - m) for t in terms))


def clopper_pearson_upper(x, n, alpha=0.05):
    """The p at which P(X <= x; n, p) = alpha (one-sided upper bound)."""
    if n == 0:
        return 1.0
    if x >= n:
        return 1.0
    lo, hi = 0.0, 1.0
    for _ in range(200):
        mid = (lo + hi) / 2
        if log_binom_cdf(x, n, mid) > math.log(alpha):
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def median(xs):
    xs = sorted(xs)
    if not xs:
        return math.nan
    k = len(xs) // 2
    return xs[k] if len(xs) % 2 else (xs[k - 1] + xs[k]) / 2


def fmt(x, f="{:.2f}"):
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f.format(x)


def beyond(r, floors):
    """A false stop even when the means' jitter floor (the model's largest C->B move) is
    allowed for."""
    return r["gain"] > NATS or r["max_move_sd"] > max([SDS] + floors)


def tables(results):
    lines = []
    total_stops = total_false = total_beyond = 0
    for guide in sorted({r["guide"] for r in results}):
        rows = [r for r in results if r["guide"] == guide]
        lines += [f"\n### --method svi --guide {guide}\n",
                  "model | fits | converged | stalled | false stops | median delay (steps) | "
                  "max ELBO gain in B after stop | max mean move (in ref sds) | "
                  "floor: max move C→B (n+EXTRA/2 → n+EXTRA) | false stops beyond the floor",
                  "---|---|---|---|---|---|---|---|---|---"]
        order = [m for m in EXAMPLES + PDB if any(r["model"] == m for r in rows)]
        for m in order:
            rs = sorted((r for r in rows if r["model"] == m), key=lambda r: r["seed"])
            conv = [r for r in rs if r["status"] == "converged"]
            false = [r for r in conv if r["false_stop"]]
            stalled = sum(r["status"] == "stalled" for r in rs)
            seeds = f" (seeds {rs[0]['seed']}-{rs[-1]['seed']})" if len(rs) < 10 else ""
            unit = "" if m in pdb.MODELS else " (own sd)"
            g = max((r["gain"] for r in conv), default=None)
            mv = max((r["max_move_sd"] for r in conv), default=None)
            fl = [r["floor_move_sd"] for r in rs if "floor_move_sd" in r]
            lines.append(" | ".join([
                m + seeds, str(len(rs)), str(len(conv)), str(stalled), str(len(false)),
                fmt(median([r["delay"] for r in conv]), "{:.0f}"),
                fmt(g, "{:+.3f}"), fmt(mv, "{:.3f}") + unit,
                (fmt(max(fl), "{:.3f}") + f" ({len(fl)} seeds)") if fl else "-",
                str(sum(beyond(r, fl) for r in conv))]))
            total_beyond += sum(beyond(r, fl) for r in conv)
            total_stops += len(conv)
            total_false += len(false)
        stops = sum(r["status"] == "converged" for r in rows)
        fs = sum(r["false_stop"] for r in rows)
        lines.append(f"\n{guide}: {stops} stops, {fs} false; 95% upper bound on the false-stop "
                     f"rate {clopper_pearson_upper(fs, stops):.4f}")
    lines.append(f"\nall: {total_stops} stops, {total_false} false stops; one-sided 95% "
                 f"Clopper-Pearson upper bound {clopper_pearson_upper(total_false, total_stops):.4f}"
                 + (f" (3/n = {3 / total_stops:.4f})" if total_false == 0 and total_stops else ""))
    lines.append(f"all, counting a mean move only beyond max(0.1 sd, the model's floor): "
                 f"{total_beyond} false stops; upper bound "
                 f"{clopper_pearson_upper(total_beyond, total_stops):.4f}")
    for r in results:
        if r["false_stop"]:
            lines.append(f"FALSE STOP: {r['guide']} {r['model']} seed {r['seed']} n {r['n']}: "
                         f"gain {r['gain']:+.3f} nats (trace {r['gain_trace']:+.3f}), move "
                         f"{r['max_move_sd']:.3f} sd at {r['max_move_at']}")
    for r in results:
        if not r["trace_repeats"]:
            lines.append(f"TRACE MISMATCH: {r['guide']} {r['model']} seed {r['seed']}: max diff "
                         f"{r['trace_max_diff']:.3g}")
        if "repro_elbo_diff" in r:
            lines.append(f"repro {r['guide']} {r['model']} seed {r['seed']} (n {r['n']}): "
                         f"--tol 0 --steps n trace repeats: {r['repro_trace_repeats']}; ELBO diff "
                         f"{r['repro_elbo_diff']:+.4f}; max mean diff {r['repro_max_move_sd']:.4f} "
                         f"sd ({r['repro_max_move_at']})")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--vinf", default=os.path.join(ROOT, "target", "release", "vinf"))
    ap.add_argument("--models", default=",".join(EXAMPLES + PDB))
    ap.add_argument("--seeds", default="0-9")
    ap.add_argument("--guide", default="mean-field", choices=["mean-field", "full-rank"])
    ap.add_argument("--json", default="/tmp/stop_calibration.json")
    ap.add_argument("--work", default="/tmp/stop_calibration")
    ap.add_argument("--budget-s", type=float, default=math.inf)
    ap.add_argument("--extra", type=int, default=20000)
    ap.add_argument("--nice", type=int, default=10)
    ap.add_argument("--floor-seeds", type=int, default=3)
    ap.add_argument("--table-only", action="store_true")
    a = ap.parse_args()
    global REFS
    REFS = json.load(open(os.path.join(ROOT, "models", "posteriordb", "reference.json")))
    old = json.load(open(a.json))["results"] if os.path.exists(a.json) else []
    if a.table_only:
        print(tables(old))
        return
    t0 = time.perf_counter()
    key = lambda r: (r["guide"], r["model"], r["seed"])  # noqa: E731
    results = {key(r): r for r in old}
    for name in a.models.split(","):
        for i, seed in enumerate(parse_seeds(a.seeds)):
            if time.perf_counter() - t0 > a.budget_s:
                print(f"budget spent: skipping {name} seed {seed} on", flush=True)
                break
            try:
                r = one(a, name, seed, check_repro=(i == 0), floor=(i < a.floor_seeds))
            except Exception as e:  # noqa: BLE001
                print(f"{name} seed {seed}: {e}", flush=True)
                continue
            results[key(r)] = r
            print(f"{a.guide} {name} seed {seed}: {r['status']} n={r['n']} gain={r['gain']:+.3f} "
                  f"(trace {r['gain_trace']:+.3f}) move={r['max_move_sd']:.3f} delay={r['delay']} "
                  + (f" floor(gain={r['floor_gain']:+.3f} move={r['floor_move_sd']:.3f})"
                     if "floor_gain" in r else "")
                  + f" repeats={r['trace_repeats']} wall {r['wall_a']:.1f}+{r['wall_b']:.1f} s"
                  + (" FALSE STOP" if r["false_stop"] else ""), flush=True)
            with open(a.json, "w") as f:
                json.dump(dict(vinf=a.vinf, extra=a.extra, results=list(results.values())), f,
                          indent=1)
    print(tables(list(results.values())))


REFS = None

if __name__ == "__main__":
    main()
