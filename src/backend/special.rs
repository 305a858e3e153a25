//! Differentiable log-gamma and digamma, composed from dfdx ops (dfdx has neither).

use super::{Array, Session};
use crate::graph::{MapFn, ZipFn};

/// How far the recurrence shifts x before the asymptotic series takes over.
const SHIFT: f64 = 8.0;

impl Session {
    /// ln Γ(x) for x > 0: ln Γ(x) = ln Γ(x + 8) − ln(x (x+1) ⋯ (x+7)), then Stirling's series at
    /// z = x + 8 ≥ 8, where its truncation error is below 1e-11.
    pub(super) fn lgamma(&mut self, x: &Array) -> Array {
        let mut prod = x.clone();
        for k in 1..SHIFT as usize {
            let xk = self.shift(x, k as f64);
            prod = self.zip(ZipFn::Mul, &prod, &xk);
        }
        let log_prod = self.map(MapFn::Log, &prod);
        let z = self.shift(x, SHIFT);
        let ln_z = self.map(MapFn::Log, &z);
        // (z − ½) ln z − z + ½ ln 2π + 1/(12z) − 1/(360z³) + 1/(1260z⁵)
        let zm = self.shift(&z, -0.5);
        let a = self.zip(ZipFn::Mul, &zm, &ln_z);
        let a = self.zip(ZipFn::Sub, &a, &z);
        let a = self.shift(&a, 0.5 * (2.0 * std::f64::consts::PI).ln());
        let inv = self.reciprocal(&z);
        let inv2 = self.map(MapFn::Square, &inv);
        // inv * (1/12 − inv2 * (1/360 − inv2 * (1/1260 − inv2 / 1680)))
        let s = self.scale(&inv2, -1.0 / 1680.0);
        let s = self.shift(&s, 1.0 / 1260.0);
        let s = self.zip(ZipFn::Mul, &inv2, &s);
        let s = self.scale(&s, -1.0);
        let s = self.shift(&s, 1.0 / 360.0);
        let s = self.zip(ZipFn::Mul, &inv2, &s);
        let s = self.scale(&s, -1.0);
        let s = self.shift(&s, 1.0 / 12.0);
        let s = self.zip(ZipFn::Mul, &inv, &s);
        let stirling = self.zip(ZipFn::Add, &a, &s);
        self.zip(ZipFn::Sub, &stirling, &log_prod)
    }

    /// ψ(x) for x > 0: ψ(x) = ψ(x + 8) − Σ 1/(x + k), then the asymptotic series.
    pub(super) fn digamma(&mut self, x: &Array) -> Array {
        let mut acc = self.reciprocal(x);
        for k in 1..SHIFT as usize {
            let xk = self.shift(x, k as f64);
            let r = self.reciprocal(&xk);
            acc = self.zip(ZipFn::Add, &acc, &r);
        }
        let z = self.shift(x, SHIFT);
        let ln_z = self.map(MapFn::Log, &z);
        let inv = self.reciprocal(&z);
        let inv2 = self.map(MapFn::Square, &inv);
        // ln z − 1/(2z) − inv2 (1/12 − inv2 (1/120 − inv2 (1/252 − inv2 / 240)))
        let s = self.scale(&inv2, -1.0 / 240.0);
        let s = self.shift(&s, 1.0 / 252.0);
        let s = self.zip(ZipFn::Mul, &inv2, &s);
        let s = self.scale(&s, -1.0);
        let s = self.shift(&s, 1.0 / 120.0);
        let s = self.zip(ZipFn::Mul, &inv2, &s);
        let s = self.scale(&s, -1.0);
        let s = self.shift(&s, 1.0 / 12.0);
        let s = self.zip(ZipFn::Mul, &inv2, &s);
        let half = self.scale(&inv, 0.5);
        let r = self.zip(ZipFn::Sub, &ln_z, &half);
        let r = self.zip(ZipFn::Sub, &r, &s);
        self.zip(ZipFn::Sub, &r, &acc)
    }

    /// 1 / x
    pub fn reciprocal(&mut self, x: &Array) -> Array {
        let one = self.full(1.0, x.shape());
        self.zip(ZipFn::Div, &one, x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Precision;

    #[test]
    fn lgamma_and_digamma_match_the_reference_to_1e_10() {
        let xs = [0.001, 0.1, 0.5, 1.0, 1.5, 2.0, 3.7, 10.0, 123.456, 1e4];
        let mut s = Session::new(Precision::F64);
        let a = s.array(&xs, &[xs.len()]);
        let lg = s.map(MapFn::LGamma, &a);
        let dg = s.map(MapFn::Digamma, &a);
        for ((x, l), d) in xs.iter().zip(s.values(&lg)).zip(s.values(&dg)) {
            let (wl, wd) = (crate::special::lgamma(*x), crate::special::digamma(*x));
            assert!(
                (l - wl).abs() <= 1e-10 * wl.abs().max(1.0),
                "lgamma({x}) = {l}, want {wl}"
            );
            assert!(
                (d - wd).abs() <= 1e-10 * wd.abs().max(1.0),
                "digamma({x}) = {d}, want {wd}"
            );
        }
    }

    #[test]
    fn softplus_keeps_its_relative_precision_and_gradient_far_out() {
        // In f32, ln(1 + exp(x)) rounds to 0 below x ≈ -17; a softplus scale must not.
        let xs = [-80.0, -30.0, -17.0, -5.0, 0.0, 5.0, 30.0, 80.0];
        let mut s = Session::new(Precision::F32);
        let p = s.param(&xs, &[xs.len()]);
        let x = s.leaf(&p);
        let y = s.map(MapFn::Softplus, &x);
        let values = s.values(&y);
        let total = s.sum(&y);
        let mut g = s.backward(&total);
        for ((x, v), d) in xs.iter().zip(values).zip(s.grad(&mut g, &p)) {
            let want = if *x > 30.0 { *x } else { x.exp().ln_1p() };
            assert!(
                (v - want).abs() <= 1e-6 * want,
                "softplus({x}) = {v}, want {want}"
            );
            let sigmoid = 1.0 / (1.0 + (-x).exp());
            assert!(
                (d - sigmoid).abs() <= 1e-6 * sigmoid.max(1e-30) + 1e-12,
                "softplus'({x}) = {d}, want {sigmoid}"
            );
        }
    }

    #[test]
    fn log1p_and_log1m_keep_small_arguments() {
        let xs = [1e-10, -1e-9, 1e-5, 0.5, -0.5, 3.0, 1e6];
        for precision in [Precision::F32, Precision::F64] {
            let mut s = Session::new(precision);
            let p = s.param(&xs, &[xs.len()]);
            let x = s.leaf(&p);
            let y = s.map(MapFn::Log1p, &x);
            let m = s.map(MapFn::Log1m, &x);
            let (values, minus) = (s.values(&y), s.values(&m));
            let total = s.sum(&y);
            let mut g = s.backward(&total);
            let tol = if precision == Precision::F32 { 1e-6 } else { 1e-14 };
            for (((x, v), vm), d) in xs.iter().zip(values).zip(minus).zip(s.grad(&mut g, &p)) {
                // x as the session holds it (f32 rounds it).
                let x = if precision == Precision::F32 {
                    f64::from(*x as f32)
                } else {
                    *x
                };
                let want = x.ln_1p();
                assert!(
                    (v - want).abs() <= tol * want.abs(),
                    "log1p({x}) = {v}, want {want}"
                );
                let dwant = 1.0 / (1.0 + x);
                assert!(
                    (d - dwant).abs() <= tol * dwant,
                    "log1p'({x}) = {d}, want {dwant}"
                );
                if x < 1.0 {
                    let want = (-x).ln_1p();
                    assert!(
                        (vm - want).abs() <= tol * want.abs(),
                        "log1m({x}) = {vm}, want {want}"
                    );
                }
            }
            // The ends: log1p(∞) = ∞, log1p(-1) = -∞, log1m(-∞) = ∞, log1m(1) = -∞.
            let ends = s.array(&[f64::INFINITY, -1.0, f64::NEG_INFINITY, 1.0], &[4]);
            let p = s.map(MapFn::Log1p, &ends);
            let m = s.map(MapFn::Log1m, &ends);
            let (p, m) = (s.values(&p), s.values(&m));
            assert_eq!((p[0], p[1]), (f64::INFINITY, f64::NEG_INFINITY), "{p:?}");
            assert_eq!((m[2], m[3]), (f64::INFINITY, f64::NEG_INFINITY), "{m:?}");
        }
    }

    #[test]
    fn lgamma_differentiates_to_digamma() {
        let xs = [0.3, 1.0, 2.5, 7.0, 40.0];
        let mut s = Session::new(Precision::F64);
        let p = s.param(&xs, &[xs.len()]);
        let x = s.leaf(&p);
        let lg = s.map(MapFn::LGamma, &x);
        let total = s.sum(&lg);
        let mut g = s.backward(&total);
        for (x, d) in xs.iter().zip(s.grad(&mut g, &p)) {
            let want = crate::special::digamma(*x);
            assert!(
                (d - want).abs() < 1e-9 * want.abs().max(1.0),
                "d lgamma({x}) = {d}, want {want}"
            );
        }
    }
}
