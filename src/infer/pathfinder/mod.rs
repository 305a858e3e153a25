//! Pathfinder (Zhang, Carpenter, Gelman & Vehtari, JMLR 2022): climb the log density by
//! L-BFGS, turn every iterate into a normal approximation (its mean a quasi-Newton step from
//! the iterate, its covariance the L-BFGS inverse Hessian there), and keep the one with the best
//! ELBO. Multi-path Pathfinder runs several paths from random starts and resamples their pooled
//! draws by Pareto-smoothed importance weights.
//!
//! The inverse Hessians are formed densely (a Gilbert–Lemaréchal diagonal, then BFGS updates by
//! the last pairs), which is cheap up to [`DENSE_MAX`] dimensions; above that only the diagonal
//! is used.
//!
//! Pure maths over a [`LogDensity`]: never imports the engines, the backend or `report/`. The
//! gradient engine provides the density (`svi::pathfinder`), and also uses the result as the
//! starting point and the scale of its own fit.

pub mod lbfgs;

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

use super::psis;
use crate::linalg;

/// A log density over unconstrained vectors, evaluated on many points at once.
pub trait LogDensity {
    fn dim(&self) -> usize;
    /// log p at each point (`points` row-major, `dim` values each), and with `grad` its
    /// gradient at each (row-major; empty otherwise). Non-finite values are allowed.
    fn eval(&mut self, points: &[f64], grad: bool) -> (Vec<f64>, Vec<f64>);
}

/// The most dimensions Pathfinder runs on (its Gaussians are stored densely).
pub const MAX_DIM: usize = 1000;

/// Dimensions up to which the inverse Hessian is formed as a dense matrix.
pub const DENSE_MAX: usize = 300;

/// Scored iterates per pass of the model.
const ITERATES_PER_PASS: usize = 20;

/// A Gaussian over the unconstrained vector: mean and lower Cholesky factor of the covariance.
#[derive(Clone, Debug)]
pub struct Gaussian {
    pub mean: Vec<f64>,
    /// Row-major, lower triangular, positive diagonal.
    pub chol: Vec<f64>,
}

impl Gaussian {
    pub fn dim(&self) -> usize {
        self.mean.len()
    }

    /// The marginal standard deviations.
    pub fn sd(&self) -> Vec<f64> {
        let d = self.dim();
        (0..d)
            .map(|i| (0..=i).map(|j| self.chol[i * d + j].powi(2)).sum::<f64>().sqrt())
            .collect()
    }

    fn log_det_chol(&self) -> f64 {
        linalg::log_det(&self.chol, self.dim()) / 2.0
    }

    /// `n` draws (row-major) and log q of each.
    pub fn draw(&self, rng: &mut ChaCha8Rng, n: usize) -> (Vec<f64>, Vec<f64>) {
        let d = self.dim();
        let c = -self.log_det_chol() - 0.5 * d as f64 * (2.0 * std::f64::consts::PI).ln();
        let mut x = Vec::with_capacity(n * d);
        let mut lq = Vec::with_capacity(n);
        let mut eps = vec![0.0; d];
        for _ in 0..n {
            eps.iter_mut().for_each(|e| *e = StandardNormal.sample(rng));
            for i in 0..d {
                let row = &self.chol[i * d..i * d + i + 1];
                x.push(self.mean[i] + dot(row, &eps[..=i]));
            }
            lq.push(c - 0.5 * dot(&eps, &eps));
        }
        (x, lq)
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Settings of a Pathfinder run.
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    pub lbfgs: lbfgs::Settings,
    /// Draws per iterate for its ELBO estimate.
    pub elbo_draws: usize,
    /// Draws kept from the chosen approximation (per path).
    pub draws: usize,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            lbfgs: lbfgs::Settings::default(),
            elbo_draws: 25,
            draws: 1000,
        }
    }
}

/// One path's outcome: the chosen approximation and its draws.
#[derive(Clone, Debug)]
pub struct PathFit {
    pub approx: Gaussian,
    /// The chosen approximation's ELBO estimate.
    pub elbo: f64,
    /// Which iterate it came from, of how many.
    pub chosen: usize,
    pub iterations: usize,
    pub end: lbfgs::End,
    /// `draws` draws from the approximation (row-major), with log p and log q of each.
    pub x: Vec<f64>,
    pub log_p: Vec<f64>,
    pub log_q: Vec<f64>,
    /// Points evaluated with a gradient, and without.
    pub grad_evals: usize,
    pub density_evals: usize,
}

/// The inverse Hessian of −log p at iterates along the path, one at a time: a
/// Gilbert–Lemaréchal diagonal that absorbs every curvature pair so far, then (up to
/// [`DENSE_MAX`] dimensions) BFGS updates by the last `history` pairs, as a dense matrix.
struct InverseHessians<'p> {
    path: &'p lbfgs::Path,
    history: usize,
    diag: Vec<f64>,
    pairs: Vec<(Vec<f64>, Vec<f64>)>,
    /// The next iterate whose pair is absorbed.
    next: usize,
}

impl<'p> InverseHessians<'p> {
    fn new(path: &'p lbfgs::Path, history: usize) -> InverseHessians<'p> {
        let d = path.iterates[0].x.len();
        InverseHessians {
            path,
            history,
            diag: vec![1.0; d],
            pairs: Vec::new(),
            next: 1,
        }
    }

    /// Absorb the pairs up to iterate `k` (increasing calls), and form the matrix there.
    fn at(&mut self, k: usize) -> Vec<f64> {
        let it = &self.path.iterates;
        let d = self.diag.len();
        while self.next <= k {
            let j = self.next;
            let s: Vec<f64> = it[j].x.iter().zip(&it[j - 1].x).map(|(a, b)| a - b).collect();
            let y: Vec<f64> = it[j - 1].g.iter().zip(&it[j].g).map(|(a, b)| a - b).collect();
            if lbfgs::usable(&s, &y) {
                // Gilbert & Lemaréchal (1989), eq. 4.9.
                let a: f64 = y.iter().zip(&self.diag).map(|(y, a)| y * a * y).sum();
                let b = dot(&y, &s);
                let c: f64 = s.iter().zip(&self.diag).map(|(s, a)| s * s / a).sum();
                let next: Vec<f64> = (0..d)
                    .map(|i| b / (a / self.diag[i] + y[i] * y[i] - (a / c) * (s[i] / self.diag[i]).powi(2)))
                    .collect();
                if next.iter().all(|v| v.is_finite() && *v > 0.0) {
                    self.diag = next;
                }
                self.pairs.push((s, y));
                if self.pairs.len() > self.history {
                    self.pairs.remove(0);
                }
            }
            self.next += 1;
        }
        let mut h = vec![0.0; d * d];
        for i in 0..d {
            h[i * d + i] = self.diag[i];
        }
        if d <= DENSE_MAX {
            for (s, y) in &self.pairs {
                bfgs_update(&mut h, s, y, d);
            }
        }
        h
    }
}

/// Iterates whose approximations are scored: all of them up to [`SCORED_MAX`], else that many
/// spread along the path (the last ones, where the approximations are best, always among them).
fn scored_iterates(n: usize) -> Vec<usize> {
    if n <= SCORED_MAX {
        return (1..=n).collect();
    }
    let tail = SCORED_MAX / 4;
    let spread = SCORED_MAX - tail;
    let mut ks: Vec<usize> = (0..spread).map(|i| 1 + i * (n - tail) / spread).collect();
    ks.extend(n - tail + 1..=n);
    ks.dedup();
    ks
}

/// The most iterates scored along one path.
const SCORED_MAX: usize = 120;

/// H ← (I − ρ s yᵀ) H (I − ρ y sᵀ) + ρ s sᵀ.
fn bfgs_update(h: &mut [f64], s: &[f64], y: &[f64], d: usize) {
    let rho = 1.0 / dot(s, y);
    let hy = linalg::mat_vec(h, y, d);
    let yhy = dot(y, &hy);
    let c = rho * rho * yhy + rho;
    for i in 0..d {
        for j in 0..d {
            h[i * d + j] += -rho * (s[i] * hy[j] + hy[i] * s[j]) + c * s[i] * s[j];
        }
    }
}

/// The Cholesky factor of a covariance, with a growing jitter if rounding made it indefinite.
fn chol_jittered(h: &[f64], d: usize) -> Option<Vec<f64>> {
    let scale = (0..d).map(|i| h[i * d + i].abs()).fold(0.0, f64::max).max(1e-300);
    for jitter in [0.0, 1e-10, 1e-8, 1e-6] {
        let mut m = h.to_vec();
        for i in 0..d {
            m[i * d + i] += jitter * scale;
        }
        if let Some(l) = linalg::cholesky(&m, d) {
            return Some(l);
        }
    }
    None
}

/// Single-path Pathfinder from `start`.
pub fn single_path(
    ld: &mut dyn LogDensity,
    start: &[f64],
    set: &Settings,
    rng: &mut ChaCha8Rng,
) -> Result<PathFit, String> {
    let d = ld.dim();
    let path = lbfgs::ascend(ld, start, &set.lbfgs);
    if path.end == lbfgs::End::BadStart {
        return Err("the log density is not finite at the starting point".into());
    }
    let mut density_evals = 0;
    let k = set.elbo_draws.max(1);
    let mut hs = InverseHessians::new(&path, set.lbfgs.history);
    // Each scored iterate's approximation and its ELBO from `k` draws, a batch of iterates per
    // pass; only the best approximation so far is kept.
    let mut best: Option<(f64, usize, Gaussian)> = None;
    let candidates = scored_iterates(path.iterates.len() - 1);
    for batch in candidates.chunks(ITERATES_PER_PASS) {
        let mut approxes = Vec::with_capacity(batch.len());
        let mut pts = Vec::with_capacity(batch.len() * k * d);
        let mut lqs = Vec::with_capacity(batch.len() * k);
        for &j in batch {
            let h = hs.at(j);
            let it = &path.iterates[j];
            let chol = if d <= DENSE_MAX {
                let Some(l) = chol_jittered(&h, d) else { continue };
                l
            } else {
                // Diagonal: its factor is its square root.
                h.iter().map(|v| v.max(0.0).sqrt()).collect()
            };
            let step = linalg::mat_vec(&h, &it.g, d);
            let mean: Vec<f64> = it.x.iter().zip(&step).map(|(x, s)| x + s).collect();
            if !mean.iter().all(|m| m.is_finite()) {
                continue;
            }
            let g = Gaussian { mean, chol };
            let (x, lq) = g.draw(rng, k);
            pts.extend(x);
            lqs.extend(lq);
            approxes.push((j, g));
        }
        if approxes.is_empty() {
            continue;
        }
        let lps = eval_chunked(ld, &pts, d);
        density_evals += lqs.len();
        for (a, (j, g)) in approxes.into_iter().enumerate() {
            let lw: Vec<f64> = (0..k).map(|i| lps[a * k + i] - lqs[a * k + i]).collect();
            // A draw with no density makes the whole approximation worthless (ELBO −∞).
            let elbo = if lw.iter().all(|w| w.is_finite()) {
                lw.iter().sum::<f64>() / k as f64
            } else {
                f64::NEG_INFINITY
            };
            if best.as_ref().is_none_or(|(e, _, _)| elbo > *e) {
                best = Some((elbo, j, g));
            }
        }
    }
    let (elbo, chosen, approx) = best.unwrap_or_else(|| {
        // No curvature was learned (a flat or one-step path): a unit Gaussian at the last point.
        let x = path.iterates.last().expect("the start").x.clone();
        let mut chol = vec![0.0; d * d];
        (0..d).for_each(|i| chol[i * d + i] = 1.0);
        (
            f64::NEG_INFINITY,
            path.iterates.len() - 1,
            Gaussian { mean: x, chol },
        )
    });
    let (x, log_q) = approx.draw(rng, set.draws);
    let log_p = eval_chunked(ld, &x, d);
    density_evals += set.draws;
    Ok(PathFit {
        approx,
        elbo,
        chosen,
        iterations: path.iterates.len() - 1,
        end: path.end,
        x,
        log_p,
        log_q,
        grad_evals: path.grad_evals,
        density_evals,
    })
}

/// Points per pass when only densities are needed.
const CHUNK: usize = 1000;

fn eval_chunked(ld: &mut dyn LogDensity, pts: &[f64], d: usize) -> Vec<f64> {
    let mut out = Vec::with_capacity(pts.len() / d.max(1));
    for c in pts.chunks(CHUNK * d.max(1)) {
        out.extend(ld.eval(c, false).0);
    }
    out
}

/// Multi-path Pathfinder's pooled result.
#[derive(Clone, Debug)]
pub struct MultiFit {
    pub paths: Vec<PathFit>,
    /// Draws resampled from the pooled draws by their smoothed importance weights (row-major).
    pub x: Vec<f64>,
    /// Pareto k̂ of the pooled importance weights.
    pub khat: f64,
    /// log of the mean importance weight of the pooled draws (an IW bound on log p(x)).
    pub iw_bound: f64,
}

/// Starting points drawn as Stan draws its inits: uniform on (−2, 2) in unconstrained space.
pub fn random_start(rng: &mut ChaCha8Rng, d: usize) -> Vec<f64> {
    (0..d).map(|_| rng.gen_range(-2.0..2.0)).collect()
}

/// Multi-path Pathfinder: one path per start, pooled and resampled (with replacement) by
/// Pareto-smoothed importance weights, `draws` in all.
pub fn multi_path(
    ld: &mut dyn LogDensity,
    starts: &[Vec<f64>],
    set: &Settings,
    draws: usize,
    rng: &mut ChaCha8Rng,
) -> Result<MultiFit, String> {
    let d = ld.dim();
    let mut paths = Vec::new();
    let mut last_err = String::new();
    for st in starts {
        match single_path(ld, st, set, rng) {
            Ok(p) => paths.push(p),
            Err(e) => last_err = e,
        }
    }
    if paths.is_empty() {
        return Err(last_err);
    }
    let mut log_w = Vec::new();
    for p in &paths {
        log_w.extend(p.log_p.iter().zip(&p.log_q).map(|(a, b)| a - b));
    }
    let finite: Vec<f64> = log_w
        .iter()
        .map(|w| if w.is_finite() { *w } else { f64::NEG_INFINITY })
        .collect();
    if finite.iter().all(|w| *w == f64::NEG_INFINITY) {
        return Err("no draw of any path has a finite density".into());
    }
    let sm = psis::smooth(&finite);
    let iw_bound = psis::iw_bound(&finite);
    let total = psis::log_sum_exp(&sm.log_weights);
    let mut cum = Vec::with_capacity(sm.log_weights.len());
    let mut acc = 0.0;
    for lw in &sm.log_weights {
        acc += (lw - total).exp();
        cum.push(acc);
    }
    let pooled: Vec<&[f64]> = paths.iter().flat_map(|p| p.x.chunks(d)).collect();
    let mut x = Vec::with_capacity(draws * d);
    for _ in 0..draws {
        let u: f64 = rng.gen::<f64>() * acc;
        let i = cum.partition_point(|c| *c < u).min(pooled.len() - 1);
        x.extend_from_slice(pooled[i]);
    }
    Ok(MultiFit {
        paths,
        x,
        khat: sm.khat,
        iw_bound,
    })
}

/// Densities the tests of this room climb and approximate.
#[cfg(test)]
pub(super) mod fixtures {
    use super::{dot, LogDensity};
    use crate::linalg;

    /// A Gaussian, badly scaled or correlated: log N(x | m, Σ) with Σ given by its precision.
    pub struct Correlated {
        pub m: Vec<f64>,
        pub prec: Vec<f64>,
    }

    impl Correlated {
        /// Independent coordinates with these sds.
        pub fn diagonal(m: Vec<f64>, sd: &[f64]) -> Correlated {
            let d = m.len();
            let mut prec = vec![0.0; d * d];
            for (i, s) in sd.iter().enumerate() {
                prec[i * d + i] = 1.0 / (s * s);
            }
            Correlated { m, prec }
        }
    }

    impl LogDensity for Correlated {
        fn dim(&self) -> usize {
            self.m.len()
        }
        fn eval(&mut self, points: &[f64], grad: bool) -> (Vec<f64>, Vec<f64>) {
            let d = self.m.len();
            let mut f = Vec::new();
            let mut g = Vec::new();
            for p in points.chunks(d) {
                let z: Vec<f64> = p.iter().zip(&self.m).map(|(a, b)| a - b).collect();
                let pz = linalg::mat_vec(&self.prec, &z, d);
                f.push(-0.5 * dot(&z, &pz));
                if grad {
                    g.extend(pz.iter().map(|v| -v));
                }
            }
            (f, g)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    use super::fixtures::Correlated;

    /// The kid-IQ regression's shape: an intercept near 26 and a slope near 0.6 whose
    /// posterior correlation is −0.99.
    fn kidiq_like() -> Correlated {
        // Σ = [[s0², ρ s0 s1], [ρ s0 s1, s1²]], s0 = 6, s1 = 0.06, ρ = −0.99.
        let (s0, s1, r) = (6.0f64, 0.06f64, -0.99f64);
        let det = s0 * s0 * s1 * s1 * (1.0 - r * r);
        let prec = vec![
            s1 * s1 / det,
            -r * s0 * s1 / det,
            -r * s0 * s1 / det,
            s0 * s0 / det,
        ];
        Correlated {
            m: vec![26.0, 0.6],
            prec,
        }
    }

    #[test]
    fn single_path_recovers_a_correlated_gaussian() {
        let mut ld = kidiq_like();
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let fit = single_path(&mut ld, &[0.0, 0.0], &Settings::default(), &mut rng).unwrap();
        let sd = fit.approx.sd();
        assert!(
            (fit.approx.mean[0] - 26.0).abs() < 0.1 * 6.0,
            "{:?}",
            fit.approx.mean
        );
        assert!(
            (fit.approx.mean[1] - 0.6).abs() < 0.1 * 0.06,
            "{:?}",
            fit.approx.mean
        );
        assert!((sd[0] / 6.0 - 1.0).abs() < 0.25, "{sd:?}");
        assert!((sd[1] / 0.06 - 1.0).abs() < 0.25, "{sd:?}");
        assert!(fit.grad_evals < 400, "{} gradient evaluations", fit.grad_evals);
    }

    #[test]
    fn multi_path_pools_its_paths_with_a_good_khat_on_a_gaussian() {
        let mut ld = kidiq_like();
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let starts: Vec<Vec<f64>> = (0..4).map(|_| random_start(&mut rng, 2)).collect();
        let fit = multi_path(&mut ld, &starts, &Settings::default(), 1000, &mut rng).unwrap();
        assert_eq!(fit.paths.len(), 4);
        assert!(fit.khat < 0.7, "k̂ {}", fit.khat);
        let mean0 = fit.x.chunks(2).map(|p| p[0]).sum::<f64>() / 1000.0;
        assert!((mean0 - 26.0).abs() < 0.2 * 6.0, "{mean0}");
    }
}
