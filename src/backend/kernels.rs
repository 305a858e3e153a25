//! Fused kernels for the hot loops that a chain of tensor ops would run as many memory passes.
//!
//! A categorical assignment in an exponential-family mixture is the one place where CAVI
//! touches every data point every sweep: responsibilities φ_ik ∝ exp(η_k · T(x_i)), and the
//! expected sufficient statistics Σ_i φ_ik T(x_i) that every other update needs. As separate
//! ops that is a matrix product, a log-softmax (four passes), an exponential, a product and two
//! reductions over an N×K array; fused, it is one pass over the statistics T, in blocks of rows
//! whose exponentials vectorise, split across threads.

use rayon::prelude::*;

/// What [`responsibilities`] returns besides φ.
#[derive(Clone, Debug, PartialEq)]
pub struct MixtureSums {
    /// Σ_i φ_ik T_s(x_i), row-major `[K, S]`.
    pub stats: Vec<f64>,
    /// −Σ_ik φ_ik ln φ_ik.
    pub entropy: f64,
}

/// Rows per block: the exponentials of a block are one vectorisable loop, and the product of
/// its normalisers (each in [1, K]) stays finite for K up to 2^15, so one logarithm serves it.
const BLOCK: usize = 64;
/// Rows per parallel task.
const CHUNK: usize = 32_768;

/// For data statistics `t` (`[N, S]`, row-major) and natural parameters `eta` (`[S, K]`):
/// φ_i = softmax_k(Σ_s t_is η_sk), written to `phi` (`[N, K]`), with the sums of
/// [`MixtureSums`].
pub fn responsibilities(t: &[f64], eta: &[f64], s: usize, k: usize, phi: &mut [f64]) -> MixtureSums {
    let n = t.len() / s;
    assert_eq!(phi.len(), n * k);
    assert_eq!(eta.len(), s * k);
    assert!(k <= 1 << 15, "at most 32768 components");
    let partial: Vec<(Vec<f64>, f64)> = phi
        .par_chunks_mut(CHUNK * k)
        .zip(t.par_chunks(CHUNK * s))
        .map(|(phi, t)| {
            let mut stats = vec![0.0; k * s];
            let mut entropy = 0.0;
            run_chunk(t, eta, s, k, phi, &mut stats, &mut entropy);
            (stats, entropy)
        })
        .collect();
    let mut stats = vec![0.0; k * s];
    let mut entropy = 0.0;
    for (st, e) in partial {
        for (a, b) in stats.iter_mut().zip(st) {
            *a += b;
        }
        entropy += e;
    }
    MixtureSums { stats, entropy }
}

/// Pick the widest instruction set the processor has for the chunk's loops.
fn run_chunk(
    t: &[f64],
    eta: &[f64],
    s: usize,
    k: usize,
    phi: &mut [f64],
    stats: &mut [f64],
    entropy: &mut f64,
) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            // SAFETY: the features the function is compiled for were just detected.
            unsafe { chunk_avx2(t, eta, s, k, phi, stats, entropy) };
            return;
        }
    }
    chunk(t, eta, s, k, phi, stats, entropy);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn chunk_avx2(
    t: &[f64],
    eta: &[f64],
    s: usize,
    k: usize,
    phi: &mut [f64],
    stats: &mut [f64],
    entropy: &mut f64,
) {
    chunk(t, eta, s, k, phi, stats, entropy);
}

#[inline(always)]
fn chunk(t: &[f64], eta: &[f64], s: usize, k: usize, phi: &mut [f64], stats: &mut [f64], entropy: &mut f64) {
    // The common statistics lengths get loops the compiler can unroll.
    match s {
        2 => chunk_s::<2>(t, eta, k, phi, stats, entropy),
        3 => chunk_s::<3>(t, eta, k, phi, stats, entropy),
        _ => chunk_dyn(t, eta, s, k, phi, stats, entropy),
    }
}

#[inline(always)]
fn chunk_s<const S: usize>(
    t: &[f64],
    eta: &[f64],
    k: usize,
    phi: &mut [f64],
    stats: &mut [f64],
    entropy: &mut f64,
) {
    // η by component: [K][S].
    let eta_k: Vec<[f64; S]> = (0..k).map(|j| std::array::from_fn(|q| eta[q * k + j])).collect();
    let mut acc: Vec<[f64; S]> = vec![[0.0; S]; k];
    let mut shifted = vec![0.0; BLOCK * k];
    for (tb, pb) in t.chunks(BLOCK * S).zip(phi.chunks_mut(BLOCK * k)) {
        let rows = tb.len() / S;
        let buf = &mut shifted[..rows * k];
        for (row, l) in tb.chunks_exact(S).zip(buf.chunks_exact_mut(k)) {
            let mut max = f64::NEG_INFINITY;
            for (lj, e) in l.iter_mut().zip(&eta_k) {
                let mut v = 0.0;
                for q in 0..S {
                    v += row[q] * e[q];
                }
                *lj = v;
                max = max.max(v);
            }
            for lj in l.iter_mut() {
                *lj -= max;
            }
        }
        for (p, l) in pb.iter_mut().zip(buf.iter()) {
            *p = exp_nonpositive(*l);
        }
        let mut norm_product = 1.0;
        for ((p, l), row) in pb
            .chunks_exact_mut(k)
            .zip(buf.chunks_exact(k))
            .zip(tb.chunks_exact(S))
        {
            let total: f64 = p.iter().sum();
            norm_product *= total;
            let inv = 1.0 / total;
            let mut dot = 0.0;
            for ((pj, lj), a) in p.iter_mut().zip(l).zip(acc.iter_mut()) {
                *pj *= inv;
                dot += *pj * lj;
                for q in 0..S {
                    a[q] += *pj * row[q];
                }
            }
            *entropy -= dot;
        }
        *entropy += norm_product.ln();
    }
    for (j, a) in acc.iter().enumerate() {
        for q in 0..S {
            stats[j * S + q] += a[q];
        }
    }
}

fn chunk_dyn(
    t: &[f64],
    eta: &[f64],
    s: usize,
    k: usize,
    phi: &mut [f64],
    stats: &mut [f64],
    entropy: &mut f64,
) {
    let mut shifted = vec![0.0; BLOCK * k];
    for (tb, pb) in t.chunks(BLOCK * s).zip(phi.chunks_mut(BLOCK * k)) {
        let rows = tb.len() / s;
        let buf = &mut shifted[..rows * k];
        for (row, l) in tb.chunks_exact(s).zip(buf.chunks_exact_mut(k)) {
            for (j, lj) in l.iter_mut().enumerate() {
                *lj = row.iter().enumerate().map(|(q, ts)| ts * eta[q * k + j]).sum();
            }
            let max = l.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            for lj in l.iter_mut() {
                *lj -= max;
            }
        }
        for (p, l) in pb.iter_mut().zip(buf.iter()) {
            *p = exp_nonpositive(*l);
        }
        let mut norm_product = 1.0;
        for ((p, l), row) in pb
            .chunks_exact_mut(k)
            .zip(buf.chunks_exact(k))
            .zip(tb.chunks_exact(s))
        {
            let total: f64 = p.iter().sum();
            norm_product *= total;
            let inv = 1.0 / total;
            let mut dot = 0.0;
            for (j, (pj, lj)) in p.iter_mut().zip(l).enumerate() {
                *pj *= inv;
                dot += *pj * lj;
                for (q, ts) in row.iter().enumerate() {
                    stats[j * s + q] += *pj * ts;
                }
            }
            *entropy -= dot;
        }
        *entropy += norm_product.ln();
    }
}

/// e^x for x ≤ 0 (0 below −708), to within a few ulp: x = k ln 2 + r with |r| ≤ ln 2 / 2,
/// e^r by its Taylor series to r^13, scaled by 2^k through the exponent bits. Branch-free, so
/// loops over it vectorise.
#[inline(always)]
pub fn exp_nonpositive(x: f64) -> f64 {
    // ln 2 split so that k · LN2_HI is exact (fdlibm's constants).
    const LN2_HI: f64 = f64::from_bits(0x3FE6_2E42_FEE0_0000);
    const LN2_LO: f64 = f64::from_bits(0x3DEA_39EF_3579_3C76);
    const INV_LN2: f64 = std::f64::consts::LOG2_E;
    let xc = x.max(-708.0);
    let kf = (xc * INV_LN2).round();
    let r = (xc - kf * LN2_HI) - kf * LN2_LO;
    // Horner for Σ r^n / n!, n = 0..13.
    let mut p = 1.0 / 6_227_020_800.0;
    p = p * r + 1.0 / 479_001_600.0;
    p = p * r + 1.0 / 39_916_800.0;
    p = p * r + 1.0 / 3_628_800.0;
    p = p * r + 1.0 / 362_880.0;
    p = p * r + 1.0 / 40_320.0;
    p = p * r + 1.0 / 5_040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r + 1.0;
    let scale = f64::from_bits(((kf as i64 + 1023) as u64) << 52);
    let y = p * scale;
    if x < -708.0 {
        0.0
    } else {
        y
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exponential_is_accurate_to_a_few_ulp() {
        let mut worst: f64 = 0.0;
        let mut x: f64 = -700.0;
        while x <= 0.0 {
            let want = x.exp();
            let got = exp_nonpositive(x);
            worst = worst.max(((got - want) / want).abs());
            x += 0.01337;
        }
        assert!(worst < 1e-15, "worst relative error {worst}");
        assert_eq!(exp_nonpositive(-800.0), 0.0);
        assert_eq!(exp_nonpositive(0.0), 1.0);
    }

    #[test]
    fn matches_the_unfused_computation() {
        // T(x) = [x, x², 1] for 1000 points, three components.
        let xs: Vec<f64> = (0..1000).map(|i| (i as f64 * 0.37).sin() * 4.0).collect();
        let t: Vec<f64> = xs.iter().flat_map(|x| [*x, x * x, 1.0]).collect();
        let eta = [1.0, -0.5, 0.0, -0.5, -0.5, -0.2, -0.5, 0.3, -2.0];
        let k = 3;
        let mut phi = vec![0.0; xs.len() * k];
        let sums = responsibilities(&t, &eta, 3, k, &mut phi);
        let mut want_stats = [0.0; 9];
        let mut want_h = 0.0;
        for (i, x) in xs.iter().enumerate() {
            let l: Vec<f64> = (0..k)
                .map(|j| x * eta[j] + x * x * eta[k + j] + eta[2 * k + j])
                .collect();
            let z: f64 = l.iter().map(|v| v.exp()).sum();
            for j in 0..k {
                let p = l[j].exp() / z;
                assert!((phi[i * k + j] - p).abs() < 1e-13);
                want_h -= p * p.ln();
                for (q, ts) in [*x, x * x, 1.0].iter().enumerate() {
                    want_stats[j * 3 + q] += p * ts;
                }
            }
        }
        for (a, b) in sums.stats.iter().zip(want_stats) {
            assert!((a - b).abs() < 1e-9 * b.abs().max(1.0), "{a} vs {b}");
        }
        assert!(
            (sums.entropy - want_h).abs() < 1e-9 * want_h.abs(),
            "{} vs {want_h}",
            sums.entropy
        );
    }
}
