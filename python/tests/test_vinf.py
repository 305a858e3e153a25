"""The Python module end to end: data as numpy arrays, settings as keywords, exact conjugate
answers, ArviZ round trips, diagnostics as exceptions, and Ctrl-C. Run by tests/python.rs
(`cargo test`) with the venv that .ci/run makes; by hand: `pip install ./python` then
`pytest python/tests`."""

import _thread
import os
import threading
import time

import numpy as np
import pytest

import vinf

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COIN = """
data y: binary[N]
p ~ Beta(2, 3)
for i in 1..N {
    y[i] ~ Bernoulli(p)
}
"""


def test_a_conjugate_fit_from_numpy_data_is_exact():
    y = np.array([1, 0, 1, 1, 1, 0, 1, 1, 0, 1])
    fit = vinf.fit(COIN, data={"y": y})
    assert fit.diagnostics["method"] == "cavi"
    assert fit.diagnostics["status"] == "converged"
    a, b = 2 + y.sum(), 3 + len(y) - y.sum()
    s = fit.summary()
    assert abs(s.loc["p", "mean"] - a / (a + b)) < 1e-9
    sd = np.sqrt(a * b / ((a + b) ** 2 * (a + b + 1)))
    assert abs(s.loc["p", "sd"] - sd) < 1e-9
    draws = fit.draws(4000)["p"]
    assert draws.shape == (4000,)
    assert abs(draws.mean() - a / (a + b)) < 0.01


def test_settings_are_keywords_and_bad_ones_are_errors():
    path = os.path.join(ROOT, "models", "eight_schools.vi")
    fit = vinf.fit(path, steps=300, seed=3, guide="full-rank")
    assert fit.diagnostics["iterations"] <= 300
    assert fit.draws(10)["theta_tilde"].shape == (10, 8)
    with pytest.raises(ValueError, match="stepz"):
        vinf.fit(path, stepz=10)
    with pytest.raises(ValueError, match="lr"):
        vinf.fit(path, lr=-1)


def test_eight_schools_to_arviz():
    import arviz as az
    import matplotlib

    matplotlib.use("Agg")
    y = np.array([28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0])
    sigma = np.array([15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0])
    src = open(os.path.join(ROOT, "models", "eight_schools.vi")).read()
    src = src.replace(' from "data/eight_schools.csv"', "")
    fit = vinf.fit(src, data={"y": y, "sigma": sigma})
    # NUTS reference (posteriordb): mu 4.4 ± 3.3, tau 3.6 ± 3.2.
    s = fit.summary()
    assert abs(s.loc["mu", "mean"] - 4.4) < 0.5 * 3.3
    idata = fit.to_arviz(500)
    for group in ("posterior", "posterior_predictive", "log_likelihood", "observed_data"):
        assert hasattr(idata, group), group
    assert idata.posterior["theta_tilde"].shape == (1, 500, 8)
    assert idata.posterior_predictive["y"].shape == (1, 500, 8)
    assert idata.log_likelihood["y"].shape == (1, 500, 8)
    np.testing.assert_allclose(idata.observed_data["y"].values, y)
    table = az.summary(idata, var_names=["mu", "tau"], kind="stats")
    assert abs(table.loc["mu", "mean"] - s.loc["mu", "mean"]) < 0.6
    axes = az.plot_posterior(idata, var_names=["mu"])
    assert axes is not None
    loo = az.loo(idata)
    assert np.isfinite(loo.elpd_loo)


def test_categorical_latents_are_summarised_by_their_probabilities():
    fit = vinf.fit(os.path.join(ROOT, "models", "gmm.vi"))
    table = fit.summary()
    c0 = table.loc["c[0]"]
    assert c0["most_likely"] == 2 and c0["probability"] > 0.99
    assert np.isnan(table.loc["mu[0]"]["probability"])


def test_model_errors_carry_the_diagnostic():
    with pytest.raises(vinf.ModelError) as e:
        vinf.check("mu ~ Normal(0, 1)\nx ~ Normal(mu, mu)\n")
    assert "help:" in str(e.value)
    d = e.value.diagnostics[0]
    assert d["code"].startswith("vi::")
    primary = [l for l in d["labels"] if l["primary"]][0]
    assert primary["line"] == 2
    assert "checks" in vinf.check(COIN)


POSITIVE = """
data y: positive[N]
mu ~ Normal(0, 1)
for i in 1..N {
    y[i] ~ LogNormal(mu, 1)
}
"""


def _model_error(*args, **kwargs):
    with pytest.raises(vinf.ModelError) as e:
        vinf.check(*args, **kwargs)
    text = str(e.value)
    # Nothing the user never gave: no temporary file, no command line, no invented model path.
    # (The checker's help for a 2-D array bound to a vector still suggests `--data y=PATH:NAME`.)
    for never in (".npy", "command line", "model.vi", os.getcwd()):
        assert never not in text, (never, text)
    return text


def test_a_bad_array_is_named_by_its_keyword():
    text = _model_error(POSITIVE, data={"y": np.array([1.0, np.nan, 2.0])})
    assert "row 2 (index 1) of `data['y']` is NaN" in text and "--data" not in text
    text = _model_error(POSITIVE, data={"y": np.ones((3, 2))})
    assert "data['y']" in text and "[3, 2]" in text
    text = _model_error(POSITIVE, data={"y": [1.0, -1.0]})
    assert "comes from data['y']" in text
    text = _model_error(POSITIVE, data={"y": [1.0], "extra": [2.0]})
    assert "the model declares no data `extra`" in text and "--data" not in text


def test_a_data_file_is_named_as_given(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "y.csv").write_text("y\n1\nnan\n")
    text = _model_error(POSITIVE, data={"y": "y.csv"})
    assert "y.csv" in text and str(tmp_path) not in text


def test_model_text_is_named_model_text():
    with pytest.raises(vinf.ModelError) as e:
        vinf.check("mu ~ Normal(0, 1)\nx ~ Normal(mu, mu)\n")
    text = str(e.value)
    assert "<model text>" in text
    assert "model.vi" not in text and os.getcwd() not in text


def test_ctrl_c_interrupts_a_fit():
    path = os.path.join(ROOT, "models", "eight_schools.vi")
    timer = threading.Timer(1.0, _thread.interrupt_main)
    start = time.time()
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        vinf.fit(path, steps=10_000_000, tol=0, init="origin")
    assert time.time() - start < 30


def _sample_eight_schools(tmp_path, *sample_args):
    """Fit eight schools with the command line that cargo test built (VINF_BIN) and run
    `vinf sample --from` that fit with `sample_args`; returns the fit's folder."""
    import subprocess

    vinf_bin = os.environ.get("VINF_BIN")
    if not vinf_bin:
        pytest.skip("VINF_BIN is not set (tests/python.rs sets it)")
    model = os.path.join(ROOT, "models", "eight_schools.vi")
    out = tmp_path / "fit"
    subprocess.run([vinf_bin, "fit", model, "--out", str(out)], check=True, capture_output=True)
    subprocess.run([vinf_bin, "sample", model, "--from", str(out), *sample_args], check=True,
                   capture_output=True)
    return out


def test_cmdstan_files_from_the_command_line_load_in_arviz(tmp_path):
    """`vinf sample --format cmdstan` in ArviZ."""
    import arviz as az

    csv = tmp_path / "draws.csv"
    _sample_eight_schools(tmp_path, "-n", "300", "--format", "cmdstan", "--out", str(csv))
    idata = az.from_cmdstan(posterior=str(csv), posterior_predictive=["y_rep"])
    assert idata.posterior["theta_tilde"].shape == (1, 300, 8)
    assert idata.posterior_predictive["y_rep"].shape == (1, 300, 8)
    table = az.summary(idata, var_names=["mu", "tau"], kind="stats")
    assert abs(table.loc["mu", "mean"] - 4.4) < 0.5 * 3.3


def test_zarr_stores_from_the_command_line_load_in_arviz(tmp_path):
    """`vinf sample --format zarr`: an InferenceData store with the posterior, the replicates,
    the pointwise log-likelihood (so `az.loo` runs) and the observed data."""
    import arviz as az
    import xarray as xr

    out = _sample_eight_schools(tmp_path, "-n", "400", "--format", "zarr")
    tree = xr.open_datatree(str(out / "samples.zarr"), engine="zarr")
    # ArviZ 0.x takes the tree into an InferenceData; ArviZ 1.x works on the tree itself.
    idata = az.InferenceData.from_datatree(tree) if hasattr(az, "InferenceData") else tree
    assert idata.posterior["theta_tilde"].shape == (1, 400, 8)
    assert list(idata.posterior["draw"].values[:3]) == [0, 1, 2]
    assert idata.posterior_predictive["y"].dims == ("chain", "draw", "y_dim_0")
    assert idata.observed_data["y"].dims == ("y_dim_0",)
    assert list(idata.observed_data["y"].values) == [28, 8, -3, 7, -1, 1, 18, 12]
    table = az.summary(idata, var_names=["mu", "tau"], kind="stats")
    assert abs(table.loc["mu", "mean"] - 4.4) < 0.5 * 3.3
    loo = az.loo(idata)
    # The reference elpd_loo of eight schools is about -30.7 (PSIS-LOO on NUTS draws).
    assert -33 < float(loo["elpd_loo"]) < -29
