//! L-BFGS ascent of a log density, keeping the whole path: every iterate with its value and
//! gradient, which Pathfinder turns into normal approximations.
//!
//! Written here rather than taken from a crate (argmin, liblbfgs ports) because the path is the
//! product, not just the optimum: every iterate and its gradient are kept; a non-finite
//! density (an overflowing `exp` far from the mode) is a step to shorten, not an error; and the
//! line search's trial steps are scored in one batched pass of the model, which on a small
//! model costs about as much as one.
//!
//! Plain numbers only: never imports the engines, the backend or `report/`.

use super::LogDensity;

/// Armijo's constant: a step must gain at least this fraction of its first-order promise.
const ARMIJO: f64 = 1e-4;
/// Fractions of the proposed step scored together in one pass, largest first.
const TRIALS: [f64; 5] = [1.0, 0.5, 0.2, 0.05, 0.01];
/// Rounds of trials, each starting at the last round's smallest fraction.
const ROUNDS: usize = 4;

/// One point of the path.
#[derive(Clone, Debug)]
pub struct Iterate {
    pub x: Vec<f64>,
    /// log density at `x` (up to its constant).
    pub f: f64,
    /// Its gradient.
    pub g: Vec<f64>,
}

/// How the ascent ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// The relative gain of a step, or the gradient, fell below tolerance.
    Converged,
    /// No step along the direction gained anything.
    LineSearchFailed,
    /// The iteration limit was reached.
    IterationLimit,
    /// The starting point has no finite density.
    BadStart,
}

/// The path of an ascent.
#[derive(Clone, Debug)]
pub struct Path {
    pub iterates: Vec<Iterate>,
    pub end: End,
    /// Points at which the density and its gradient were evaluated.
    pub grad_evals: usize,
}

/// Settings of the ascent.
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    pub max_iters: usize,
    /// Curvature pairs kept.
    pub history: usize,
    /// Relative gain in log density below which the ascent has converged.
    pub rel_tol: f64,
    /// Largest gradient component below which it has converged.
    pub grad_tol: f64,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            max_iters: 1000,
            history: 6,
            rel_tol: 1e-10,
            grad_tol: 1e-8,
        }
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// A curvature pair (s = x₊ − x, y = ∇U(x₊) − ∇U(x) for U = −log p) usable by BFGS.
pub fn usable(s: &[f64], y: &[f64]) -> bool {
    let sy = dot(s, y);
    sy > 1e-12 * dot(y, y) && sy.is_finite()
}

/// The two-loop recursion: H·v for the L-BFGS inverse Hessian of U from `pairs` (oldest first)
/// and the scaled identity.
fn two_loop(pairs: &[(Vec<f64>, Vec<f64>)], v: &[f64]) -> Vec<f64> {
    let mut q = v.to_vec();
    let mut alphas = vec![0.0; pairs.len()];
    for (k, (s, y)) in pairs.iter().enumerate().rev() {
        let a = dot(s, &q) / dot(s, y);
        alphas[k] = a;
        q.iter_mut().zip(y).for_each(|(q, y)| *q -= a * y);
    }
    let gamma = pairs.last().map_or(1.0, |(s, y)| dot(s, y) / dot(y, y));
    q.iter_mut().for_each(|q| *q *= gamma);
    for (k, (s, y)) in pairs.iter().enumerate() {
        let b = dot(y, &q) / dot(s, y);
        q.iter_mut().zip(s).for_each(|(q, s)| *q += s * (alphas[k] - b));
    }
    q
}

/// Climb `ld` from `x0` by L-BFGS with a batched backtracking line search.
pub fn ascend(ld: &mut dyn LogDensity, x0: &[f64], set: &Settings) -> Path {
    let d = x0.len();
    let (f0, g0) = ld.eval(x0, true);
    let mut path = Path {
        iterates: vec![Iterate {
            x: x0.to_vec(),
            f: f0[0],
            g: g0.clone(),
        }],
        end: End::IterationLimit,
        grad_evals: 1,
    };
    if !f0[0].is_finite() || g0.iter().any(|g| !g.is_finite()) {
        path.end = End::BadStart;
        return path;
    }
    let mut pairs: Vec<(Vec<f64>, Vec<f64>)> = Vec::new();
    for _ in 0..set.max_iters {
        let cur = path.iterates.last().expect("the start").clone();
        // Ascent direction H·∇log p; the first step is a gradient step of unit length.
        let dir = if pairs.is_empty() {
            let norm = dot(&cur.g, &cur.g).sqrt().max(1e-300);
            cur.g.iter().map(|g| g / norm).collect::<Vec<f64>>()
        } else {
            two_loop(&pairs, &cur.g)
        };
        let slope = dot(&cur.g, &dir);
        if slope.is_nan() || slope <= 0.0 {
            // Not an ascent direction (numerically): start the memory afresh.
            if pairs.is_empty() {
                path.end = End::LineSearchFailed;
                return path;
            }
            pairs.clear();
            continue;
        }
        let mut accepted: Option<Iterate> = None;
        let mut scale = 1.0;
        for _ in 0..ROUNDS {
            let alphas: Vec<f64> = TRIALS.iter().map(|t| t * scale).collect();
            let mut pts = Vec::with_capacity(alphas.len() * d);
            for a in &alphas {
                pts.extend(cur.x.iter().zip(&dir).map(|(x, p)| x + a * p));
            }
            let (fs, gs) = ld.eval(&pts, true);
            path.grad_evals += alphas.len();
            for (k, a) in alphas.iter().enumerate() {
                let g = &gs[k * d..(k + 1) * d];
                let ok = fs[k].is_finite()
                    && g.iter().all(|v| v.is_finite())
                    && fs[k] >= cur.f + ARMIJO * a * slope;
                if ok {
                    accepted = Some(Iterate {
                        x: pts[k * d..(k + 1) * d].to_vec(),
                        f: fs[k],
                        g: g.to_vec(),
                    });
                    break;
                }
            }
            if accepted.is_some() {
                break;
            }
            scale *= TRIALS[TRIALS.len() - 1];
        }
        let Some(next) = accepted else {
            path.end = End::LineSearchFailed;
            return path;
        };
        let s: Vec<f64> = next.x.iter().zip(&cur.x).map(|(a, b)| a - b).collect();
        let y: Vec<f64> = cur.g.iter().zip(&next.g).map(|(a, b)| a - b).collect();
        if usable(&s, &y) {
            pairs.push((s, y));
            if pairs.len() > set.history {
                pairs.remove(0);
            }
        }
        let gain = (next.f - cur.f).abs();
        let gmax = next.g.iter().fold(0.0f64, |m, g| m.max(g.abs()));
        path.iterates.push(next.clone());
        if gain <= set.rel_tol * next.f.abs().max(1.0) || gmax <= set.grad_tol {
            path.end = End::Converged;
            return path;
        }
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::infer::pathfinder::fixtures::Correlated;

    #[test]
    fn it_finds_the_mode_of_a_badly_scaled_gaussian() {
        // An intercept of 26 beside a slope of sd 0.001.
        let sd = [5.0, 0.001, 1.0];
        let mut q = Correlated::diagonal(vec![26.0, 0.6, -3.0], &sd);
        let path = ascend(&mut q, &[0.0, 0.0, 0.0], &Settings::default());
        assert_eq!(path.end, End::Converged, "{:?}", path.end);
        let x = &path.iterates.last().unwrap().x;
        for j in 0..3 {
            assert!((x[j] - q.m[j]).abs() < 0.01 * sd[j], "{x:?}");
        }
        assert!(path.iterates.len() < 100, "{} iterations", path.iterates.len());
    }

    #[test]
    fn a_start_without_density_is_reported() {
        struct Nan;
        impl LogDensity for Nan {
            fn dim(&self) -> usize {
                1
            }
            fn eval(&mut self, p: &[f64], _: bool) -> (Vec<f64>, Vec<f64>) {
                (vec![f64::NAN; p.len()], vec![f64::NAN; p.len()])
            }
        }
        assert_eq!(ascend(&mut Nan, &[0.0], &Settings::default()).end, End::BadStart);
    }
}
