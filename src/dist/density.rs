//! Log densities, reparameterised draws and closed-form KL divergences, on backend values.
//!
//! Every function takes parameter values and a value already laid out by the evaluator and
//! returns one log density per draw: the event axes (a Dirichlet's categories, a multivariate
//! Normal's dimensions) are summed, the batch axes kept.

use std::f64::consts::PI;

use crate::backend::Session;
use crate::dist::{Family, Parameterization};
use crate::graph::{MapFn, ZipFn};
use crate::interpret::{expand, joint_layout, map, sum_shape, zip, Layout, Value};

const LN_2PI: f64 = 1.837_877_066_409_345_5;

fn c(s: &Session, x: f64) -> Value {
    Value::new(s.scalar(x), Layout::scalar())
}

fn add(s: &mut Session, a: &Value, b: &Value) -> Value {
    zip(s, ZipFn::Add, a, b)
}
fn sub(s: &mut Session, a: &Value, b: &Value) -> Value {
    zip(s, ZipFn::Sub, a, b)
}
fn mul(s: &mut Session, a: &Value, b: &Value) -> Value {
    zip(s, ZipFn::Mul, a, b)
}
fn div(s: &mut Session, a: &Value, b: &Value) -> Value {
    zip(s, ZipFn::Div, a, b)
}
fn ln(s: &mut Session, a: &Value) -> Value {
    map(s, MapFn::Log, a)
}
fn lgamma(s: &mut Session, a: &Value) -> Value {
    map(s, MapFn::LGamma, a)
}
fn scale(s: &mut Session, a: &Value, k: f64) -> Value {
    Value::new(s.scale(&a.arr, k), a.lay.clone())
}
fn shift(s: &mut Session, a: &Value, k: f64) -> Value {
    Value::new(s.shift(&a.arr, k), a.lay.clone())
}

/// Sum the last `k` value axes.
fn sum_last(s: &mut Session, v: &Value, k: usize) -> Value {
    if k == 0 {
        return v.clone();
    }
    let dims = v.lay.dims();
    let n = dims.len();
    let arr = s.sum_axes(&v.arr, n - k, n);
    let mut lay = v.lay.clone();
    lay.shape.truncate(lay.shape.len() - k);
    Value::new(arr, lay)
}

/// log LKJ(L L' | η) on Cholesky factors L ([..., K, K]), as Stan's `lkj_corr_cholesky` and
/// NumPyro's `LKJCholesky`: Σ_{i≥1} (K − i − 3 + 2η) ln L_ii (0-based rows) minus the
/// normaliser ½(K−1) ln π + ln Γ_{K−1}(α − ½) − (K−1) ln Γ(α), α = η + (K−1)/2.
fn lkj_cholesky_lp(s: &mut Session, eta: &Value, x: &Value) -> Value {
    let k = *x.lay.shape.last().expect("a matrix");
    let rows = x.arr.len() / (k * k).max(1);
    // The diagonal, by a 0/1 selection (the other entries may be ≤ 0, so no log of them).
    let mut sel = vec![0.0; k * k * k];
    for i in 0..k {
        sel[i * k * k + i * k + i] = 1.0;
    }
    let sel = s.array(&sel, &[k, k * k]);
    let diag = s.matmul_t(&x.arr.reshaped(&[rows, k * k]), &sel);
    let mut lay = x.lay.clone();
    lay.shape.pop();
    let diag = Value::new(diag.reshaped(&lay.dims()), lay);
    let log_diag = ln(s, &diag);
    // L_00 = 1, so row 0 adds nothing whatever its weight.
    let w: Vec<f64> = (0..k).map(|i| k as f64 - i as f64 - 3.0).collect();
    let w = Value::new(s.array(&w, &[k]), Layout::of_shape(vec![k]));
    let fixed = mul(s, &log_diag, &w);
    let fixed = sum_last(s, &fixed, 1);
    let total_log_diag = sum_last(s, &log_diag, 1);
    let two_eta = scale(s, eta, 2.0);
    let by_eta = mul(s, &two_eta, &total_log_diag);
    let unnormalised = add(s, &fixed, &by_eta);
    if k < 2 {
        return unnormalised;
    }
    let dm1 = (k - 1) as f64;
    let alpha = shift(s, eta, 0.5 * dm1);
    // ln Γ_d(a) = d(d−1)/4 ln π + Σ_{j<d} ln Γ(a − j/2), at a = α − ½.
    let mut norm = c(s, 0.5 * dm1 * PI.ln() + dm1 * (dm1 - 1.0) / 4.0 * PI.ln());
    for j in 0..k - 1 {
        let a = shift(s, &alpha, -0.5 - 0.5 * j as f64);
        let g = lgamma(s, &a);
        norm = add(s, &norm, &g);
    }
    let ga = lgamma(s, &alpha);
    let ga = scale(s, &ga, dm1);
    let norm = sub(s, &norm, &ga);
    sub(s, &unnormalised, &norm)
}

/// One-hot encode integer values (host-known: data or constants) along a new last axis of
/// length `k`.
pub fn one_hot(s: &mut Session, x: &Value, k: usize) -> Value {
    let vals = s.values(&x.arr);
    let mut out = vec![0.0; vals.len() * k];
    for (i, v) in vals.iter().enumerate() {
        let j = (v.round().max(0.0) as usize).min(k - 1);
        out[i * k + j] = 1.0;
    }
    let mut lay = x.lay.clone();
    lay.shape.push(k);
    Value::new(s.array(&out, &lay.dims()), lay)
}

/// `a`'s entry at category `x` along its last axis, per element of their joint layout
/// (categories outside 0..k clamped, as [`one_hot`] does): a gather of one value per element,
/// where a one-hot product would build and multiply one per category.
fn pick_last(s: &mut Session, a: &Value, x: &Value) -> Value {
    let k = *a.lay.shape.last().expect("a vector per element");
    let mut xk = x.lay.clone();
    xk.shape.push(k);
    let joint = joint_layout(&xk, &a.lay);
    let a = expand(s, a, &joint);
    let mut lay = joint;
    lay.shape.pop();
    let x = expand(s, x, &lay);
    let picks: Vec<usize> = s
        .values(&x.arr)
        .iter()
        .enumerate()
        .map(|(i, c)| i * k + (c.round().max(0.0) as usize).min(k - 1))
        .collect();
    let arr = s.gather(&a.arr, &picks, &lay.dims());
    Value::new(arr, lay)
}

/// log p(x | params) for one family, summed over its event axes.
pub fn log_prob(s: &mut Session, family: Family, pz: Parameterization, args: &[Value], x: &Value) -> Value {
    use Family::*;
    match (family, pz) {
        (Normal, Parameterization::Precision) => {
            // ½ ln τ − ½ ln 2π − ½ τ (x − μ)²
            let d = sub(s, x, &args[0]);
            let d2 = map(s, MapFn::Square, &d);
            let q = mul(s, &args[1], &d2);
            let lt = ln(s, &args[1]);
            let r = sub(s, &lt, &q);
            let r = scale(s, &r, 0.5);
            shift(s, &r, -0.5 * LN_2PI)
        }
        (Normal, Parameterization::Variance) => {
            // −½ ln v − ½ ln 2π − ½ (x − μ)² / v
            let d = sub(s, x, &args[0]);
            let d2 = map(s, MapFn::Square, &d);
            let q = div(s, &d2, &args[1]);
            let lv = ln(s, &args[1]);
            let r = add(s, &lv, &q);
            let r = scale(s, &r, -0.5);
            shift(s, &r, -0.5 * LN_2PI)
        }
        (Normal, _) => normal_lp(s, x, &args[0], &args[1]),
        (LogNormal, _) => {
            let lx = ln(s, x);
            let lp = normal_lp(s, &lx, &args[0], &args[1]);
            sub(s, &lp, &lx)
        }
        (HalfNormal, _) => {
            let zero = c(s, 0.0);
            let lp = normal_lp(s, x, &zero, &args[0]);
            shift(s, &lp, 2f64.ln())
        }
        (Gamma, _) => {
            // α ln β − lgamma(α) + (α − 1) ln x − β x
            let (a, b) = (&args[0], &args[1]);
            let lb = ln(s, b);
            let t1 = mul(s, a, &lb);
            let lga = lgamma(s, a);
            let lx = ln(s, x);
            let am1 = shift(s, a, -1.0);
            let t3 = mul(s, &am1, &lx);
            let bx = mul(s, b, x);
            let r = sub(s, &t1, &lga);
            let r = add(s, &r, &t3);
            sub(s, &r, &bx)
        }
        (InverseGamma, _) => {
            // α ln β − lgamma(α) − (α + 1) ln x − β / x
            let (a, b) = (&args[0], &args[1]);
            let lb = ln(s, b);
            let t1 = mul(s, a, &lb);
            let lga = lgamma(s, a);
            let lx = ln(s, x);
            let ap1 = shift(s, a, 1.0);
            let t3 = mul(s, &ap1, &lx);
            let bx = div(s, b, x);
            let r = sub(s, &t1, &lga);
            let r = sub(s, &r, &t3);
            sub(s, &r, &bx)
        }
        (Exponential, _) => {
            let ll = ln(s, &args[0]);
            let lx = mul(s, &args[0], x);
            sub(s, &ll, &lx)
        }
        (Beta, _) => {
            let (a, b) = (&args[0], &args[1]);
            let lx = ln(s, x);
            let l1x = map(s, MapFn::Log1m, x);
            let am1 = shift(s, a, -1.0);
            let bm1 = shift(s, b, -1.0);
            let t1 = mul(s, &am1, &lx);
            let t2 = mul(s, &bm1, &l1x);
            let lbeta = log_beta(s, a, b);
            let r = add(s, &t1, &t2);
            sub(s, &r, &lbeta)
        }
        (Uniform, _) => {
            let w = sub(s, &args[1], &args[0]);
            let lw = ln(s, &w);
            let lw = expand(s, &lw, &joint_layout(&lw.lay, &x.lay));
            scale(s, &lw, -1.0)
        }
        (StudentT, _) => {
            // lgamma((ν+1)/2) − lgamma(ν/2) − ½ ln(νπ) − ln σ − (ν+1)/2 ln(1 + z²/ν)
            let (nu, mu, sigma) = (&args[0], &args[1], &args[2]);
            let d = sub(s, x, mu);
            let z = div(s, &d, sigma);
            let z2 = map(s, MapFn::Square, &z);
            let z2n = div(s, &z2, nu);
            let l = map(s, MapFn::Log1p, &z2n);
            let np1h = shift(s, nu, 1.0);
            let np1h = scale(s, &np1h, 0.5);
            let t = mul(s, &np1h, &l);
            let g1 = lgamma(s, &np1h);
            let nh = scale(s, nu, 0.5);
            let g2 = lgamma(s, &nh);
            let lnu = ln(s, nu);
            let lnu = scale(s, &lnu, 0.5);
            let ls = ln(s, sigma);
            let r = sub(s, &g1, &g2);
            let r = sub(s, &r, &lnu);
            let r = sub(s, &r, &ls);
            let r = sub(s, &r, &t);
            shift(s, &r, -0.5 * PI.ln())
        }
        (Cauchy, _) => cauchy_lp(s, x, Some(&args[0]), &args[1], 0.0),
        (HalfCauchy, _) => cauchy_lp(s, x, None, &args[0], 2f64.ln()),
        (Laplace, _) => {
            let d = sub(s, x, &args[0]);
            let ad = map(s, MapFn::Abs, &d);
            let q = div(s, &ad, &args[1]);
            let lb = ln(s, &args[1]);
            let r = add(s, &q, &lb);
            let r = scale(s, &r, -1.0);
            shift(s, &r, -2f64.ln())
        }
        (Dirichlet, _) => {
            // Σ (α−1) ln x − Σ lgamma(α) + lgamma(Σ α)
            let a = &args[0];
            let lx = ln(s, x);
            let am1 = shift(s, a, -1.0);
            let t = mul(s, &am1, &lx);
            let t = sum_last(s, &t, 1);
            let lga = lgamma(s, a);
            let lga = sum_last(s, &lga, 1);
            let sa = sum_last(s, a, 1);
            let lgs = lgamma(s, &sa);
            let r = sub(s, &t, &lga);
            add(s, &r, &lgs)
        }
        (MvNormal, _) => {
            unreachable!("MvNormal densities go through mv_normal_lp with a factorised covariance")
        }
        (Bernoulli, Parameterization::Logits) => {
            // x l − softplus(l)
            let xl = mul(s, x, &args[0]);
            let sp = map(s, MapFn::Softplus, &args[0]);
            sub(s, &xl, &sp)
        }
        (Bernoulli, _) => {
            let p = clamp_prob(s, &args[0]);
            let lp = ln(s, &p);
            let l1p = map(s, MapFn::Log1m, &p);
            let t1 = mul(s, x, &lp);
            let omx = scale(s, x, -1.0);
            let omx = shift(s, &omx, 1.0);
            let t2 = mul(s, &omx, &l1p);
            add(s, &t1, &t2)
        }
        (Binomial, pz) => {
            let n = &args[0];
            let (lp, l1p) = match pz {
                Parameterization::Logits => {
                    // ln p = −softplus(−l), ln(1 − p) = −softplus(l)
                    let nl = scale(s, &args[1], -1.0);
                    let a = map(s, MapFn::Softplus, &nl);
                    let b = map(s, MapFn::Softplus, &args[1]);
                    (scale(s, &a, -1.0), scale(s, &b, -1.0))
                }
                _ => {
                    let p = clamp_prob(s, &args[1]);
                    (ln(s, &p), map(s, MapFn::Log1m, &p))
                }
            };
            let nmx = sub(s, n, x);
            let t1 = mul(s, x, &lp);
            let t2 = mul(s, &nmx, &l1p);
            let choose = log_choose(s, n, x);
            let r = add(s, &t1, &t2);
            add(s, &r, &choose)
        }
        (Poisson, Parameterization::LogRate) => {
            // x η − exp(η) − lgamma(x + 1)
            let t = mul(s, x, &args[0]);
            let rate = map(s, MapFn::Exp, &args[0]);
            let t = sub(s, &t, &rate);
            let xp1 = shift(s, x, 1.0);
            let g = lgamma(s, &xp1);
            sub(s, &t, &g)
        }
        (Poisson, _) => {
            // x ln λ − λ − lgamma(x + 1)
            let ll = ln(s, &args[0]);
            let t = mul(s, x, &ll);
            let t = sub(s, &t, &args[0]);
            let xp1 = shift(s, x, 1.0);
            let g = lgamma(s, &xp1);
            sub(s, &t, &g)
        }
        (Categorical, pz) => match pz {
            Parameterization::Logits => {
                let logp = Value::new(s.softmax(&args[0].arr, true), args[0].lay.clone());
                pick_last(s, &logp, x)
            }
            // The chosen probabilities first, then their logs: one value per draw and member
            // rather than one per category.
            _ => {
                let p = pick_last(s, &args[0], x);
                let p = clamp_prob(s, &p);
                ln(s, &p)
            }
        },
        (Multinomial, _) => {
            // lgamma(n + 1) − Σ lgamma(x + 1) + Σ x ln p
            let p = clamp_prob(s, &args[1]);
            let lp = ln(s, &p);
            let t = mul(s, x, &lp);
            let t = sum_last(s, &t, 1);
            let xp1 = shift(s, x, 1.0);
            let g = lgamma(s, &xp1);
            let g = sum_last(s, &g, 1);
            let np1 = shift(s, &args[0], 1.0);
            let gn = lgamma(s, &np1);
            let r = sub(s, &gn, &g);
            add(s, &r, &t)
        }
        // An improper uniform density: constant, taken as 0 (its support is the bijection's).
        (Flat | HalfFlat, _) => scale(s, x, 0.0),
        (LkjCholesky, _) => lkj_cholesky_lp(s, &args[0], x),
        (Mixture, Parameterization::MixtureOf(c)) => {
            // log Σ_k w_k p_c(x | θ_k): x gains a trailing axis over the K components.
            let k = *args[0].lay.shape.last().expect("weights over the components");
            let mut lay = x.lay.clone();
            lay.shape.push(1);
            let x1 = Value::new(x.arr.reshaped(&lay.dims()), lay.clone());
            *lay.shape.last_mut().expect("pushed") = k;
            let xk = expand(s, &x1, &lay);
            let comp = log_prob(s, c, Parameterization::Standard, &args[1..], &xk);
            let w = clamp_prob(s, &args[0]);
            let lw = ln(s, &w);
            let t = add(s, &comp, &lw);
            let mut out = t.lay.clone();
            out.shape.pop();
            Value::new(s.logsumexp(&t.arr), out)
        }
        (HalfStudentT, _) => {
            // ln 2 + StudentT(x | ν, 0, σ)
            let zero = c(s, 0.0);
            let t = log_prob(
                s,
                StudentT,
                Parameterization::Standard,
                &[args[0].clone(), zero, args[1].clone()],
                x,
            );
            shift(s, &t, std::f64::consts::LN_2)
        }
        (NegativeBinomial, pz) => {
            // lgamma(x + φ) − lgamma(x + 1) − lgamma(φ) + φ ln(φ / (μ + φ)) + x ln(μ / (μ + φ)),
            // with ln μ given directly under `log_mu`.
            let phi = &args[1];
            let (mu, log_mu) = match pz {
                Parameterization::LogRate => (map(s, MapFn::Exp, &args[0]), args[0].clone()),
                _ => (args[0].clone(), ln(s, &args[0])),
            };
            let total = add(s, &mu, phi);
            let log_total = ln(s, &total);
            let xphi = add(s, x, phi);
            let a = lgamma(s, &xphi);
            let xp1 = shift(s, x, 1.0);
            let b = lgamma(s, &xp1);
            let g = lgamma(s, phi);
            let lphi = ln(s, phi);
            let d1 = sub(s, &lphi, &log_total);
            let t1 = mul(s, phi, &d1);
            let d2 = sub(s, &log_mu, &log_total);
            let t2 = mul(s, x, &d2);
            let r = sub(s, &a, &b);
            let r = sub(s, &r, &g);
            let r = add(s, &r, &t1);
            add(s, &r, &t2)
        }
        (Weibull, _) => {
            // ln k − ln λ + (k − 1)(ln x − ln λ) − (x / λ)^k
            let (k, lambda) = (&args[0], &args[1]);
            let ll = ln(s, lambda);
            let lx = ln(s, x);
            let d = sub(s, &lx, &ll);
            let km1 = shift(s, k, -1.0);
            let t = mul(s, &km1, &d);
            let kd = mul(s, k, &d);
            let p = map(s, MapFn::Exp, &kd);
            let lk = ln(s, k);
            let r = sub(s, &lk, &ll);
            let r = add(s, &r, &t);
            sub(s, &r, &p)
        }
        (Gumbel, _) => {
            // −ln β − z − exp(−z), z = (x − μ) / β
            let d = sub(s, x, &args[0]);
            let z = div(s, &d, &args[1]);
            let nz = scale(s, &z, -1.0);
            let e = map(s, MapFn::Exp, &nz);
            let lb = ln(s, &args[1]);
            let r = add(s, &lb, &z);
            let r = add(s, &r, &e);
            scale(s, &r, -1.0)
        }
        (BetaBinomial, _) => {
            // ln C(n, x) + lbeta(x + α, n − x + β) − lbeta(α, β)
            let (n, a, b) = (&args[0], &args[1], &args[2]);
            let choose = log_choose(s, n, x);
            let xa = add(s, x, a);
            let nmx = sub(s, n, x);
            let nxb = add(s, &nmx, b);
            let top = lbeta(s, &xa, &nxb);
            let bottom = lbeta(s, a, b);
            let r = add(s, &choose, &top);
            sub(s, &r, &bottom)
        }
        // The term is its own log density.
        (Factor, _) => x.clone(),
        (Mixture, _) => unreachable!("a mixture's parameterisation names its component family"),
    }
}

fn normal_lp(s: &mut Session, x: &Value, mu: &Value, sigma: &Value) -> Value {
    // −½ ((x − μ)/σ)² − ln σ − ½ ln 2π
    let d = sub(s, x, mu);
    let z = div(s, &d, sigma);
    let z2 = map(s, MapFn::Square, &z);
    let ls = ln(s, sigma);
    let h = scale(s, &z2, -0.5);
    let r = sub(s, &h, &ls);
    shift(s, &r, -0.5 * LN_2PI)
}

fn cauchy_lp(s: &mut Session, x: &Value, mu: Option<&Value>, sigma: &Value, offset: f64) -> Value {
    let d = match mu {
        Some(m) => sub(s, x, m),
        None => x.clone(),
    };
    let z = div(s, &d, sigma);
    let z2 = map(s, MapFn::Square, &z);
    let l = map(s, MapFn::Log1p, &z2);
    let ls = ln(s, sigma);
    let r = add(s, &l, &ls);
    let r = scale(s, &r, -1.0);
    shift(s, &r, offset - PI.ln())
}

fn log_beta(s: &mut Session, a: &Value, b: &Value) -> Value {
    let ga = lgamma(s, a);
    let gb = lgamma(s, b);
    let ab = add(s, a, b);
    let gab = lgamma(s, &ab);
    let r = add(s, &ga, &gb);
    sub(s, &r, &gab)
}

/// ln B(a, b) = lgamma(a) + lgamma(b) − lgamma(a + b).
fn lbeta(s: &mut Session, a: &Value, b: &Value) -> Value {
    let (ga, gb) = (lgamma(s, a), lgamma(s, b));
    let ab = add(s, a, b);
    let gab = lgamma(s, &ab);
    let r = add(s, &ga, &gb);
    sub(s, &r, &gab)
}

fn log_choose(s: &mut Session, n: &Value, k: &Value) -> Value {
    let np1 = shift(s, n, 1.0);
    let kp1 = shift(s, k, 1.0);
    let nmk = sub(s, n, k);
    let nmkp1 = shift(s, &nmk, 1.0);
    let a = lgamma(s, &np1);
    let b = lgamma(s, &kp1);
    let c = lgamma(s, &nmkp1);
    let r = sub(s, &a, &b);
    sub(s, &r, &c)
}

/// Keep probabilities off exact 0 and 1 so that logs stay finite.
fn clamp_prob(s: &mut Session, p: &Value) -> Value {
    let eps = match s.precision() {
        crate::backend::Precision::F32 => 1e-7,
        crate::backend::Precision::F64 => 1e-15,
    };
    Value::new(s.clamp(&p.arr, eps, 1.0 - eps), p.lay.clone())
}

/// log N(x | loc, L Lᵀ) with the inverse of the Cholesky factor `l_inv` ([D, D], constant) and
/// `log_det_l` = Σ ln L_ii; `x` and `loc` are vectors along their last axis.
pub fn mv_normal_lp(s: &mut Session, x: &Value, loc: &Value, l_inv: &Value, log_det_l: f64) -> Value {
    let d = sub(s, x, loc);
    let dim = *d.lay.shape.last().expect("a vector");
    let rows = d.arr.len() / dim;
    // z = L⁻¹ d for each row: rows @ L⁻ᵀ
    let z = s.matmul_t(&d.arr.reshaped(&[rows, dim]), &l_inv.arr);
    let z = Value::new(z.reshaped(&d.lay.dims()), d.lay.clone());
    let z2 = map(s, MapFn::Square, &z);
    let q = sum_last(s, &z2, 1);
    let h = scale(s, &q, -0.5);
    shift(s, &h, -log_det_l - 0.5 * dim as f64 * LN_2PI)
}

/// KL(N(m_q, s_q) || N(m_p, s_p)), elementwise.
pub fn kl_normal(s: &mut Session, mq: &Value, sq: &Value, mp: &Value, sp: &Value) -> Value {
    // ln(σp/σq) + (σq² + (μq − μp)²) / (2σp²) − ½
    let lsp = ln(s, sp);
    let lsq = ln(s, sq);
    let t1 = sub(s, &lsp, &lsq);
    let sq2 = map(s, MapFn::Square, sq);
    let d = sub(s, mq, mp);
    let d2 = map(s, MapFn::Square, &d);
    let num = add(s, &sq2, &d2);
    let sp2 = map(s, MapFn::Square, sp);
    let t2 = div(s, &num, &sp2);
    let t2 = scale(s, &t2, 0.5);
    let r = add(s, &t1, &t2);
    shift(s, &r, -0.5)
}

/// The total log density over a value's own axes (the event axes were summed already).
pub fn total(s: &mut Session, v: &Value) -> Value {
    sum_shape(s, v)
}

#[cfg(test)]
#[allow(clippy::excessive_precision)]
mod tests {
    use super::*;
    use crate::backend::Precision;

    fn scalar_lp(family: Family, pz: Parameterization, args: &[f64], x: f64) -> f64 {
        let mut s = Session::new(Precision::F64);
        let a: Vec<Value> = args.iter().map(|&v| c(&s, v)).collect();
        let xv = c(&s, x);
        let lp = log_prob(&mut s, family, pz, &a, &xv);
        s.value(&lp.arr)
    }

    #[test]
    fn scalar_densities_match_scipy() {
        use Family::*;
        let st = Parameterization::Standard;
        // Reference values from scipy.stats (logpdf / logpmf).
        let cases: &[(Family, Parameterization, &[f64], f64, f64)] = &[
            (Normal, st, &[1.0, 2.0], 0.3, -1.673_335_713_764_617_9),
            (
                Normal,
                Parameterization::Precision,
                &[1.0, 0.25],
                0.3,
                -1.673_335_713_764_617_9,
            ),
            (
                Normal,
                Parameterization::Variance,
                &[1.0, 4.0],
                0.3,
                -1.673_335_713_764_617_9,
            ),
            (HalfNormal, st, &[2.0], 1.5, -1.200_188_533_204_672_7),
            (LogNormal, st, &[0.5, 0.8], 2.0, -1.418_087_344_761_545_9),
            (Gamma, st, &[2.5, 1.5], 1.2, -0.797_537_765_011_576_2),
            (InverseGamma, st, &[3.0, 2.0], 0.7, -0.044_148_720_268_036_51),
            (Exponential, st, &[1.7], 0.4, -0.149_371_748_937_829_67),
            (Beta, st, &[2.0, 5.0], 0.3, 0.770_524_801_581_289_8),
            (Uniform, st, &[-1.0, 3.0], 0.5, -1.386_294_361_119_890_6),
            (StudentT, st, &[4.0, 1.0, 2.0], 0.0, -1.825_537_988_112_758_5),
            (Cauchy, st, &[1.0, 2.0], 0.0, -2.061_020_617_723_555),
            (HalfCauchy, st, &[5.0], 3.0, -2.368_505_317_471_515_6),
            (Laplace, st, &[1.0, 2.0], 0.0, -1.886_294_361_119_890_6),
            (Bernoulli, st, &[0.3], 1.0, -1.203_972_804_325_936),
            (
                Bernoulli,
                Parameterization::Logits,
                &[0.4],
                0.0,
                -0.913_015_252_399_952_6,
            ),
            (Binomial, st, &[10.0, 0.3], 4.0, -1.608_833_350_218_669_8),
            (Poisson, st, &[3.5], 2.0, -1.687_621_243_569_209_3),
            // scipy 1.17: log 2 + t(3, 0, 1.5).logpdf(2.2); nbinom(2.5, 2.5 / 6.5).logpmf(6);
            // weibull_min(1.7, scale=2).logpdf(1.3); gumbel_r(0.5, 2).logpdf(1.7);
            // betabinom(10, 2, 3.5).logpmf(4)
            (HalfStudentT, st, &[3.0, 1.5], 2.2, -1.794_407_082_106_173),
            (NegativeBinomial, st, &[4.0, 2.5], 6.0, -2.616_492_332_440_819),
            (
                NegativeBinomial,
                Parameterization::LogRate,
                &[1.386_294_361_119_890_6, 2.5],
                6.0,
                -2.616_492_332_440_819,
            ),
            (Weibull, st, &[1.7, 2.0], 1.3, -0.944_853_959_723_170_8),
            (Gumbel, st, &[0.5, 2.0], 1.7, -1.841_958_816_653_971_5),
            (BetaBinomial, st, &[10.0, 2.0, 3.5], 4.0, -1.956_141_431_547_189_7),
            // scipy.stats.poisson(3.5).logpmf(2), from log_rate = ln 3.5
            (
                Poisson,
                Parameterization::LogRate,
                &[1.252_762_968_495_368],
                2.0,
                -1.687_621_243_569_209_3,
            ),
        ];
        for (f, pz, args, x, want) in cases {
            let got = scalar_lp(*f, *pz, args, *x);
            assert!(
                (got - want).abs() < 1e-9,
                "{f}{args:?} at {x}: {got}, want {want}"
            );
        }
    }

    /// Every family at 8 random points (random parameters, points drawn from the distribution),
    /// against scipy.stats: tests/fixtures/densities/scipy.json, made by make.py there.
    #[test]
    fn every_family_matches_scipy_at_random_points() {
        let cases: serde_json::Value =
            serde_json::from_str(include_str!("../../tests/fixtures/densities/scipy.json")).expect("json");
        let pz_of = |name: &str| match name {
            "Standard" => Parameterization::Standard,
            "Precision" => Parameterization::Precision,
            "Variance" => Parameterization::Variance,
            "Logits" => Parameterization::Logits,
            "LogRate" => Parameterization::LogRate,
            other => panic!("parameterisation {other}"),
        };
        let nums = |v: &serde_json::Value| -> Vec<f64> {
            v.as_array()
                .expect("array")
                .iter()
                .map(|x| x.as_f64().expect("number"))
                .collect()
        };
        let mut seen = std::collections::HashSet::new();
        for case in cases.as_array().expect("cases") {
            let family = Family::from_name(case["family"].as_str().expect("name")).expect("a family");
            let pz = pz_of(case["pz"].as_str().expect("pz"));
            let params = nums(&case["params"]);
            let want = case["logp"].as_f64().expect("logp");
            let mut s = Session::new(Precision::F64);
            let vector =
                |s: &Session, v: &[f64]| Value::new(s.array(v, &[v.len()]), Layout::of_shape(vec![v.len()]));
            let x = match &case["x"] {
                serde_json::Value::Array(_) => vector(&s, &nums(&case["x"])),
                v => c(&s, v.as_f64().expect("number")),
            };
            let args: Vec<Value> = match family {
                Family::Dirichlet | Family::Categorical => vec![vector(&s, &params)],
                Family::Multinomial => vec![c(&s, params[0]), vector(&s, &params[1..])],
                _ => params.iter().map(|&v| c(&s, v)).collect(),
            };
            let lp = log_prob(&mut s, family, pz, &args, &x);
            let got = s.value(&lp.arr);
            assert!(
                (got - want).abs() < 1e-8 * want.abs().max(1.0),
                "{family} {pz:?} {params:?} at {}: {got}, scipy {want}",
                case["x"]
            );
            seen.insert(family);
        }
        // Every family with a density of its own (not improper, not a statement's term, not
        // checked elsewhere: MvNormal, LKJCholesky, Mixture) is covered.
        for f in Family::ALL {
            let elsewhere = matches!(
                f,
                Family::Flat | Family::HalfFlat | Family::Mixture | Family::MvNormal | Family::LkjCholesky
            );
            assert!(elsewhere || seen.contains(&f), "{f} has no random-point case");
        }
    }

    #[test]
    fn dirichlet_and_categorical_sum_their_event_axis() {
        let mut s = Session::new(Precision::F64);
        let a = Value::new(s.array(&[2.0, 3.0, 4.0], &[3]), Layout::of_shape(vec![3]));
        let x = Value::new(s.array(&[0.2, 0.3, 0.5], &[3]), Layout::of_shape(vec![3]));
        let lp = log_prob(&mut s, Family::Dirichlet, Parameterization::Standard, &[a], &x);
        // scipy.stats.dirichlet([2,3,4]).logpdf([.2,.3,.5])
        assert!(
            (s.value(&lp.arr) - 2.022_871_190_191_443_3).abs() < 1e-9,
            "{}",
            s.value(&lp.arr)
        );
        let p = Value::new(s.array(&[0.2, 0.3, 0.5], &[3]), Layout::of_shape(vec![3]));
        let k = Value::new(s.scalar(2.0), Layout::scalar());
        let lp = log_prob(&mut s, Family::Categorical, Parameterization::Standard, &[p], &k);
        assert!((s.value(&lp.arr) - 0.5f64.ln()).abs() < 1e-12);
    }

    /// log Σ_k w_k p(x | θ_k), against the sum written out (scipy's pdfs at these points).
    #[test]
    fn mixtures_sum_their_components_out() {
        let mut s = Session::new(Precision::F64);
        let vec2 =
            |s: &Session, a: f64, b: f64| Value::new(s.array(&[a, b], &[2]), Layout::of_shape(vec![2]));
        let w = vec2(&s, 0.3, 0.7);
        let (loc, scale) = (vec2(&s, -1.0, 2.0), vec2(&s, 0.5, 1.5));
        let x = c(&s, 0.4);
        let pz = Parameterization::MixtureOf(Family::Normal);
        let lp = log_prob(&mut s, Family::Mixture, pz, &[w, loc, scale], &x);
        // log(0.3 N(0.4 | -1, 0.5) + 0.7 N(0.4 | 2, 1.5))
        assert!(
            (s.value(&lp.arr) - -2.205_894_740_904_186).abs() < 1e-9,
            "{}",
            s.value(&lp.arr)
        );
        let (w, rate) = (vec2(&s, 0.25, 0.75), vec2(&s, 1.0, 6.0));
        let x = c(&s, 3.0);
        let pz = Parameterization::MixtureOf(Family::Poisson);
        let lp = log_prob(&mut s, Family::Mixture, pz, &[w, rate], &x);
        // log(0.25 Poisson(3 | 1) + 0.75 Poisson(3 | 6))
        assert!(
            (s.value(&lp.arr) - -2.497_935_735_061_643_6).abs() < 1e-9,
            "{}",
            s.value(&lp.arr)
        );
        // One value per member of a batch: x of shape [3] against the same two components.
        let xs = Value::new(s.array(&[0.4, 0.4, 0.4], &[3]), Layout::of_shape(vec![3]));
        let w = vec2(&s, 0.3, 0.7);
        let (loc, scale) = (vec2(&s, -1.0, 2.0), vec2(&s, 0.5, 1.5));
        let pz = Parameterization::MixtureOf(Family::Normal);
        let lp = log_prob(&mut s, Family::Mixture, pz, &[w, loc, scale], &xs);
        assert_eq!(lp.lay.shape, [3]);
        assert!(s
            .values(&lp.arr)
            .iter()
            .all(|v| (v - -2.205_894_740_904_186).abs() < 1e-9));
    }

    #[test]
    fn normal_kl_is_zero_for_equal_and_matches_closed_form() {
        let mut s = Session::new(Precision::F64);
        let v = |s: &Session, x| c(s, x);
        let (a, b, cc, d) = (v(&s, 0.5), v(&s, 1.5), v(&s, -1.0), v(&s, 2.0));
        let kl = kl_normal(&mut s, &a, &b, &cc, &d);
        let want = (2.0f64 / 1.5).ln() + (1.5f64.powi(2) + 1.5f64.powi(2)) / 8.0 - 0.5;
        assert!((s.value(&kl.arr) - want).abs() < 1e-12);
        let kl0 = kl_normal(&mut s, &a, &b, &a, &b);
        assert!(s.value(&kl0.arr).abs() < 1e-12);
    }

    /// LKJCholesky against NumPyro's `LKJCholesky(K, η).log_prob` at one 4×4 factor for three
    /// concentrations, and at a 2×2 one.
    #[test]
    fn lkj_cholesky_matches_numpyro() {
        let l4 = [
            1.0,
            0.0,
            0.0,
            0.0,
            0.291_312_612_451_590_9,
            0.956_627_911_900_248_3,
            0.0,
            0.0,
            -0.664_036_770_267_849,
            0.345_524_960_699_418,
            0.663_074_407_035_824,
            0.0,
            0.800_499_021_760_629_7,
            -0.118_293_752_126_852_25,
            0.355_092_636_773_506_2,
            0.468_099_480_535_136_34,
        ];
        let l2 = [1.0, 0.0, 0.6, 0.8];
        let cases: [(&[f64], usize, f64, f64); 4] = [
            (&l4, 4, 0.7, -2.994_012_356_864_191_6),
            (&l4, 4, 1.0, -2.958_908_415_632_748_3),
            (&l4, 4, 2.5, -4.380_114_343_242_148),
            (&l2, 2, 1.5, -0.674_726_256_603_664_8),
        ];
        for (l, k, eta, want) in cases {
            let mut s = Session::new(Precision::F64);
            let x = Value::new(s.array(l, &[k, k]), Layout::of_shape(vec![k, k]));
            let e = c(&s, eta);
            let lp = log_prob(&mut s, Family::LkjCholesky, Parameterization::Standard, &[e], &x);
            let got = s.value(&lp.arr);
            assert!((got - want).abs() < 1e-9, "K {k}, η {eta}: {got} vs {want}");
        }
    }
}
