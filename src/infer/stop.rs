//! When to stop stochastic optimisation: a test that noise cannot fool.
//!
//! A step's ELBO estimate is too noisy to judge progress by (far from the optimum its noise can
//! hide a rise of thousands of nats, which a standard-error test then calls no progress). So
//! at the end of every window of [`WINDOW`] steps the fit scores its tail-averaged parameters
//! with the same draws and the same rows each time (common random numbers): the differences
//! between those scores are the parameters' progress, nearly free of Monte-Carlo noise. The
//! rule takes the rise per window over the last half of the scores (their least-squares slope
//! plus two of its standard errors, over at least [`SPAN`] windows, and no stop before
//! [`MIN_WINDOWS`]) and extrapolates it over [`HORIZON`] more windows: the fit has converged
//! when that bound on what is left is under `max(DELTA, tol · |ELBO|)`. Since the rise slows as a fit
//! approaches its optimum, a linear extrapolation of the recent rate overstates what is left:
//! the rule errs on the side of running on.
//!
//! The ELBO cannot see everything: a location still drifting by a tenth of a posterior sd costs
//! only thousandths of a nat. So the rule also reads the drift of the guide's locations: beside
//! the tail average (over the last half of the steps) it keeps a shorter moving average (over
//! the last eighth), and while the two differ by more than [`DRIFT`] guide sds in any location
//! (or any guide sd by about that fraction) the guide is still travelling, and the fit runs on. `benches/stop_calibration.py`
//! measures the rule's false stops and its delay on every example and posteriordb model.

/// Steps per window.
pub const WINDOW: usize = 100;
/// Fewest windows compared.
pub const SPAN: usize = 5;
/// Fewest windows before a stop: 2,000 steps, so that the tail average (over half the steps
/// so far) has averaged away most of the optimiser's jitter.
pub const MIN_WINDOWS: usize = 20;
/// Windows ahead over which the recent rate is extrapolated: 20,000 steps.
pub const HORIZON: f64 = 200.0;
/// Nats of extrapolated rise (its upper bound) that still count as converged: half the nat
/// that the calibration counts as a false stop.
pub const DELTA: f64 = 0.5;
/// Standard errors of the slope added for its upper bound.
const Z: f64 = 2.0;
/// Guide sds between the short and the tail average of any location (and about the relative
/// change of any guide sd) that still count as converged. Measured on traces of every example
/// and posteriordb model run 30,000 steps (4 seeds each): at 0.05 no stopped fit was more than
/// 0.1 guide sd from where 200 more windows took it, and one of 40 ran to its step limit; at
/// 0.07, 2 of 40 were; at 0.02, 15 of 40 ran to the limit.
pub const DRIFT: f64 = 0.05;

/// The stop rule, fed one common-random-numbers score per window.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct StopRule {
    tol: f64,
    /// The score at the end of each window so far.
    #[serde(default)]
    scores: Vec<f64>,
    /// The short moving average of the guide's locations (empty until the first step).
    #[serde(default)]
    recent: Vec<f64>,
}

impl StopRule {
    pub fn new(tol: f64) -> StopRule {
        StopRule {
            tol,
            scores: Vec::new(),
            recent: Vec::new(),
        }
    }

    /// Fold the guide's values after step `step` into the short moving average, whose horizon is
    /// an eighth of the steps (the tail average's is half).
    pub fn track<'a>(&mut self, step: usize, locations: impl Iterator<Item = &'a f64>) {
        if !self.active() {
            return;
        }
        if self.recent.is_empty() {
            self.recent.extend(locations);
            return;
        }
        let w = 1.0 / recent_horizon(step);
        for (r, x) in self.recent.iter_mut().zip(locations) {
            *r += w * (x - *r);
        }
    }

    /// The largest difference between the short moving average of the guide's values and their
    /// tail average (`averaged`, in the order [`StopRule::track`] saw them), each in its `units`.
    pub fn drift<'a>(
        &self,
        averaged: impl Iterator<Item = &'a f64>,
        sds: impl Iterator<Item = &'a f64>,
    ) -> f64 {
        self.recent
            .iter()
            .zip(averaged)
            .zip(sds)
            .map(|((r, a), s)| (r - a).abs() / s)
            .fold(0.0, |m, d| if d.is_nan() { f64::INFINITY } else { m.max(d) })
    }

    /// The window used to average a trace of this length for the reported ELBO.
    pub fn window_for(len: usize) -> usize {
        len.clamp(1, WINDOW)
    }

    /// Whether the rule runs at all: a tolerance of zero or less runs every step.
    pub fn active(&self) -> bool {
        self.tol > 0.0
    }

    /// The upper bound on the rise extrapolated over the horizon from the scores so far (∞ before there are
    /// enough of them; a non-finite score counts as still moving).
    pub fn extrapolated_rise(&self) -> f64 {
        let k = self.scores.len();
        if k < MIN_WINDOWS.max(SPAN + 1) {
            return f64::INFINITY;
        }
        // The least-squares slope of the last half of the scores: a third of the noise of the
        // difference of its two ends.
        let span = (k / 2).max(SPAN);
        let ys = &self.scores[k - 1 - span..];
        let n = ys.len() as f64;
        let xbar = (n - 1.0) / 2.0;
        let ybar = ys.iter().sum::<f64>() / n;
        let (mut sxy, mut sxx) = (0.0, 0.0);
        for (i, y) in ys.iter().enumerate() {
            let dx = i as f64 - xbar;
            sxy += dx * (y - ybar);
            sxx += dx * dx;
        }
        let rate = sxy / sxx;
        // Its standard error from the residuals: the bound is on what the scores allow, so a
        // noisy stretch cannot pass for a flat one.
        let rss: f64 = ys
            .iter()
            .enumerate()
            .map(|(i, y)| (y - ybar - rate * (i as f64 - xbar)).powi(2))
            .sum();
        let se = (rss / (n - 2.0).max(1.0) / sxx).sqrt();
        let bound = (rate + Z * se) * HORIZON;
        if bound.is_finite() {
            bound
        } else {
            f64::INFINITY
        }
    }

    /// Feed the score at the end of a window and the locations' [`StopRule::drift`] there;
    /// true when converged.
    pub fn observe(&mut self, score: f64, drift: f64) -> bool {
        if !self.active() {
            return false;
        }
        self.scores.push(score);
        let threshold = DELTA.max(self.tol * score.abs());
        self.extrapolated_rise() <= threshold && drift <= DRIFT
    }
}

/// The short moving average's horizon after `step` steps: an eighth of the steps (at least 10,
/// and never more than the steps so far).
fn recent_horizon(step: usize) -> f64 {
    (step as f64 / 8.0).max(10.0).min(step as f64 + 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Scores of a fit that climbs as −100 e^{−w/τ} per window w, with a little jitter.
    fn scores(tau: f64, n: usize) -> Vec<f64> {
        (0..n)
            .map(|w| -100.0 * (-(w as f64) / tau).exp() - 1000.0 + 0.001 * ((w * 7919) % 13) as f64)
            .collect()
    }

    fn stop_at(rule: &mut StopRule, t: &[f64]) -> Option<usize> {
        t.iter().position(|e| rule.observe(*e, 0.0)).map(|i| i + 1)
    }

    #[test]
    fn it_waits_until_what_is_left_is_under_the_threshold() {
        for tau in [3.0, 8.0, 30.0, 100.0] {
            let t = scores(tau, 5000);
            let at = stop_at(&mut StopRule::new(1e-4), &t).expect("stops on a plateau");
            // What 200 more windows would still gain, where it stopped.
            let left = t[(at - 1 + 200).min(t.len() - 1)] - t[at - 1];
            assert!(
                left < 1.0,
                "τ {tau}: stopped at window {at} with {left} nats to go"
            );
            // And not absurdly late: within a few multiples of the time to DELTA.
            let within = (tau * (100.0 / DELTA).ln()).ceil() as usize;
            assert!(
                at < 3 * within + MIN_WINDOWS,
                "τ {tau}: stopped late, at {at} ({DELTA} nat at {within})"
            );
        }
    }

    #[test]
    fn a_large_rise_never_reads_as_converged() {
        // A fit still rising by 10 nats per window, however noisy its steps were.
        let t: Vec<f64> = (0..50).map(|w| -5000.0 + 10.0 * w as f64).collect();
        assert_eq!(stop_at(&mut StopRule::new(1e-4), &t), None);
    }

    #[test]
    fn a_flat_trace_stops_after_the_fewest_windows() {
        let t = vec![-10.0; 40];
        assert_eq!(stop_at(&mut StopRule::new(1e-4), &t), Some(MIN_WINDOWS));
    }

    #[test]
    fn a_drifting_location_keeps_a_flat_trace_running() {
        let mut rule = StopRule::new(1e-4);
        // A location moving 2e-4 sd a step (sd 1): the tail average lags it by n/3 steps' travel
        // and the short one by n/9, so they differ by 2e-4 × 2n/9 sd, 0.089 at the first
        // possible stop (2,000 steps).
        let (mut avg, mut stop) = (0.0, None);
        for step in 0..20_000usize {
            let x = 2e-4 * step as f64;
            rule.track(step, [x].iter());
            avg += (x - avg) / (step as f64 / 2.0).max(10.0).min(step as f64 + 1.0);
            if (step + 1) % WINDOW == 0 && rule.observe(-10.0, rule.drift([avg].iter(), [1.0].iter())) {
                stop = Some(step);
                break;
            }
        }
        assert_eq!(stop, None);
        // Once it stops moving, the rule stops.
        for step in 20_000..200_000usize {
            rule.track(step, [2.0].iter());
            avg += (2.0 - avg) / (step as f64 / 2.0);
            if (step + 1) % WINDOW == 0 && rule.observe(-10.0, rule.drift([avg].iter(), [1.0].iter())) {
                stop = Some(step);
                break;
            }
        }
        assert!(stop.is_some());
    }

    #[test]
    fn tolerance_zero_never_stops() {
        let t = vec![-10.0; 20];
        assert_eq!(stop_at(&mut StopRule::new(0.0), &t), None);
    }
}
