//! When to stop stochastic optimisation: a test on the ELBO trace that knows the trace is noisy.
//!
//! The estimates are averaged over windows of 100 steps. At the end of each window the rule
//! compares its mean with the mean `SPAN` windows earlier: if the ELBO rose by no more than
//! twice the standard error of that difference (estimated from the spread within the two
//! windows) plus `tol` relative, the last `SPAN` windows made no progress that the noise does not
//! explain, and the fit has converged. A relative tolerance alone (Stan's ADVI, or this rule's
//! predecessor, [`RelativeRule`]) either never fires on a noisy small model or fires while a
//! large one is still climbing; `examples/stop_rule_calibration.rs` measures both on the example
//! models' traces.

/// Steps per window.
pub const WINDOW: usize = 100;
/// Windows between the two compared means.
pub const SPAN: usize = 5;
/// Standard errors of the difference that still count as no progress.
const Z: f64 = 2.0;

/// The stop rule: no significant progress over the last `SPAN` windows.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct StopRule {
    tol: f64,
    current: Vec<f64>,
    /// (mean, variance) of each finished window.
    windows: Vec<(f64, f64)>,
}

fn mean_var(x: &[f64]) -> (f64, f64) {
    let n = x.len() as f64;
    let m = x.iter().sum::<f64>() / n;
    let v = x.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / (n - 1.0).max(1.0);
    (m, v)
}

impl StopRule {
    pub fn new(tol: f64) -> StopRule {
        StopRule {
            tol,
            current: Vec::with_capacity(WINDOW),
            windows: Vec::new(),
        }
    }

    /// The window used to average a trace of this length for the reported ELBO.
    pub fn window_for(len: usize) -> usize {
        len.clamp(1, WINDOW)
    }

    /// Feed one ELBO estimate; true when converged. A tolerance of zero or less never stops:
    /// the fit runs all its steps.
    pub fn update(&mut self, elbo: f64) -> bool {
        if self.tol <= 0.0 {
            return false;
        }
        self.current.push(elbo);
        if self.current.len() < WINDOW {
            return false;
        }
        self.windows.push(mean_var(&self.current));
        self.current.clear();
        let k = self.windows.len();
        if k <= SPAN {
            return false;
        }
        let (m1, v1) = self.windows[k - 1];
        let (m0, v0) = self.windows[k - 1 - SPAN];
        let se = ((v1 + v0) / WINDOW as f64).sqrt();
        m1 - m0 <= Z * se + self.tol * m1.abs()
    }
}

/// The previous rule, kept for comparison: the relative change between consecutive window
/// means is below `tol` twice in a row.
#[derive(Clone, Debug)]
pub struct RelativeRule {
    tol: f64,
    current: Vec<f64>,
    previous: Option<f64>,
    hits: usize,
}

impl RelativeRule {
    pub fn new(tol: f64) -> RelativeRule {
        RelativeRule {
            tol,
            current: Vec::new(),
            previous: None,
            hits: 0,
        }
    }

    pub fn update(&mut self, elbo: f64) -> bool {
        self.current.push(elbo);
        if self.current.len() < WINDOW {
            return false;
        }
        let mean = self.current.iter().sum::<f64>() / self.current.len() as f64;
        self.current.clear();
        if let Some(p) = self.previous {
            if (mean - p).abs() / mean.abs().max(1e-12) < self.tol {
                self.hits += 1;
            } else {
                self.hits = 0;
            }
        }
        self.previous = Some(mean);
        self.hits >= 2
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;
    use rand_distr::{Distribution, Normal};

    /// A trace that climbs as −100 e^{−t/τ} plus noise, then stays.
    fn trace(tau: f64, noise: f64, n: usize, seed: u64) -> Vec<f64> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let eps = Normal::new(0.0, noise).unwrap();
        (0..n)
            .map(|t| -100.0 * (-(t as f64) / tau).exp() - 1000.0 + eps.sample(&mut rng))
            .collect()
    }

    fn stop_at(rule: &mut StopRule, t: &[f64]) -> Option<usize> {
        t.iter().position(|e| rule.update(*e)).map(|i| i + 1)
    }

    #[test]
    fn it_waits_for_the_plateau_and_then_stops() {
        for seed in 0..20 {
            let t = trace(800.0, 2.0, 20_000, seed);
            let at = stop_at(&mut StopRule::new(1e-4), &t).expect("stops on a plateau");
            // Within 1 nat of the plateau: e^{−t/800}·100 < 1 after t ≈ 3700 steps.
            assert!(at > 3000, "seed {seed}: stopped at {at}, still climbing");
            assert!(at < 8000, "seed {seed}: stopped late, at {at}");
        }
    }

    #[test]
    fn noise_alone_is_not_progress() {
        // A flat trace with large noise stops after the first full span.
        let t = trace(1.0, 50.0, 5_000, 1);
        let at = stop_at(&mut StopRule::new(1e-4), &t).expect("stops");
        assert!(at <= (SPAN + 3) * WINDOW, "{at}");
    }
}
