//! Bijections from unconstrained space onto each latent support (ADVI), with log-Jacobians.
//!
//! The automatic guide is a Gaussian over the unconstrained values; these maps carry its draws
//! into the latents' supports, and their log-determinants correct the density.

use crate::backend::Session;
use crate::dist::Domain;
use crate::graph::{MapFn, ZipFn};
use crate::interpret::{map, zip, Layout, Value};

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Bijection {
    Identity,
    /// Positive reals: x = exp(z).
    Exp,
    /// (lo, hi): x = lo + (hi − lo) σ(z); the unit interval is (0, 1).
    Interval(f64, f64),
    /// (lo, ∞): x = lo + exp(z) (a truncation's lower bound).
    Above(f64),
    /// (−∞, hi): x = hi − exp(z).
    Below(f64),
    /// The simplex: stick-breaking from K − 1 reals (as NumPyro's StickBreakingTransform).
    StickBreaking,
    /// Increasing vectors: x_1 = z_1 (exp(z_1) when `positive`), x_k = x_{k−1} + exp(z_k), as
    /// Stan's `ordered` and `positive_ordered`.
    Ordered {
        positive: bool,
    },
    /// Cholesky factors of K×K correlation matrices from K(K−1)/2 reals: tanh gives the
    /// canonical partial correlations, which fill the rows as Stan's `cholesky_factor_corr`.
    CorrCholesky,
}

impl Bijection {
    /// The bijection for a continuous support, or `None` for discrete ones.
    pub fn for_domain(d: Domain) -> Option<Bijection> {
        match d {
            Domain::Real => Some(Bijection::Identity),
            Domain::Positive => Some(Bijection::Exp),
            Domain::Unit => Some(Bijection::Interval(0.0, 1.0)),
            Domain::Interval(lo, f64::INFINITY) => Some(Bijection::Above(lo)),
            Domain::Interval(f64::NEG_INFINITY, hi) => Some(Bijection::Below(hi)),
            Domain::Interval(lo, hi) => Some(Bijection::Interval(lo, hi)),
            Domain::Simplex => Some(Bijection::StickBreaking),
            Domain::Ordered => Some(Bijection::Ordered { positive: false }),
            Domain::PositiveOrdered => Some(Bijection::Ordered { positive: true }),
            Domain::CorrCholesky => Some(Bijection::CorrCholesky),
            _ => None,
        }
    }

    /// The unconstrained shape for a constrained value shape.
    pub fn unconstrained_shape(self, shape: &[usize]) -> Vec<usize> {
        let mut s = shape.to_vec();
        match self {
            Bijection::StickBreaking => {
                if let Some(k) = s.last_mut() {
                    *k -= 1;
                }
            }
            Bijection::CorrCholesky => {
                let k = s.pop().expect("a matrix");
                s.pop();
                s.push(k * (k - 1) / 2);
            }
            _ => {}
        }
        s
    }

    /// Map unconstrained values into the support; also log |det J| per element (summed over
    /// the simplex axis for stick-breaking, per matrix for correlation factors).
    pub fn forward(self, s: &mut Session, z: &Value) -> (Value, Value) {
        match self {
            Bijection::Identity => {
                let zero = Value::new(s.full(0.0, &z.lay.dims()), z.lay.clone());
                (z.clone(), zero)
            }
            Bijection::Exp => (map(s, MapFn::Exp, z), z.clone()),
            Bijection::Above(lo) => {
                let e = map(s, MapFn::Exp, z);
                (Value::new(s.shift(&e.arr, lo), z.lay.clone()), z.clone())
            }
            Bijection::Below(hi) => {
                let e = map(s, MapFn::Exp, z);
                let x = Value::new(s.scale(&e.arr, -1.0), z.lay.clone());
                (Value::new(s.shift(&x.arr, hi), z.lay.clone()), z.clone())
            }
            Bijection::Interval(lo, hi) => {
                let sg = map(s, MapFn::Sigmoid, z);
                let x = Value::new(s.scale(&sg.arr, hi - lo), z.lay.clone());
                let x = Value::new(s.shift(&x.arr, lo), z.lay.clone());
                // log σ(z) + log(1 − σ(z)) = −softplus(−z) − softplus(z)
                let nz = Value::new(s.scale(&z.arr, -1.0), z.lay.clone());
                let a = map(s, MapFn::Softplus, &nz);
                let b = map(s, MapFn::Softplus, z);
                let ld = zip(s, ZipFn::Add, &a, &b);
                let ld = Value::new(s.scale(&ld.arr, -1.0), z.lay.clone());
                let ld = Value::new(s.shift(&ld.arr, (hi - lo).ln()), z.lay.clone());
                (x, ld)
            }
            Bijection::StickBreaking => stick_breaking(s, z),
            Bijection::Ordered { positive } => ordered(s, z, positive),
            Bijection::CorrCholesky => corr_cholesky(s, z),
        }
    }

    /// Map a constrained value back (for initialisation from a point).
    pub fn inverse(self, x: &[f64]) -> Vec<f64> {
        match self {
            Bijection::Identity => x.to_vec(),
            Bijection::Exp => x.iter().map(|v| v.ln()).collect(),
            Bijection::Above(lo) => x.iter().map(|v| (v - lo).max(1e-300).ln()).collect(),
            Bijection::Below(hi) => x.iter().map(|v| (hi - v).max(1e-300).ln()).collect(),
            Bijection::Interval(lo, hi) => x
                .iter()
                .map(|v| {
                    let u = ((v - lo) / (hi - lo)).clamp(1e-12, 1.0 - 1e-12);
                    (u / (1.0 - u)).ln()
                })
                .collect(),
            Bijection::Ordered { positive } => {
                // One vector: the first value, then the logs of the increments.
                let mut out = Vec::with_capacity(x.len());
                for (i, v) in x.iter().enumerate() {
                    out.push(match i {
                        0 if positive => v.max(1e-300).ln(),
                        0 => *v,
                        _ => (v - x[i - 1]).max(1e-300).ln(),
                    });
                }
                out
            }
            Bijection::CorrCholesky => {
                // w_ij = L_ij / sqrt(1 − Σ_{k<j} L_ik²), z = atanh(w), row by row.
                let k = (x.len() as f64).sqrt().round() as usize;
                let mut out = Vec::with_capacity(k * (k - 1) / 2);
                for i in 1..k {
                    let mut rest = 1.0f64;
                    for j in 0..i {
                        let l = x[i * k + j];
                        let w = (l / rest.max(1e-300).sqrt()).clamp(-1.0 + 1e-12, 1.0 - 1e-12);
                        out.push(w.atanh());
                        rest -= l * l;
                    }
                }
                out
            }
            Bijection::StickBreaking => {
                let k = x.len();
                let mut out = Vec::with_capacity(k - 1);
                let mut rem = 1.0;
                for (i, v) in x.iter().take(k - 1).enumerate() {
                    let z = (v / rem).clamp(1e-12, 1.0 - 1e-12);
                    out.push((z / (1.0 - z)).ln() + ((k - 1 - i) as f64).ln());
                    rem -= v;
                }
                out
            }
        }
    }
}

/// z: [..., K] → increasing x: the increments are z_1 (or exp(z_1)) and exp(z_k), summed
/// along the last axis (`interpret::cumsum`). The Jacobian is
/// triangular: log |det J| = Σ_{k>1} z_k (+ z_1 when positive), given per element.
fn ordered(s: &mut Session, z: &Value, positive: bool) -> (Value, Value) {
    let k = *z.lay.shape.last().expect("an ordered vector needs an axis");
    let rest: Vec<f64> = (0..k)
        .map(|i| if i == 0 && !positive { 0.0 } else { 1.0 })
        .collect();
    let first: Vec<f64> = rest.iter().map(|r| 1.0 - r).collect();
    let rest = Value::new(s.array(&rest, &[k]), Layout::of_shape(vec![k]));
    let first = Value::new(s.array(&first, &[k]), Layout::of_shape(vec![k]));
    // z_1 is zeroed before exp where it is not exponentiated, so it cannot overflow there.
    let logdet = zip(s, ZipFn::Mul, z, &rest);
    let grown = map(s, MapFn::Exp, &logdet);
    let grown = zip(s, ZipFn::Mul, &grown, &rest);
    let start = zip(s, ZipFn::Mul, z, &first);
    let steps = zip(s, ZipFn::Add, &grown, &start);
    (crate::interpret::cumsum(s, &steps), logdet)
}

/// The strictly lower triangle's positions (i, j), row by row: the order of the unconstrained
/// values of a K×K correlation factor.
fn lower_pairs(k: usize) -> Vec<(usize, usize)> {
    (1..k).flat_map(|i| (0..i).map(move |j| (i, j))).collect()
}

/// z: [..., M] → L: [..., K, K] with M = K(K−1)/2. With w = tanh(z) and
/// s_ij = ln(1 − w_ij²) = 2(ln 2 + z − softplus(2z)), the row remainders are products:
/// 1 − Σ_{k<j} L_ik² = Π_{k<j} (1 − w_ik²), so L_ij = w_ij exp(½ Σ_{k<j} s_ik) for j < i and
/// L_ii = exp(½ Σ_{k<i} s_ik); both sums are one product with a constant matrix. The Jacobian of
/// the strictly lower entries is triangular: log |det J| = Σ_ij s_ij (1 + ½ (i − j − 1)).
fn corr_cholesky(s: &mut Session, z: &Value) -> (Value, Value) {
    let m = *z.lay.shape.last().expect("a correlation factor has values");
    let k = (1..).find(|k| k * (k - 1) / 2 >= m).expect("some K");
    assert_eq!(k * (k - 1) / 2, m, "K(K−1)/2 unconstrained values");
    let rows = z.arr.len() / m.max(1);
    let pairs = lower_pairs(k);
    let w = map(s, MapFn::Tanh, z);
    let two_z = Value::new(s.scale(&z.arr, 2.0), z.lay.clone());
    let sp = map(s, MapFn::Softplus, &two_z);
    let log_rest = zip(s, ZipFn::Sub, z, &sp);
    let log_rest = Value::new(s.shift(&log_rest.arr, std::f64::consts::LN_2), z.lay.clone());
    let log_rest = Value::new(s.scale(&log_rest.arr, 2.0), z.lay.clone());
    // half[(i, j), (i, k)] = ½ for k < j ≤ i; place[(i, j), (i, j)] = 1 for j < i.
    let (mut half, mut place) = (vec![0.0; k * k * m], vec![0.0; k * k * m]);
    let mut unit = vec![0.0; k * k];
    for (p, &(i, kk)) in pairs.iter().enumerate() {
        for j in kk + 1..=i {
            half[(i * k + j) * m + p] = 0.5;
        }
        place[(i * k + kk) * m + p] = 1.0;
    }
    for i in 0..k {
        unit[i * k + i] = 1.0;
    }
    let (half, place) = (s.array(&half, &[k * k, m]), s.array(&place, &[k * k, m]));
    let flat_rest = log_rest.arr.reshaped(&[rows, m]);
    let scale = s.matmul_t(&flat_rest, &half);
    let scale = s.map(MapFn::Exp, &scale);
    let placed = s.matmul_t(&w.arr.reshaped(&[rows, m]), &place);
    let flat = Layout::of_shape(vec![rows, k * k]);
    let unit = Value::new(s.array(&unit, &[k * k]), Layout::of_shape(vec![k * k]));
    let placed = zip(s, ZipFn::Add, &Value::new(placed, flat.clone()), &unit);
    let l = zip(s, ZipFn::Mul, &placed, &Value::new(scale, flat)).arr;
    let mut lay = z.lay.clone();
    lay.shape.pop();
    lay.shape.extend([k, k]);
    let x = Value::new(l.reshaped(&lay.dims()), lay);
    let weights: Vec<f64> = pairs
        .iter()
        .map(|&(i, j)| 1.0 + 0.5 * (i - j - 1) as f64)
        .collect();
    let weights = s.array(&weights, &[1, m]);
    let ld = s.matmul_t(&flat_rest, &weights);
    let mut dl = z.lay.clone();
    dl.shape.pop();
    let ld = Value::new(ld.reshaped(&dl.dims()), dl);
    (x, ld)
}

/// z: [..., K−1] → x on the K-simplex. With σ_i = σ(z_i − ln(K−1−i)) and R_i = Π_{j<i}(1 − σ_j):
/// x_i = σ_i R_i for i < K−1, x_{K−1} = R_{K−1}; log |det J| = Σ_i ln σ_i + ln(1 − σ_i) + ln R_i.
fn stick_breaking(s: &mut Session, z: &Value) -> (Value, Value) {
    let km1 = *z.lay.shape.last().expect("a simplex needs an axis");
    let k = km1 + 1;
    let rows = z.arr.len() / km1.max(1);
    let offsets: Vec<f64> = (0..km1).map(|i| -((km1 - i) as f64).ln()).collect();
    let off = Value::new(s.array(&offsets, &[km1]), Layout::of_shape(vec![km1]));
    let zs = zip(s, ZipFn::Add, z, &off);
    let neg = Value::new(s.scale(&zs.arr, -1.0), zs.lay.clone());
    let log_sig = map(s, MapFn::Softplus, &neg);
    let log_sig = Value::new(s.scale(&log_sig.arr, -1.0), zs.lay.clone()); // ln σ
    let log_1m = map(s, MapFn::Softplus, &zs);
    let log_1m = Value::new(s.scale(&log_1m.arr, -1.0), zs.lay.clone()); // ln(1 − σ)
                                                                         // ln R over K positions: ln R_i = Σ_{j<i} ln(1 − σ_j), as one product with a 0/1 matrix.
    let mut m = vec![0.0; k * km1];
    for i in 0..k {
        for j in 0..i.min(km1) {
            m[i * km1 + j] = 1.0;
        }
    }
    let m = s.array(&m, &[k, km1]);
    let log_r = s.matmul_t(&log_1m.arr.reshaped(&[rows, km1]), &m); // [rows, K]
    let r = s.map(MapFn::Exp, &log_r);
    // x_i = R_i − R_{i+1} (i < K−1), x_{K−1} = R_{K−1}: one more 0/±1 matrix.
    let mut d = vec![0.0; k * k];
    for i in 0..k {
        d[i * k + i] = 1.0;
        if i + 1 < k {
            d[i * k + i + 1] = -1.0;
        }
    }
    let d = s.array(&d, &[k, k]);
    let x = s.matmul_t(&r, &d);
    let mut lay = z.lay.clone();
    *lay.shape.last_mut().expect("checked") = k;
    let x = Value::new(x.reshaped(&lay.dims()), lay);
    // ln R_i for i < K−1
    let mut sel = vec![0.0; km1 * k];
    for i in 0..km1 {
        sel[i * k + i] = 1.0;
    }
    let sel = s.array(&sel, &[km1, k]);
    let log_r_first = s.matmul_t(&log_r, &sel);
    let log_r_first = Value::new(log_r_first.reshaped(&zs.lay.dims()), zs.lay.clone());
    let ld = zip(s, ZipFn::Add, &log_sig, &log_1m);
    let ld = zip(s, ZipFn::Add, &ld, &log_r_first);
    let n = ld.lay.dims().len();
    let summed = s.sum_axes(&ld.arr, n - 1, n);
    let mut dl = zs.lay.clone();
    dl.shape.pop();
    (x, Value::new(summed, dl))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Precision;

    #[test]
    fn stick_breaking_lands_on_the_simplex_and_inverts() {
        let mut s = Session::new(Precision::F64);
        let zv = [0.3, -1.2, 2.0];
        let z = Value::new(s.array(&zv, &[3]), Layout::of_shape(vec![3]));
        let (x, _) = Bijection::StickBreaking.forward(&mut s, &z);
        let xv = s.values(&x.arr);
        assert_eq!(xv.len(), 4);
        assert!((xv.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert!(xv.iter().all(|v| *v > 0.0));
        let back = Bijection::StickBreaking.inverse(&xv);
        for (a, b) in back.iter().zip(zv) {
            assert!((a - b).abs() < 1e-9, "{back:?}");
        }
        // zero maps to the uniform point
        let z0 = Value::new(s.array(&[0.0, 0.0], &[2]), Layout::of_shape(vec![2]));
        let (x0, _) = Bijection::StickBreaking.forward(&mut s, &z0);
        for v in s.values(&x0.arr) {
            assert!((v - 1.0 / 3.0).abs() < 1e-12);
        }
    }

    #[test]
    fn log_jacobians_match_finite_differences() {
        // For a scalar bijection, log |dx/dz| by central differences.
        for b in [
            Bijection::Exp,
            Bijection::Above(-1.5),
            Bijection::Below(2.0),
            Bijection::Interval(0.0, 1.0),
            Bijection::Interval(-2.0, 5.0),
        ] {
            let mut s = Session::new(Precision::F64);
            let z0 = 0.37;
            let h = 1e-6;
            let at = |s: &mut Session, z: f64| {
                let v = Value::new(s.scalar(z), Layout::scalar());
                let (x, ld) = b.forward(s, &v);
                (s.value(&x.arr), s.value(&ld.arr))
            };
            let (xp, _) = at(&mut s, z0 + h);
            let (xm, _) = at(&mut s, z0 - h);
            let (_, ld) = at(&mut s, z0);
            let fd = ((xp - xm) / (2.0 * h)).abs().ln();
            assert!((fd - ld).abs() < 1e-6, "{b:?}: {fd} vs {ld}");
        }
    }

    /// Both ordered maps: increasing (and positive) values, the inverse, and log |det J| (the
    /// full 3×3 Jacobian's determinant by central differences) against the per-element terms.
    #[test]
    fn ordered_maps_increase_invert_and_have_their_log_jacobian() {
        for positive in [false, true] {
            let b = Bijection::Ordered { positive };
            let mut s = Session::new(Precision::F64);
            let z0 = [0.4, -0.7, 1.1];
            let f = |s: &mut Session, z: &[f64]| {
                let v = Value::new(s.array(z, &[3]), Layout::of_shape(vec![3]));
                let (x, ld) = b.forward(s, &v);
                (s.values(&x.arr), s.values(&ld.arr).iter().sum::<f64>())
            };
            let (x, ld) = f(&mut s, &z0);
            assert!(x[0] < x[1] && x[1] < x[2], "{x:?}");
            assert!(!positive || x[0] > 0.0);
            for (a, b) in b.inverse(&x).iter().zip(z0) {
                assert!((a - b).abs() < 1e-9);
            }
            let h = 1e-6;
            let mut jac = [[0.0; 3]; 3];
            for j in 0..3 {
                let (mut zp, mut zm) = (z0, z0);
                zp[j] += h;
                zm[j] -= h;
                let (xp, _) = f(&mut s, &zp);
                let (xm, _) = f(&mut s, &zm);
                for i in 0..3 {
                    jac[i][j] = (xp[i] - xm[i]) / (2.0 * h);
                }
            }
            let det = jac[0][0] * (jac[1][1] * jac[2][2] - jac[1][2] * jac[2][1])
                - jac[0][1] * (jac[1][0] * jac[2][2] - jac[1][2] * jac[2][0])
                + jac[0][2] * (jac[1][0] * jac[2][1] - jac[1][1] * jac[2][0]);
            assert!(
                (det.abs().ln() - ld).abs() < 1e-6,
                "positive {positive}: {} vs {ld}",
                det.abs().ln()
            );
        }
    }

    #[test]
    fn stick_breaking_log_jacobian_matches_finite_differences() {
        // det of the (K−1)×(K−1) Jacobian of the first K−1 coordinates.
        let mut s = Session::new(Precision::F64);
        let z0 = [0.2, -0.5];
        let f = |s: &mut Session, z: &[f64]| {
            let v = Value::new(s.array(z, &[2]), Layout::of_shape(vec![2]));
            let (x, ld) = Bijection::StickBreaking.forward(s, &v);
            (s.values(&x.arr), s.value(&ld.arr))
        };
        let h = 1e-6;
        let mut jac = [[0.0; 2]; 2];
        for j in 0..2 {
            let mut zp = z0;
            zp[j] += h;
            let mut zm = z0;
            zm[j] -= h;
            let (xp, _) = f(&mut s, &zp);
            let (xm, _) = f(&mut s, &zm);
            for i in 0..2 {
                jac[i][j] = (xp[i] - xm[i]) / (2.0 * h);
            }
        }
        let det = jac[0][0] * jac[1][1] - jac[0][1] * jac[1][0];
        let (_, ld) = f(&mut s, &z0);
        assert!((det.abs().ln() - ld).abs() < 1e-6, "{} vs {ld}", det.abs().ln());
    }

    /// The correlation factor: rows of unit length, positive diagonal, the inverse, and log |det J|
    /// of the map onto the 6 strictly lower entries (K = 4) by central differences, and NumPyro's
    /// CorrCholeskyTransform's log-Jacobian at the same L (−3.7630604658256512).
    #[test]
    fn correlation_factors_have_unit_rows_invert_and_have_their_log_jacobian() {
        let mut s = Session::new(Precision::F64);
        let z0 = [0.3, -0.8, 0.5, 1.1, -0.2, 0.7];
        let pairs = lower_pairs(4);
        let f = |s: &mut Session, z: &[f64]| {
            let v = Value::new(s.array(z, &[6]), Layout::of_shape(vec![6]));
            let (x, ld) = Bijection::CorrCholesky.forward(s, &v);
            assert_eq!(x.lay.shape, vec![4, 4]);
            (s.values(&x.arr), s.value(&ld.arr))
        };
        let (l, ld) = f(&mut s, &z0);
        for i in 0..4 {
            let norm: f64 = (0..4).map(|j| l[i * 4 + j] * l[i * 4 + j]).sum();
            assert!((norm - 1.0).abs() < 1e-12, "row {i}: {norm}");
            assert!(l[i * 4 + i] > 0.0);
            assert!((i + 1..4).all(|j| l[i * 4 + j] == 0.0));
        }
        assert!((l[2 * 4] - -0.664036770267849).abs() < 1e-12, "{l:?}");
        for (a, b) in Bijection::CorrCholesky.inverse(&l).iter().zip(z0) {
            assert!((a - b).abs() < 1e-9);
        }
        let h = 1e-6;
        let mut jac = vec![0.0; 36];
        for c in 0..6 {
            let (mut zp, mut zm) = (z0, z0);
            zp[c] += h;
            zm[c] -= h;
            let (xp, _) = f(&mut s, &zp);
            let (xm, _) = f(&mut s, &zm);
            for (r, &(i, j)) in pairs.iter().enumerate() {
                jac[r * 6 + c] = (xp[i * 4 + j] - xm[i * 4 + j]) / (2.0 * h);
            }
        }
        // log |det J| = ½ ln det(JᵀJ).
        let mut jtj = vec![0.0; 36];
        for a in 0..6 {
            for b in 0..6 {
                jtj[a * 6 + b] = (0..6).map(|r| jac[r * 6 + a] * jac[r * 6 + b]).sum();
            }
        }
        let chol = crate::linalg::cholesky(&jtj, 6).expect("J is full rank");
        let fd = 0.5 * crate::linalg::log_det(&chol, 6);
        assert!((fd - ld).abs() < 1e-6, "{fd} vs {ld}");
        assert!((ld - -3.763_060_465_825_651).abs() < 1e-9, "{ld}");
    }
}
