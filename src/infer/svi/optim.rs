//! Stochastic optimisers over flat parameter vectors: Adam, AdaGrad, RMSProp, SGD with momentum,
//! with optional learning-rate decay and gradient-norm clipping.
//!
//! They update host copies of the parameters; the trainer writes the new values back into the
//! backend's tensors. Each parameter tensor keeps its own moment buffers.
//!
//! Plain numbers only: never imports the engine, the trainer, the backend or `report/`.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Adam,
    Adagrad,
    RmsProp,
    Sgd,
}

impl Kind {
    pub fn parse(word: &str) -> Option<Kind> {
        match word {
            "adam" => Some(Kind::Adam),
            "adagrad" => Some(Kind::Adagrad),
            "rmsprop" => Some(Kind::RmsProp),
            "sgd" => Some(Kind::Sgd),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::Adam => "adam",
            Kind::Adagrad => "adagrad",
            Kind::RmsProp => "rmsprop",
            Kind::Sgd => "sgd",
        }
    }
}

#[derive(Clone, Debug)]
pub struct Config {
    pub kind: Kind,
    pub lr: f64,
    /// lr_t = lr / (1 + decay · t)
    pub decay: f64,
    /// Momentum for SGD.
    pub momentum: f64,
    /// Rescale the gradient when its global norm exceeds this.
    pub clip: Option<f64>,
}

/// One step's rule: the optimiser's kind and constants, the step count (for Adam's bias
/// correction), the decayed learning rate and the clipping factor of the gradients.
#[derive(Clone, Copy)]
struct Rule<'a> {
    config: &'a Config,
    t: i32,
    lr: f64,
    scale: f64,
}

/// One optimiser for a group of parameter tensors.
#[derive(Clone, Debug)]
pub struct Optimizer {
    pub config: Config,
    t: u64,
    /// First and second moment (or accumulator) per tensor.
    state: Vec<(Vec<f64>, Vec<f64>)>,
    /// Per tensor, a scale for each value's steps (empty: 1): the preconditioner that makes a
    /// step of `lr` mean a fraction of that value's posterior scale.
    step_scales: Vec<Vec<f64>>,
    /// Tensors stepped jointly in whitened coordinates, if any.
    whitened: Option<Whitened>,
    /// Whitened moments restored from a checkpoint before the whitening is set again.
    restored_whitened: Option<(Vec<f64>, Vec<f64>)>,
}

/// A dense preconditioner: some tensors' values, concatenated into x, are stepped in
/// coordinates u with x = x₀ + L u (L lower triangular). The optimiser's rule runs on u, with
/// moments of its own, on the gradient Lᵀ ∇x; each step Δu moves x by L Δu. With L the
/// Cholesky factor of a posterior covariance, a ridge (an intercept against the slope of an
/// uncentred covariate, correlation −0.999) becomes a round bowl, where Adam's per-value steps
/// would crawl along it for thousands of steps.
#[derive(Clone, Debug)]
struct Whitened {
    members: Vec<usize>,
    chol: Vec<f64>,
    m: Vec<f64>,
    v: Vec<f64>,
}

/// What a checkpoint keeps of an optimiser: its step count and its moments.
#[derive(Clone, Debug)]
pub struct OptimizerState {
    pub t: u64,
    pub moments: Vec<(Vec<f64>, Vec<f64>)>,
}

impl Optimizer {
    pub fn new(config: Config, sizes: &[usize]) -> Optimizer {
        Optimizer {
            config,
            t: 0,
            state: sizes.iter().map(|&n| (vec![0.0; n], vec![0.0; n])).collect(),
            step_scales: vec![Vec::new(); sizes.len()],
            whitened: None,
            restored_whitened: None,
        }
    }

    /// Step the tensors `members` (in this order) jointly in coordinates whitened by `chol`
    /// (row-major d × d, lower triangular, d their total length); their step scales are then
    /// unused. Setting it again with the same members keeps the moments (a refreshed factor);
    /// the moments are saved with the others, and a resumed fit that sets it again continues
    /// from them.
    pub fn set_whitening(&mut self, members: Vec<usize>, chol: Vec<f64>) {
        let dim: usize = members.iter().map(|&k| self.state[k].0.len()).sum();
        assert_eq!(chol.len(), dim * dim);
        match &mut self.whitened {
            Some(w) if w.members == members => w.chol = chol,
            _ => {
                let (m, v) = match self.restored_whitened.take() {
                    Some((m, v)) if m.len() == dim && v.len() == dim => (m, v),
                    _ => (vec![0.0; dim], vec![0.0; dim]),
                };
                self.whitened = Some(Whitened { members, chol, m, v })
            }
        }
    }

    /// Scale the steps of tensor `k` value by value. Not saved with the moments: a resumed fit
    /// computes its preconditioner again, as a pure function of the model, data and seed.
    pub fn set_step_scales(&mut self, k: usize, scales: Vec<f64>) {
        assert_eq!(scales.len(), self.state[k].0.len());
        self.step_scales[k] = scales;
    }

    /// The step count and the moments: one pair per tensor, then the whitened moments if any.
    pub fn save(&self) -> OptimizerState {
        let mut moments = self.state.clone();
        if let Some(w) = &self.whitened {
            moments.push((w.m.clone(), w.v.clone()));
        }
        OptimizerState { t: self.t, moments }
    }

    /// Start afresh from the current parameters (after a fault: gradients from a blow-up would
    /// shrink Adam's steps for thousands of steps). The step count restarts with the moments,
    /// for their bias correction, and so does the decay schedule.
    pub fn forget_moments(&mut self) {
        self.t = 0;
        for (m, v) in &mut self.state {
            m.iter_mut().for_each(|x| *x = 0.0);
            v.iter_mut().for_each(|x| *x = 0.0);
        }
        if let Some(w) = &mut self.whitened {
            w.m.iter_mut().for_each(|x| *x = 0.0);
            w.v.iter_mut().for_each(|x| *x = 0.0);
        }
    }

    /// Continue from a saved state; `false` (and no change) when it was an optimiser over
    /// tensors of other sizes.
    pub fn restore(&mut self, mut saved: OptimizerState) -> bool {
        let whitened = if saved.moments.len() == self.state.len() + 1 {
            saved.moments.pop()
        } else {
            None
        };
        let fits = saved.moments.len() == self.state.len()
            && saved
                .moments
                .iter()
                .zip(&self.state)
                .all(|((m, v), (m0, _))| m.len() == m0.len() && v.len() == m0.len());
        if fits {
            self.t = saved.t;
            self.state = saved.moments;
            self.whitened = None;
            self.restored_whitened = whitened;
        }
        fits
    }

    /// One step: move `params` along `grads` (ascent: the objective is maximised).
    pub fn step(&mut self, params: &mut [&mut Vec<f64>], grads: &[Vec<f64>]) {
        assert_eq!(params.len(), self.state.len());
        self.t += 1;
        let c = &self.config;
        let lr = c.lr / (1.0 + c.decay * (self.t - 1) as f64);
        let scale = match c.clip {
            Some(max) => {
                let norm = grads.iter().flatten().map(|g| g * g).sum::<f64>().sqrt();
                if norm > max {
                    max / norm
                } else {
                    1.0
                }
            }
            None => 1.0,
        };
        let rule = Rule {
            config: c,
            t: self.t as i32,
            lr,
            scale,
        };
        let joint = |k: usize| self.whitened.as_ref().is_some_and(|w| w.members.contains(&k));
        let apart: Vec<bool> = (0..params.len()).map(|k| !joint(k)).collect();
        for (k, (((p, g), (m, v)), sc)) in params
            .iter_mut()
            .zip(grads)
            .zip(&mut self.state)
            .zip(&self.step_scales)
            .enumerate()
        {
            if apart[k] {
                update(rule, p, g, m, v, sc);
            }
        }
        if let Some(w) = &mut self.whitened {
            w.step(rule, params, grads);
        }
    }
}

impl Whitened {
    /// One step of u by the optimiser's rule on Lᵀ g, applied to x as L Δu.
    fn step(&mut self, rule: Rule, params: &mut [&mut Vec<f64>], grads: &[Vec<f64>]) {
        let d = self.m.len();
        let g: Vec<f64> = self
            .members
            .iter()
            .flat_map(|&k| grads[k].iter().copied())
            .collect();
        // Lᵀ g: column j of L is L[i][j] for i ≥ j.
        let mut gu = vec![0.0; d];
        for (i, gi) in g.iter().enumerate() {
            let row = &self.chol[i * d..i * d + i + 1];
            for (j, l) in row.iter().enumerate() {
                gu[j] += l * gi;
            }
        }
        let mut du = vec![0.0; d];
        update_chunk(rule, &mut du, &gu, &mut self.m, &mut self.v, &[]);
        let mut offset = 0;
        for &k in &self.members {
            for x in params[k].iter_mut() {
                let row = &self.chol[offset * d..offset * d + offset + 1];
                *x += row.iter().zip(&du).map(|(l, u)| l * u).sum::<f64>();
                offset += 1;
            }
        }
    }
}

/// Tensors above this size are updated in parallel chunks.
const PARALLEL_CHUNK: usize = 1 << 15;

/// One tensor's update (`sc`: its step scales, or empty), written as zipped slices so that it
/// vectorises; large tensors are cut into chunks updated in parallel.
fn update(rule: Rule, p: &mut [f64], g: &[f64], m: &mut [f64], v: &mut [f64], sc: &[f64]) {
    use rayon::prelude::*;
    if p.len() <= PARALLEL_CHUNK {
        return update_chunk(rule, p, g, m, v, sc);
    }
    let chunks = p
        .par_chunks_mut(PARALLEL_CHUNK)
        .zip(g.par_chunks(PARALLEL_CHUNK))
        .zip(m.par_chunks_mut(PARALLEL_CHUNK))
        .zip(v.par_chunks_mut(PARALLEL_CHUNK));
    if sc.is_empty() {
        chunks.for_each(|(((p, g), m), v)| update_chunk(rule, p, g, m, v, &[]));
    } else {
        chunks
            .zip(sc.par_chunks(PARALLEL_CHUNK))
            .for_each(|((((p, g), m), v), sc)| update_chunk(rule, p, g, m, v, sc));
    }
}

fn update_chunk(rule: Rule, p: &mut [f64], g: &[f64], m: &mut [f64], v: &mut [f64], sc: &[f64]) {
    let Rule {
        config: c,
        t,
        lr,
        scale,
    } = rule;
    match c.kind {
        Kind::Adam => {
            let (b1, b2, eps) = (0.9, 0.999, 1e-8);
            // lr · m̂ / (√v̂ + ε) with m̂ = m / (1 − b1ᵗ), v̂ = v / (1 − b2ᵗ).
            let step = lr / (1.0 - f64::powi(b1, t));
            let root_c2 = (1.0 - f64::powi(b2, t)).sqrt();
            climb(p, g, m, v, sc, scale, |gi, m, v| {
                *m = b1 * *m + (1.0 - b1) * gi;
                *v = b2 * *v + (1.0 - b2) * gi * gi;
                step * *m / (v.sqrt() / root_c2 + eps)
            });
        }
        Kind::Adagrad => climb(p, g, m, v, sc, scale, |gi, _, v| {
            *v += gi * gi;
            lr * gi / (v.sqrt() + 1e-10)
        }),
        Kind::RmsProp => climb(p, g, m, v, sc, scale, |gi, _, v| {
            *v = 0.9 * *v + 0.1 * gi * gi;
            lr * gi / (v.sqrt() + 1e-8)
        }),
        Kind::Sgd => climb(p, g, m, v, sc, scale, |gi, m, _| {
            *m = c.momentum * *m + gi;
            lr * *m
        }),
    }
}

/// Add each value's increment `inc(g · scale, m, v)`, times its step scale where it has one.
#[inline(always)]
fn climb(
    p: &mut [f64],
    g: &[f64],
    m: &mut [f64],
    v: &mut [f64],
    sc: &[f64],
    scale: f64,
    inc: impl Fn(f64, &mut f64, &mut f64) -> f64,
) {
    let all = p.iter_mut().zip(g).zip(m.iter_mut().zip(v.iter_mut()));
    if sc.is_empty() {
        for ((p, g), (m, v)) in all {
            *p += inc(g * scale, m, v);
        }
    } else {
        for (((p, g), (m, v)), s) in all.zip(sc) {
            *p += s * inc(g * scale, m, v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Plain Adam at `lr`: no decay, no clipping.
    fn adam(lr: f64) -> Config {
        Config {
            kind: Kind::Adam,
            lr,
            decay: 0.0,
            momentum: 0.0,
            clip: None,
        }
    }

    /// Maximise −(x − 3)² from 0: every optimiser gets there.
    #[test]
    fn every_optimiser_climbs_a_quadratic() {
        for (kind, lr) in [
            (Kind::Adam, 0.1),
            (Kind::Adagrad, 0.5),
            (Kind::RmsProp, 0.05),
            (Kind::Sgd, 0.05),
        ] {
            let config = Config {
                kind,
                lr,
                decay: 0.0,
                momentum: 0.5,
                clip: Some(10.0),
            };
            let mut opt = Optimizer::new(config, &[1]);
            let mut x = vec![0.0];
            for _ in 0..2000 {
                let g = vec![-2.0 * (x[0] - 3.0)];
                opt.step(&mut [&mut x], &[g]);
            }
            assert!((x[0] - 3.0).abs() < 1e-2, "{kind:?}: {}", x[0]);
        }
    }

    /// A step scale multiplies that value's step and no other's.
    #[test]
    fn step_scales_scale_each_values_step() {
        let config = adam(0.1);
        let mut plain = Optimizer::new(config.clone(), &[2]);
        let mut scaled = Optimizer::new(config, &[2]);
        scaled.set_step_scales(0, vec![0.25, 1.0]);
        let (mut a, mut b) = (vec![0.0, 0.0], vec![0.0, 0.0]);
        for _ in 0..3 {
            plain.step(&mut [&mut a], &[vec![1.0, -2.0]]);
            scaled.step(&mut [&mut b], &[vec![1.0, -2.0]]);
        }
        assert!((b[0] - 0.25 * a[0]).abs() < 1e-12, "{a:?} {b:?}");
        assert!((b[1] - a[1]).abs() < 1e-12, "{a:?} {b:?}");
    }

    /// A ridge: an intercept of sd 10 against a slope of sd 0.1, correlation −0.999, the two in
    /// two tensors, started 3 Mahalanobis units up the ridge, the gradient as noisy as a
    /// one-draw ELBO estimate under a mean-field guide (the draw spread by the conditional
    /// sds). Adam with steps scaled by the marginal sds (the diagonal preconditioner) is still
    /// up the ridge after 1000 steps; whitened by the covariance's Cholesky factor it is at the
    /// top.
    #[test]
    fn whitening_turns_a_ridge_into_a_bowl() {
        use rand::SeedableRng;
        use rand_distr::{Distribution, StandardNormal};
        let (s0, s1, r): (f64, f64, f64) = (10.0, 0.1, -0.999);
        let d = 1.0 - r * r;
        // Σ⁻¹ for Σ = [[s0², r s0 s1], [r s0 s1, s1²]].
        let (p00, p11, p01) = (1.0 / (s0 * s0 * d), 1.0 / (s1 * s1 * d), -r / (s0 * s1 * d));
        let grad = |x: &[f64]| [-(p00 * x[0] + p01 * x[1]), -(p01 * x[0] + p11 * x[1])];
        let mahalanobis =
            |x: &[f64]| (p00 * x[0] * x[0] + 2.0 * p01 * x[0] * x[1] + p11 * x[1] * x[1]).sqrt();
        let conditional = [s0 * d.sqrt(), s1 * d.sqrt()];
        let chol = vec![s0, 0.0, r * s1, s1 * d.sqrt()];
        let config = adam(0.01);
        let run = |whiten: bool| {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
            let mut opt = Optimizer::new(config.clone(), &[1, 1]);
            opt.set_step_scales(0, vec![s0]);
            opt.set_step_scales(1, vec![s1]);
            if whiten {
                opt.set_whitening(vec![0, 1], chol.clone());
            }
            // 3 units along the ridge: x = 3 · (s0, r s1).
            let (mut a, mut b) = (vec![3.0 * s0], vec![3.0 * r * s1]);
            let mut last = 0.0;
            for step in 0..1000 {
                let e0: f64 = StandardNormal.sample(&mut rng);
                let e1: f64 = StandardNormal.sample(&mut rng);
                let g = grad(&[a[0] + conditional[0] * e0, b[0] + conditional[1] * e1]);
                opt.step(&mut [&mut a, &mut b], &[vec![g[0]], vec![g[1]]]);
                if step >= 800 {
                    last += mahalanobis(&[a[0], b[0]]) / 200.0;
                }
            }
            last
        };
        let (plain, whitened) = (run(false), run(true));
        assert!(whitened < 0.3, "whitened: {whitened}");
        assert!(plain > 1.0, "value by value: {plain}");
    }

    /// A whitened optimiser saved after some steps and restored (the whitening set again, as
    /// a resumed fit does) continues exactly as one that never stopped.
    #[test]
    fn a_restored_whitened_optimiser_continues_where_it_stopped() {
        let config = adam(0.1);
        let chol = vec![2.0, 0.0, -0.5, 0.3];
        let grad = |x: &[f64]| vec![vec![-(x[0] - 1.0)], vec![-(x[1] + 2.0)]];
        let fresh = || {
            let mut o = Optimizer::new(config.clone(), &[1, 1]);
            o.set_whitening(vec![0, 1], chol.clone());
            o
        };
        let mut whole = fresh();
        let (mut a, mut b) = (vec![0.0], vec![0.0]);
        for _ in 0..20 {
            let g = grad(&[a[0], b[0]]);
            whole.step(&mut [&mut a, &mut b], &g);
        }
        let mut first = fresh();
        let (mut c, mut d) = (vec![0.0], vec![0.0]);
        for _ in 0..10 {
            let g = grad(&[c[0], d[0]]);
            first.step(&mut [&mut c, &mut d], &g);
        }
        let mut resumed = Optimizer::new(config.clone(), &[1, 1]);
        assert!(resumed.restore(first.save()));
        resumed.set_whitening(vec![0, 1], chol.clone());
        for _ in 0..10 {
            let g = grad(&[c[0], d[0]]);
            resumed.step(&mut [&mut c, &mut d], &g);
        }
        assert_eq!((a[0], b[0]), (c[0], d[0]));
    }
}
