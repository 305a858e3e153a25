#!/usr/bin/env python3
"""Fits the posteriordb models in models/posteriordb/ (the nine, and two of them written centred)
with `vinf fit` and scores the draws
against their reference posteriors, optionally beside NumPyro's AutoNormal on the same models.

    python3 benches/posteriordb.py [--only NAME,NAME] [--draws N] [--numpyro] [--json OUT.json]
                                   [--keep DIR] [VINF FIT FLAGS...]

Any flag this script does not know is passed to `vinf fit` (`--method svi`, `--guide full-rank`,
`--seed 3`, `--steps 20000`, ...); a `--seed` also goes to `vinf sample`. Examples:

    python3 benches/posteriordb.py                               # today's defaults
    python3 benches/posteriordb.py --guide full-rank --only arK,garch11
    python3 benches/posteriordb.py --numpyro --json /tmp/pdb.json

For each model: `vinf fit models/posteriordb/NAME.vi --out DIR` (wall time of the whole command:
parsing, the fit, its diagnostics and the files), then DIR/summary.json (status, PSIS k-hat and
its reading, steps, `gradient_evaluations` where the engine reports it), then `vinf sample
-n DRAWS` (default 1000; Stan's transformed parameters, eight schools' theta, radon's alpha,
seeds' sigma, are the models' derived quantities there), and the suite's metric against
models/posteriordb/reference.json, exactly as ../shared/bench/anchors/posteriordb/common.py's
`compare`: the largest |mean - ref mean| / ref sd over the parameters (and which), and the range
of sd / ref sd. Under 0.3 is good for mean-field VI, over 1 a wrong answer; an sd ratio under
0.5 or over 2 is a problem.

--numpyro runs the anchors' runner (ANCHORS/numpyro_fit.py's `fit`, with its fallback when
NumPyro's argument validation raises) for each model with the anchors' interpreter (--python,
default ../.venv-anchors/bin/python; --anchors, default ../shared/bench/anchors/posteriordb;
--numpyro-config autonormal|automvn). Its wall time is its svi.run including JIT compilation.
Nothing is written outside --keep and --json (the runner's own out/ file is not written, nor
bytecode beside it). The binary is target/release/vinf (`cargo build
--release`), or --vinf PATH.
"""
import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
MODELS_DIR = os.path.join(ROOT, "models", "posteriordb")

# short name (the anchors' np_models.MODELS) -> posterior key in reference.json
MODELS = {
    "eight_schools_noncentered": "eight_schools-eight_schools_noncentered",
    "kidscore_momiq": "kidiq-kidscore_momiq",
    "logearn_height": "earnings-logearn_height",
    "logmesquite": "mesquite-logmesquite",
    "arK": "arK-arK",
    "garch11": "garch-garch11",
    "radon_hierarchical_intercept_noncentered": "radon_mn-radon_hierarchical_intercept_noncentered",
    "GLM_Poisson": "GLM_Poisson_Data-GLM_Poisson_model",
    "seeds": "seeds_data-seeds_model",
    # The same posteriors written centred, as posteriordb's *_centered models are (NumPyro's
    # runner has no such models: --numpyro skips them).
    "eight_schools_centered": "eight_schools-eight_schools_noncentered",
    "radon_hierarchical_intercept_centered": "radon_mn-radon_hierarchical_intercept_noncentered",
}
CENTRED_VARIANTS = {"eight_schools_centered", "radon_hierarchical_intercept_centered"}


def mean_sd(x):
    """numpy's mean and std(ddof=1), NaN and inf propagating as there."""
    m = sum(x) / len(x)
    if not math.isfinite(m) or len(x) < 2:
        return m, math.nan
    return m, math.sqrt(sum((v - m) ** 2 for v in x) / (len(x) - 1))


def compare(draws, ref_params, skip=()):
    """The suite's metric, as ../shared/bench/anchors/posteriordb/common.py has it (in the
    standard library rather than numpy). draws: {site: list of rows, one per draw (the site's
    elements flattened)}. Reference names like beta[1] are 1-based.
    Returns dict with max_mean_err, worst, sd ratio range, per-parameter rows."""
    rows = []
    for name, r in sorted(ref_params.items()):
        if name in skip:
            continue
        if "[" in name:
            base, idx = name.split("[")[0], int(name.split("[")[1].rstrip("]")) - 1
            x = [row[idx] for row in draws[base]]
        else:
            x = [v for row in draws[name] for v in row]
        mean, sd = mean_sd(x)
        rows.append(dict(name=name, mean=mean, sd=sd, ref_mean=r["mean"], ref_sd=r["sd"]))
    out = dict(params=rows)
    ok = [p for p in rows if math.isfinite(p["mean"]) and math.isfinite(p["sd"])]
    out["nonfinite"] = [p["name"] for p in rows if p not in ok]
    if ok and not out["nonfinite"]:
        errs = [(abs(p["mean"] - p["ref_mean"]) / p["ref_sd"], p["name"]) for p in ok]
        rat = [(p["sd"] / p["ref_sd"], p["name"]) for p in ok]
        out["max_mean_err"], out["worst"] = max(errs)
        out["sd_ratio_min"], out["sd_ratio_min_at"] = min(rat)
        out["sd_ratio_max"], out["sd_ratio_max_at"] = max(rat)
    return out


def read_latent_draws(path):
    """`vinf sample`'s long CSV (draw,variable,kind,index,value) -> {latent or derived
    quantity: S rows of its K elements}, in the order the file gives them (row-major; K = 1 for a scalar). Predictive
    rows, which are most of the file, are skipped without being split."""
    vals, order = {}, {}
    with open(path) as f:
        header = f.readline().strip().split(",")
        if header != ["draw", "variable", "kind", "index", "value"]:
            raise ValueError(f"{path}: unexpected header {header}")
        for line in f:
            if ",latent," not in line and ",derived," not in line:
                continue
            draw, var, _, idx, value = line.rstrip("\n").split(",", 4)
            pos = order.setdefault(var, {}).setdefault(idx, len(order[var]))
            vals.setdefault(var, {})[(int(draw), pos)] = float(value)
    out = {}
    for var, cells in vals.items():
        n_draws = 1 + max(d for d, _ in cells)
        width = len(order[var])
        a = [[math.nan] * width for _ in range(n_draws)]
        for (d, p), v in cells.items():
            a[d][p] = v
        out[var] = a
    return out


def flag_value(args, flag):
    """The value of `--flag V` or `--flag=V` in a passthrough list, or None."""
    for i, a in enumerate(args):
        if a == flag and i + 1 < len(args):
            return args[i + 1]
        if a.startswith(flag + "="):
            return a.split("=", 1)[1]
    return None


def tail(text, n=600):
    text = text.strip()
    return text if len(text) <= n else "…" + text[-n:]


def headline(text):
    """The line of a vinf diagnostic that says what went wrong (`  × ...`), else the first."""
    lines = [l.strip() for l in text.splitlines() if l.strip()]
    for l in lines:
        if l.startswith("×"):
            return l.lstrip("× ")
    return lines[0] if lines else ""


def run_vi(name, refs, a, passthrough, out_root):
    """Fit, sample and score one model with vinf; returns a dict (never raises for vinf's faults)."""
    model = os.path.join(MODELS_DIR, name + ".vi")
    out = os.path.join(out_root, name)
    r = dict(model=name, command=[a.vinf, "fit", os.path.relpath(model, ROOT), "--out", out] + passthrough)
    t0 = time.perf_counter()
    try:
        p = subprocess.run(r["command"], cwd=ROOT, capture_output=True, text=True, timeout=a.timeout)
    except subprocess.TimeoutExpired:
        r.update(wall_s=time.perf_counter() - t0, error=f"vinf fit ran past {a.timeout} s")
        return r
    r["wall_s"] = time.perf_counter() - t0
    r["exit_code"] = p.returncode
    if "panicked" in p.stderr:
        r["panic"] = tail(p.stderr)
    summary_path = os.path.join(out, "summary.json")
    # 0 converged, 3 step limit, 4 diverged (the last finite parameters are written)
    if p.returncode not in (0, 3, 4) or not os.path.exists(summary_path):
        r["error"] = f"vinf fit exit {p.returncode}: {headline(p.stderr) or headline(p.stdout)}"
        r["stderr"] = tail(p.stderr, 4000)
        return r
    s = json.load(open(summary_path))
    r["summary"] = {k: s.get(k) for k in ("method", "status", "converged", "iterations", "elbo",
                                           "time_s", "loop_time_s", "psis_khat", "psis_reading",
                                           "iw_bound", "gradient_evaluations", "notes")}
    draws_csv = os.path.join(out, "draws.csv")
    cmd = [a.vinf, "sample", os.path.relpath(model, ROOT), "--from", out, "-n", str(a.draws),
           "--out", draws_csv, "--seed", flag_value(passthrough, "--seed") or "0"]
    p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=a.timeout)
    if p.returncode != 0:
        r["error"] = f"vinf sample exit {p.returncode}: {headline(p.stderr) or headline(p.stdout)}"
        r["stderr"] = tail(p.stderr, 4000)
        return r
    draws = read_latent_draws(draws_csv)
    if not a.keep:
        os.remove(draws_csv)
    missing = sorted({k.split("[")[0] for k in refs} - set(draws))
    if missing:
        r["error"] = f"no draws of {', '.join(missing)}"
        return r
    r.update(compare(draws, refs))
    return r


NUMPYRO_DRIVER = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
import numpyro
from numpyro_fit import fit
name, config = sys.argv[2], sys.argv[3]
try:
    r = fit(name, config)
except Exception as e:   # numpyro_fit.main's fallback, without its file beside the runner
    first = f"{type(e).__name__}: {e}"[:300]
    try:
        with numpyro.validation_enabled(False):
            r = fit(name, config)
        r["note"] = "default raised `" + first[:80] + "`; rerun with numpyro.validation_enabled(False)"
    except Exception as e2:
        r = dict(model=name, config=config, error=first, error2=f"{type(e2).__name__}: {e2}"[:300],
                 wall_s=None)
print(json.dumps(r))
"""


def run_numpyro(name, a):
    """The anchors' NumPyro runner on one model, in the anchors' interpreter."""
    cmd = [a.python, "-B", "-c", NUMPYRO_DRIVER, a.anchors, name, a.numpyro_config]
    try:
        p = subprocess.run(cmd, cwd=a.anchors, capture_output=True, text=True, timeout=a.timeout)
    except subprocess.TimeoutExpired:
        return dict(model=name, error=f"ran past {a.timeout} s")
    lines = [l for l in p.stdout.splitlines() if l.startswith("{")]
    if p.returncode != 0 or not lines:
        return dict(model=name, error=f"exit {p.returncode}: {tail(p.stderr)}")
    return json.loads(lines[-1])


def fmt_err(r):
    if r is None:
        return "-"
    if r.get("error"):
        return "error: " + r["error"][:70]
    if "max_mean_err" not in r:
        return "non-finite (" + ",".join(r.get("nonfinite", [])[:3]) + ")"
    return f"{r['max_mean_err']:.2f} ({r['worst']})"


def fmt_sd(r):
    if r is None or "sd_ratio_min" not in r:
        return "-"
    return f"{r['sd_ratio_min']:.2f}–{r['sd_ratio_max']:.2f}"


def fmt_num(x, f="{:.2f}"):
    return "-" if x is None else f.format(x)


def vi_cells(r):
    s = r.get("summary") or {}
    status = s.get("status") or "-"
    if s.get("psis_reading"):
        status += " / " + s["psis_reading"]
    if r.get("panic"):
        status += " (panic)"
    return [fmt_err(r), fmt_sd(r), fmt_num(s.get("psis_khat")), status, fmt_num(r.get("wall_s")),
            fmt_num(s.get("iterations"), "{}"), fmt_num(s.get("gradient_evaluations"), "{}")]


def row(cells):
    print("| " + " | ".join(str(c) for c in cells) + " |", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False,
                                 epilog="Unknown flags are passed to `vinf fit`.")
    ap.add_argument("--only", help="comma-separated short names (default: all eleven)")
    ap.add_argument("--draws", type=int, default=1000, help="draws from each fit (default 1000)")
    ap.add_argument("--json", help="write every number (per parameter too) to this file")
    ap.add_argument("--keep", help="keep each fit's folder (and draws.csv) under this folder")
    ap.add_argument("--vinf", default=os.path.join(ROOT, "target", "release", "vinf"))
    ap.add_argument("--timeout", type=float, default=900, help="seconds per command (default 900)")
    ap.add_argument("--numpyro", action="store_true", help="also run the anchors' NumPyro runner")
    ap.add_argument("--numpyro-config", default="autonormal", choices=["autonormal", "automvn"])
    ap.add_argument("--anchors", default=os.path.join(ROOT, "..", "shared", "bench", "anchors", "posteriordb"),
                    help="the folder of numpyro_fit.py")
    ap.add_argument("--python", default=os.path.join(ROOT, "..", ".venv-anchors", "bin", "python"),
                    help="the anchors' interpreter")
    a, passthrough = ap.parse_known_args()
    a.vinf = os.path.abspath(a.vinf)
    a.anchors = os.path.abspath(a.anchors)
    if not os.access(a.vinf, os.X_OK):
        sys.exit(f"{a.vinf} not found: build it with `cargo build --release` or pass --vinf PATH")
    if a.numpyro and not os.path.exists(os.path.join(a.anchors, "numpyro_fit.py")):
        sys.exit(f"--numpyro: no numpyro_fit.py in {a.anchors} (pass --anchors DIR)")
    names = list(MODELS)
    if a.only:
        names = [n.strip() for n in a.only.split(",") if n.strip()]
        unknown = [n for n in names if n not in MODELS]
        if unknown:
            sys.exit(f"unknown model(s) {', '.join(unknown)}; known: {', '.join(MODELS)}")
    refs = json.load(open(os.path.join(MODELS_DIR, "reference.json")))

    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        out_root = os.path.abspath(a.keep) if a.keep else tmp
        for name in names:
            params = refs[MODELS[name]]["params"]
            vi = run_vi(name, params, a, passthrough, out_root)
            results[name] = dict(vi=vi)
            print(f"{name}: vi {fmt_err(vi)}, sd {fmt_sd(vi)}, {fmt_num(vi.get('wall_s'))} s",
                  file=sys.stderr, flush=True)
            if a.numpyro and name not in CENTRED_VARIANTS:
                npy = run_numpyro(name, a)
                results[name]["numpyro"] = npy
                print(f"{name}: numpyro {fmt_err(npy)}, sd {fmt_sd(npy)}, {fmt_num(npy.get('wall_s'))} s",
                      file=sys.stderr, flush=True)

    flags = " ".join(passthrough) or "defaults"
    print(f"\n## posteriordb: vinf fit ({flags}), {a.draws} draws"
          + (f"; NumPyro {a.numpyro_config}" if a.numpyro else "") + "\n")
    head = ["model", "vi max mean err (worst param)", "vi sd ratio range", "vi k-hat",
            "vi status/trust", "vi wall s", "vi steps", "vi grad evals"]
    if a.numpyro:
        head += ["NumPyro max err", "NumPyro sd range", "NumPyro wall s"]
    row(head)
    row(["---"] * len(head))
    for name in names:
        cells = [name] + vi_cells(results[name]["vi"])
        if a.numpyro:
            npy = results[name].get("numpyro")
            cells += [fmt_err(npy), fmt_sd(npy), fmt_num(npy.get("wall_s") if npy else None)]
        row(cells)
    for name in names:
        vi = results[name]["vi"]
        if vi.get("panic"):
            print(f"\n{name}: vinf panicked:\n{vi['panic']}")
        elif vi.get("error"):
            print(f"\n{name}: {vi['error']}" + (f"\n{vi['stderr']}" if vi.get("stderr") else ""))

    if a.json:
        with open(a.json, "w") as f:
            json.dump(dict(vinf=a.vinf, fit_flags=passthrough, draws=a.draws,
                           numpyro_config=a.numpyro_config if a.numpyro else None,
                           models=results), f, indent=1)


if __name__ == "__main__":
    main()
