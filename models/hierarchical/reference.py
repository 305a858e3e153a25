#!/usr/bin/env python3
"""Data and a reference posterior for models/hierarchical/varying_slopes.vi.

Simulates 20 groups of 15 points from known values (fixed seed), writes the CSVs beside the
model, and runs NumPyro NUTS on the same model with the same priors (4 chains x 4000 draws after
2000 warm-up, target acceptance 0.95). Writes reference.json: per parameter its mean, sd, and
the chains' max R-hat and divergence count. The CSVs and reference.json are committed; run this
again only to change them (it needs numpyro, e.g. the anchors venv):

    /work/.venv-anchors/bin/python models/hierarchical/reference.py
"""

import json
import os

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def simulate(J=20, n=15, mu=(1.0, -0.5), tau=(0.8, 0.5), rho=0.6, sigma=0.7, seed=5):
    rng = np.random.default_rng(seed)
    omega = np.array([[1.0, rho], [rho, 1.0]])
    cov = np.diag(tau) @ omega @ np.diag(tau)
    beta = rng.multivariate_normal(mu, cov, size=J)
    g = np.repeat(np.arange(J), n)
    x = rng.normal(size=J * n)
    y = beta[g, 0] + beta[g, 1] * x + sigma * rng.normal(size=J * n)
    return {"y": y, "x": x, "g": g + 1}, J


def main():
    import jax
    import jax.numpy as jnp
    import numpyro
    import numpyro.distributions as dist
    from numpyro.infer import MCMC, NUTS

    jax.config.update("jax_enable_x64", True)
    cols, J = simulate()
    with open(os.path.join(HERE, "data", "varying_slopes.csv"), "w") as f:
        f.write("y,x,g\n")
        for y, x, g in zip(cols["y"], cols["x"], cols["g"]):
            f.write(f"{float(y)!r},{float(x)!r},{int(g)}\n")
    with open(os.path.join(HERE, "data", "varying_slopes_scalars.csv"), "w") as f:
        f.write(f"J\n{J}\n")

    def model(y, x, g):
        L = numpyro.sample("L", dist.LKJCholesky(2, 2.0))
        mu = numpyro.sample("mu", dist.Normal(0, 5).expand([2]))
        tau = numpyro.sample("tau", dist.HalfNormal(1).expand([2]))
        sigma = numpyro.sample("sigma", dist.HalfNormal(1))
        z = numpyro.sample("z", dist.Normal(0, 1).expand([J, 2]))
        beta = mu + z @ (tau[:, None] * L).T
        numpyro.deterministic("rho", (L @ L.T)[0, 1])
        numpyro.sample("y", dist.Normal(beta[g, 0] + beta[g, 1] * x, sigma), obs=y)

    mcmc = MCMC(NUTS(model, target_accept_prob=0.95), num_warmup=2000, num_samples=4000,
                num_chains=4, chain_method="sequential", progress_bar=False)
    mcmc.run(jax.random.PRNGKey(0), jnp.array(cols["y"]), jnp.array(cols["x"]),
             jnp.array(cols["g"] - 1))
    draws = mcmc.get_samples(group_by_chain=True)
    divergences = int(mcmc.get_extra_fields()["diverging"].sum())
    out = {}
    from numpyro.diagnostics import split_gelman_rubin

    def put(name, d):
        out[name] = {"mean": float(d.mean()), "sd": float(d.std()),
                     "rhat": float(split_gelman_rubin(np.asarray(d)))}

    for k in range(2):
        put(f"mu[{k}]", draws["mu"][..., k])
        put(f"tau[{k}]", draws["tau"][..., k])
    put("sigma", draws["sigma"])
    put("Omega[0,1]", draws["rho"])
    ref = {"varying_slopes": {"draws": 4 * 4000, "divergences": divergences, "params": out}}
    with open(os.path.join(HERE, "reference.json"), "w") as f:
        json.dump(ref, f, indent=1)
        f.write("\n")
    print(json.dumps(ref, indent=1))


if __name__ == "__main__":
    main()
