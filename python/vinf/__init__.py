"""Fit `.vi` models from Python.

    import vinf
    fit = vinf.fit("models/eight_schools.vi")                  # a path, or the model text
    fit = vinf.fit(src, data={"y": y, "sigma": s}, steps=5000)  # numpy arrays, every setting
    fit.summary()          # a pandas DataFrame (a dict without pandas)
    fit.draws(1000)        # {name: array (draws, *shape)}
    fit.to_arviz()         # ArviZ InferenceData: posterior, posterior_predictive,
                           # log_likelihood, observed_data
    fit.diagnostics        # status, trust, k-hat, importance-weighted bound

`vinf.check(model)` raises `vinf.ModelError` (its message is the rendered diagnostic, its
`.diagnostics` the same as dicts) or returns the checker's summary. The GIL is released while
fitting; Ctrl-C stops a fit and raises KeyboardInterrupt.
"""

import json
import os
import tempfile

import numpy as np

from . import _vinf

__all__ = ["fit", "check", "Fit", "ModelError"]
__version__ = "0.1.0"


class ModelError(Exception):
    """A problem with a model or its data: the message is the rendered diagnostic."""

    def __init__(self, message, diagnostics=()):
        super().__init__(message)
        self.diagnostics = list(diagnostics)


def _model(model):
    """(text, path) of a model given as a path or as its text (path None: diagnostics call it
    `<model text>`)."""
    if isinstance(model, os.PathLike) or (isinstance(model, str) and "\n" not in model
                                           and model.endswith(".vi")):
        path = os.fspath(model)
        with open(path, encoding="utf-8") as f:
            return f.read(), os.path.abspath(path)
    return str(model), None


def _bindings(data, folder):
    """(name, file, label, stand_in) for each entry of `data`: paths as given, arrays (numpy,
    lists, pandas) saved as .npy stand-ins. Diagnostics name each by its label, `data['y']`,
    never by the temporary file."""
    out = []
    for name, value in (data or {}).items():
        label = f"data[{name!r}]"
        name = str(name)
        if isinstance(value, (str, os.PathLike)):
            out.append((name, os.fspath(value), label, False))
            continue
        a = np.asarray(value, dtype=np.float64)
        path = os.path.join(folder, f"{len(out)}.npy")
        np.save(path, a if a.ndim else a.reshape(1))
        out.append((name, path, label, True))
    return out


def _call(f, *args):
    try:
        return f(*args)
    except _vinf.ModelError as e:
        raise ModelError(str(e), [json.loads(d) for d in getattr(e, "diagnostics_json", [])]) from None


def check(model, data=None):
    """Check a model (a path or its text) against its data: the checker's summary (with any
    warnings after it), or ModelError."""
    text, path = _model(model)
    with tempfile.TemporaryDirectory() as d:
        summary, warnings = _call(_vinf.check, text, path, _bindings(data, d))
    return summary + "".join("\n" + w for w in warnings)


def fit(model, data=None, **settings):
    """Fit a model (a path or its text). `data` maps names to arrays or file paths; every fit
    setting is a keyword (`method`, `steps`, `lr`, `guide`, `seed`, ... as in `fit { }`)."""
    text, path = _model(model)
    with tempfile.TemporaryDirectory() as d:
        native = _call(_vinf.fit, text, path, _bindings(data, d), list(settings.items()))
    return Fit(native)


def _shaped(values, n, shape):
    return np.asarray(values, dtype=np.float64).reshape((n, *shape))


class Fit:
    """A fitted model."""

    def __init__(self, native):
        self._native = native
        self.result = json.loads(native.summary_json())
        keys = ["status", "converged", "trust", "method", "psis_khat", "psis_reading",
                "iw_bound", "elbo", "iterations", "reasons", "escalation", "noncentred"]
        self.diagnostics = {k: self.result.get(k) for k in keys}

    def __repr__(self):
        d = self.diagnostics
        return (f"<vinf.Fit {self.result.get('model')}: {d['method']}, {d['status']}, trust "
                f"{d['trust']}, ELBO {d['elbo']:.4f}>")

    def report(self):
        """What `vinf fit` prints: how each latent is fitted, the status, the warnings."""
        return "\n".join(self._native.report())

    def summary(self):
        """Per element of every latent and derived quantity: mean, sd, 5% and 95% quantiles
        (and the PSIS-weighted mean); for categorical latents also the most likely category
        and its probability (`most_likely`, `probability`). A pandas DataFrame when pandas is
        installed."""
        rows = []
        for group in ("latents", "derived"):
            for name, s in self.result.get(group, {}).items():
                shape = s.get("shape", [])
                for i, mean in enumerate(s.get("mean", [])):
                    idx = np.unravel_index(i, shape) if shape else ()
                    label = name + ("[" + ", ".join(map(str, idx)) + "]" if shape else "")
                    row = {"name": label, "mean": mean, "sd": s["sd"][i], "q05": s["q05"][i],
                           "q95": s["q95"][i], "derived": group == "derived"}
                    if "psis_mean" in s:
                        row["psis_mean"] = s["psis_mean"][i]
                    if "most_likely" in s:
                        row["most_likely"] = s["most_likely"][i]
                        row["probability"] = s["probability"][i]
                    rows.append(row)
        try:
            import pandas as pd
        except ImportError:
            return rows
        return pd.DataFrame(rows).set_index("name")

    def draws(self, n=1000, seed=0, kinds=("latent", "derived")):
        """{name: array of shape (n, *shape)} for the latents and derived quantities (add
        "predictive" to `kinds` for the replicated data)."""
        out = {}
        for name, kind, shape, values in _call(self._native.draws, n, seed):
            if kind in kinds:
                out[name] = _shaped(values, n, shape)
        return out

    def to_arviz(self, n=1000, seed=0):
        """An ArviZ InferenceData: `posterior` (one chain of `n` draws, latents and derived
        quantities), `posterior_predictive` (replicates of every observed variable),
        `log_likelihood` (pointwise, at another `n` draws of q, as `vinf loo` computes it) and
        `observed_data`."""
        import arviz as az

        posterior, predictive = {}, {}
        for name, kind, shape, values in _call(self._native.draws, n, seed):
            a = _shaped(values, n, shape)[None]
            (predictive if kind == "predictive" else posterior)[name] = a
        observed = {name: np.asarray(v).reshape(shape) for name, shape, v in self._native.observed()}
        log_lik = {}
        try:
            names, columns = _call(self._native.log_likelihood, n, seed + 1)
        except ModelError:
            names, columns = [], []
        for name, col in zip(names, columns):
            var = name.split("[")[0]
            log_lik.setdefault(var, []).append(col)
        log_lik = {k: np.stack(v, axis=-1)[None] for k, v in log_lik.items()}
        # Observed arrays and their log-likelihoods share the observation axis.
        for k, v in log_lik.items():
            if k in observed and observed[k].size == v.shape[-1]:
                log_lik[k] = v.reshape((1, n, *observed[k].shape))
        return az.from_dict(posterior=posterior, posterior_predictive=predictive or None,
                            log_likelihood=log_lik or None, observed_data=observed or None)
