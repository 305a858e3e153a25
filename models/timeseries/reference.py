#!/usr/bin/env python3
"""Data and reference posteriors for the time-series example models (models/timeseries/).

Simulates each series from known parameters (fixed seeds), writes it as CSV beside the model,
and runs NumPyro NUTS on the same model with the same priors (4 chains x 5000 draws after
5000 warm-up, target acceptance 0.95). Writes reference.json: per model and parameter its
mean, sd, and the chains' max R-hat and divergence count. The CSVs and reference.json are
committed; run this again only to change them (it needs numpyro, e.g. the anchors venv:
../shared/bench/anchors/setup.sh):

    /work/.venv-anchors/bin/python models/timeseries/reference.py
"""

import json
import os

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def simulate_arma11(T=200, mu=0.5, phi=0.6, theta=0.3, sigma=1.0, seed=11):
    rng = np.random.default_rng(seed)
    eps = rng.normal(0, sigma, T)
    y = np.empty(T)
    y[0] = mu + phi * mu + eps[0]
    for t in range(1, T):
        y[t] = mu + phi * y[t - 1] + theta * eps[t - 1] + eps[t]
    return {"y": y}


def simulate_sv(T=100, mu=-1.0, phi=0.9, sigma=0.3, seed=7):
    rng = np.random.default_rng(seed)
    h = np.empty(T)
    h[0] = mu + sigma / np.sqrt(1 - phi**2) * rng.normal()
    for t in range(1, T):
        h[t] = mu + phi * (h[t - 1] - mu) + sigma * rng.normal()
    return {"y": np.exp(h / 2) * rng.normal(size=T)}


def write_csv(name, cols):
    keys = list(cols)
    with open(os.path.join(HERE, "data", f"{name}.csv"), "w") as f:
        f.write(",".join(keys) + "\n")
        for row in zip(*(cols[k] for k in keys)):
            f.write(",".join(repr(float(v)) for v in row) + "\n")


def models():
    import jax.numpy as jnp
    from jax import lax
    import numpyro
    import numpyro.distributions as dist

    def arma11(y):
        mu = numpyro.sample("mu", dist.Normal(0, 10))
        phi = numpyro.sample("phi", dist.Uniform(-1, 1))
        theta = numpyro.sample("theta", dist.Uniform(-1, 1))
        sigma = numpyro.sample("sigma", dist.HalfCauchy(5))

        def step(nu_prev, y_prev):
            nu = mu + phi * y_prev + theta * (y_prev - nu_prev)
            return nu, nu

        nu0 = mu + phi * mu
        _, rest = lax.scan(step, nu0, jnp.asarray(y[:-1]))
        nu = jnp.concatenate([jnp.array([nu0]), rest])
        numpyro.sample("obs", dist.Normal(nu, sigma), obs=y)

    def sv(y):
        mu = numpyro.sample("mu", dist.Cauchy(0, 10))
        phi = numpyro.sample("phi", dist.Uniform(-1, 1))
        sigma = numpyro.sample("sigma", dist.HalfCauchy(5))
        h_std = numpyro.sample("h_std", dist.Normal(0, 1).expand([len(y)]).to_event(1))

        def step(h_prev, z):
            h = mu + phi * (h_prev - mu) + sigma * z
            return h, h

        h0 = mu + sigma * h_std[0] / jnp.sqrt(1 - phi**2)
        _, rest = lax.scan(step, h0, h_std[1:])
        h = numpyro.deterministic("h", jnp.concatenate([jnp.array([h0]), rest]))
        numpyro.sample("obs", dist.Normal(0, jnp.exp(h / 2)), obs=y)

    return {"arma11": (arma11, ["mu", "phi", "theta", "sigma"]),
            "stochastic_volatility": (sv, ["mu", "phi", "sigma", "h"])}


def main():
    import jax
    import numpyro
    from numpyro.infer import MCMC, NUTS
    from numpyro.diagnostics import split_gelman_rubin

    numpyro.set_host_device_count(4)
    os.makedirs(os.path.join(HERE, "data"), exist_ok=True)
    data = {"arma11": simulate_arma11(), "stochastic_volatility": simulate_sv()}
    refs = {}
    for name, (model, sites) in models().items():
        write_csv(name, data[name])
        mcmc = MCMC(NUTS(model, target_accept_prob=0.95), num_warmup=5000, num_samples=5000,
                    num_chains=4, progress_bar=False)
        mcmc.run(jax.random.PRNGKey(0), y=np.asarray(data[name]["y"]), extra_fields=("diverging",))
        draws = mcmc.get_samples(group_by_chain=True)
        divergences = int(np.asarray(mcmc.get_extra_fields()["diverging"]).sum())
        params = {}
        rhat = 1.0
        for s in sites:
            x = np.asarray(draws[s])
            flat = x.reshape(x.shape[0] * x.shape[1], -1)
            r = np.atleast_1d(split_gelman_rubin(x))
            rhat = max(rhat, float(np.max(r)))
            for j in range(flat.shape[1]):
                key = s if x.ndim == 2 else f"{s}[{j + 1}]"
                params[key] = {"mean": float(flat[:, j].mean()), "sd": float(flat[:, j].std())}
        refs[name] = {"params": params, "max_rhat": rhat, "divergences": divergences,
                      "source": "NumPyro NUTS, 4 chains x 5000 draws (models/timeseries/reference.py)"}
        print(name, f"max R-hat {rhat:.4f}, {divergences} divergences")
    with open(os.path.join(HERE, "reference.json"), "w") as f:
        json.dump(refs, f, indent=1)


if __name__ == "__main__":
    main()
