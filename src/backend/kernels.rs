//! Fused kernels for the hot loops that a chain of tensor ops would run as many memory passes.
//!
//! A categorical assignment in an exponential-family mixture is the one place where CAVI
//! touches every data point every sweep: responsibilities φ_ik ∝ exp(η_k · T(x_i)), and the
//! expected sufficient statistics Σ_i φ_ik T(x_i) that every other update needs. As separate
//! ops that is a matrix product, a log-softmax (four passes), an exponential, a product and two
//! reductions over an N×K array; fused, it is one pass over the statistics T. The data are laid
//! out by column (each statistic contiguous) and processed in blocks of rows, so that every
//! inner loop — products, maxima, exponentials, sums — runs across rows and vectorises; chunks
//! of rows go to separate threads.

use rayon::prelude::*;

/// What [`responsibilities`] returns besides φ.
#[derive(Clone, Debug, PartialEq)]
pub struct MixtureSums {
    /// Σ_i φ_ik T_s(x_i), row-major `[K, S]`.
    pub stats: Vec<f64>,
    /// −Σ_ik φ_ik ln φ_ik.
    pub entropy: f64,
}

/// Rows per thread task.
pub const CHUNK: usize = 32_768;
/// Rows per vectorised block.
const BLOCK: usize = 256;
/// Rows whose normalisers (each in [1, K]) are multiplied before one logarithm: finite for K up
/// to 2^15.
const LOG_GROUP: usize = 64;

/// Responsibilities in chunk-blocked layout: chunk `c` (rows `c·CHUNK ..`) holds its `m` rows as
/// `[K, m]` at offset `c·K·CHUNK`, so that each thread writes one contiguous piece.
#[derive(Clone, Debug, PartialEq)]
pub struct Blocked {
    pub n: usize,
    pub k: usize,
    pub data: Vec<f64>,
}

impl Blocked {
    pub fn uniform(n: usize, k: usize) -> Blocked {
        Blocked {
            n,
            k,
            data: vec![1.0 / k as f64; n * k],
        }
    }

    /// Row-major `[N, K]`.
    pub fn to_row_major(&self) -> Vec<f64> {
        let (n, k) = (self.n, self.k);
        let mut out = vec![0.0; n * k];
        for (c, piece) in self.data.chunks(CHUNK * k).enumerate() {
            let m = piece.len() / k;
            for j in 0..k {
                for r in 0..m {
                    out[(c * CHUNK + r) * k + j] = piece[j * m + r];
                }
            }
        }
        out
    }
}

/// For data statistics `t` laid out by column (`t[q·n + i]` is statistic q of point i) and
/// natural parameters `eta` (`[S, K]`): φ_i = softmax_k(Σ_q t_qi η_qk), written to `phi`, with
/// the sums of [`MixtureSums`].
pub fn responsibilities(t: &[f64], s: usize, eta: &[f64], phi: &mut Blocked) -> MixtureSums {
    let (n, k) = (phi.n, phi.k);
    assert_eq!(t.len(), n * s);
    assert_eq!(eta.len(), s * k);
    assert!(k <= 1 << 15, "at most 32768 components");
    let chunk = |c: usize, out: &mut [f64]| {
        let r0 = c * CHUNK;
        let m = out.len() / k;
        let cols: Vec<&[f64]> = (0..s).map(|q| &t[q * n + r0..q * n + r0 + m]).collect();
        let mut stats = vec![0.0; k * s];
        let mut entropy = 0.0;
        run_chunk(&cols, eta, k, out, &mut stats, &mut entropy);
        (stats, entropy)
    };
    let partial: Vec<(Vec<f64>, f64)> = if n <= CHUNK {
        vec![chunk(0, &mut phi.data)]
    } else {
        phi.data
            .par_chunks_mut(CHUNK * k)
            .enumerate()
            .map(|(c, out)| chunk(c, out))
            .collect()
    };
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
fn run_chunk(cols: &[&[f64]], eta: &[f64], k: usize, out: &mut [f64], stats: &mut [f64], entropy: &mut f64) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            // SAFETY: the features the function is compiled for were just detected.
            unsafe { chunk_avx2(cols, eta, k, out, stats, entropy) };
            return;
        }
    }
    chunk(cols, eta, k, out, stats, entropy);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn chunk_avx2(
    cols: &[&[f64]],
    eta: &[f64],
    k: usize,
    out: &mut [f64],
    stats: &mut [f64],
    entropy: &mut f64,
) {
    chunk(cols, eta, k, out, stats, entropy);
}

/// One chunk: `out` is `[K, m]` for its `m` rows.
#[inline(always)]
fn chunk(cols: &[&[f64]], eta: &[f64], k: usize, out: &mut [f64], stats: &mut [f64], entropy: &mut f64) {
    let s = cols.len();
    let m = out.len() / k;
    let mut max = [0.0f64; BLOCK];
    let mut total = [0.0f64; BLOCK];
    let mut dot = [0.0f64; BLOCK];
    let mut logits = vec![0.0f64; k * BLOCK];
    let mut b0 = 0;
    while b0 < m {
        let b = BLOCK.min(m - b0);
        // Logits per component, across the block's rows.
        for j in 0..k {
            let l = &mut logits[j * BLOCK..j * BLOCK + b];
            l.fill(0.0);
            for (q, col) in cols.iter().enumerate() {
                let e = eta[q * k + j];
                for (li, ti) in l.iter_mut().zip(&col[b0..b0 + b]) {
                    *li += ti * e;
                }
            }
        }
        max[..b].fill(f64::NEG_INFINITY);
        for j in 0..k {
            for (mx, l) in max[..b].iter_mut().zip(&logits[j * BLOCK..j * BLOCK + b]) {
                *mx = mx.max(*l);
            }
        }
        // Shifted logits, their exponentials into `out`, and the normalisers.
        total[..b].fill(0.0);
        for j in 0..k {
            let l = &mut logits[j * BLOCK..j * BLOCK + b];
            let o = &mut out[j * m + b0..j * m + b0 + b];
            for (((li, oi), mx), tot) in l
                .iter_mut()
                .zip(o.iter_mut())
                .zip(&max[..b])
                .zip(total[..b].iter_mut())
            {
                *li -= mx;
                *oi = exp_nonpositive(*li);
                *tot += *oi;
            }
        }
        // Normalise; entropy_i = ln Σ_j e_ij − Σ_j φ_ij l_ij (l shifted).
        dot[..b].fill(0.0);
        for tot in total[..b].iter_mut() {
            *tot = 1.0 / *tot;
        }
        for j in 0..k {
            let l = &logits[j * BLOCK..j * BLOCK + b];
            let o = &mut out[j * m + b0..j * m + b0 + b];
            for (((oi, li), inv), d) in o.iter_mut().zip(l).zip(&total[..b]).zip(dot[..b].iter_mut()) {
                *oi *= inv;
                *d += *oi * li;
            }
            for (q, col) in cols.iter().enumerate() {
                stats[j * s + q] += dot_lanes(o, &col[b0..b0 + b]);
            }
        }
        *entropy -= dot_lanes(&dot[..b], &[1.0; BLOCK][..b]);
        for group in total[..b].chunks(LOG_GROUP) {
            // total holds 1/Σ; ln Σ = −ln(1/Σ).
            *entropy -= product_lanes(group).ln();
        }
        b0 += b;
    }
}

/// Σ a_i b_i with eight independent partial sums, so that the loop runs on vector lanes
/// instead of waiting on one chain of additions.
#[inline(always)]
fn dot_lanes(a: &[f64], b: &[f64]) -> f64 {
    let mut acc = [0.0f64; 8];
    let mut ca = a.chunks_exact(8);
    let mut cb = b.chunks_exact(8);
    for (x, y) in (&mut ca).zip(&mut cb) {
        for l in 0..8 {
            acc[l] += x[l] * y[l];
        }
    }
    let tail: f64 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    acc.iter().sum::<f64>() + tail
}

/// Π a_i with four independent partial products.
#[inline(always)]
fn product_lanes(a: &[f64]) -> f64 {
    let mut acc = [1.0f64; 4];
    let mut c = a.chunks_exact(4);
    for x in &mut c {
        for l in 0..4 {
            acc[l] *= x[l];
        }
    }
    acc.iter().product::<f64>() * c.remainder().iter().product::<f64>()
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
    // Adding 1.5·2^52 rounds to an integer and leaves it in the low mantissa bits: no calls
    // to `round` or float-to-int conversions, which would stop the loop vectorising.
    const SHIFTER: f64 = 6_755_399_441_055_744.0;
    let xc = x.max(-708.0);
    let t = xc * INV_LN2 + SHIFTER;
    let kf = t - SHIFTER;
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
    // The low bits of t hold k + 2^51; shifting by 52 keeps exactly k + 1023 as the exponent.
    let scale = f64::from_bits(t.to_bits().wrapping_add(1023) << 52);
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

    fn check(n: usize) {
        // T(x) = [x, x², 1], three components.
        let xs: Vec<f64> = (0..n).map(|i| (i as f64 * 0.37).sin() * 4.0).collect();
        let mut t = xs.clone();
        t.extend(xs.iter().map(|x| x * x));
        t.extend(std::iter::repeat_n(1.0, n));
        let eta = [1.0, -0.5, 0.0, -0.5, -0.5, -0.2, -0.5, 0.3, -2.0];
        let k = 3;
        let mut phi = Blocked::uniform(n, k);
        let sums = responsibilities(&t, 3, &eta, &mut phi);
        let phi = phi.to_row_major();
        let mut want_stats = [0.0; 9];
        let mut want_h = 0.0;
        for (i, x) in xs.iter().enumerate() {
            let l: Vec<f64> = (0..k)
                .map(|j| x * eta[j] + x * x * eta[k + j] + eta[2 * k + j])
                .collect();
            let z: f64 = l.iter().map(|v| v.exp()).sum();
            for j in 0..k {
                let p = l[j].exp() / z;
                assert!((phi[i * k + j] - p).abs() < 1e-13, "row {i}");
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

    #[test]
    fn matches_the_unfused_computation() {
        check(1000);
        // Several threads' chunks and a ragged last block.
        check(2 * CHUNK + 1234);
    }
}
