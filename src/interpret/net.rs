//! The forward pass of a declared network on the backend's arrays: dense layers, 2-D
//! convolutions and transposed convolutions, layer normalisation, reshapes.
//!
//! An MLP runs on rows (`[rows, width]`). A `cnn` turns its input once into columns
//! (`[width, rows]`: each feature a row of the batch) and runs every layer there, images in
//! (channels, height, width) order, so that reshapes and flattens are free, and a
//! convolution is one gather of whole rows (the index depends on the geometry, never on the
//! batch) and one matrix product: an ordinary convolution gathers each output position's
//! patch and multiplies by the filters; a transposed one multiplies each input pixel by the
//! filters and sums the blocks where they overlap. Filters use PyTorch's layouts
//! (`[out, in, k, k]`; transposed `[in, out, k, k]`). Gradients are the backend's gather and
//! matmul. Hand-written because dfdx 0.13's convolutions need a nightly compiler.
//!
//! Like the interpreter around it, it names no dfdx type and never imports `dist`,
//! `transform` or `infer`.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use crate::backend::{Array, Session};
use crate::graph::{conv_out, Layer, LayerShape, MapFn, NetDecl, NetKind, ZipFn};

use super::activate;

/// Layer normalisation's variance floor (PyTorch's default).
const NORM_EPS: f64 = 1e-5;

/// A `cnn` runs at most this many rows at once: a convolution's patches grow with the rows,
/// and evaluations over many draws (100 draws of a 100-row batch) would otherwise hold
/// gigabytes of them.
const ROW_CHUNK: usize = 1024;

/// `decl` on the rows of `x` (`[rows, width]`), up to and including its `stop`-th weighted
/// layer (all of them for `None`): `[rows, width']`. `params` holds per weighted layer its
/// (weight, bias), followed by (gain, shift) when the layer normalises.
pub fn forward(
    s: &mut Session,
    decl: &NetDecl,
    params: &[(Array, Array)],
    x: &Array,
    stop: Option<usize>,
) -> Array {
    let weighted = decl.layers.iter().filter(|l| l.weighted()).count();
    let stop = stop.unwrap_or(weighted);
    if decl.kind() == NetKind::Mlp {
        return mlp(s, decl, params, x, stop);
    }
    let rows = x.shape()[0];
    if rows <= ROW_CHUNK {
        return cnn(s, decl, params, x, stop);
    }
    let parts: Vec<Array> = (0..rows)
        .step_by(ROW_CHUNK)
        .map(|from| {
            let chunk: Vec<usize> = (from..(from + ROW_CHUNK).min(rows)).collect();
            let part = s.gather_rows(x, &chunk);
            cnn(s, decl, params, &part, stop)
        })
        .collect();
    let width = parts[0].shape()[1];
    s.concat(&parts, &[rows, width])
}

fn mlp(s: &mut Session, decl: &NetDecl, params: &[(Array, Array)], x: &Array, stop: usize) -> Array {
    let rows = x.shape()[0];
    let weighted = params.len();
    let mut h = x.clone();
    for (k, (w, b)) in params.iter().take(stop).enumerate() {
        let z = s.matmul(&h, w);
        let bb = s.insert_axis(b, 0, rows);
        let z = s.zip(ZipFn::Add, &z, &bb);
        let act = if k + 1 == weighted { decl.out } else { decl.hidden };
        h = activate(s, act, &z);
    }
    h
}

fn cnn(s: &mut Session, decl: &NetDecl, params: &[(Array, Array)], x: &Array, stop: usize) -> Array {
    let weighted = decl.layers.iter().filter(|l| l.weighted()).count();
    let rows = x.shape()[0];
    let shapes = decl.shapes();
    // Columns: [features, rows]; reshapes and flattens only relabel them.
    let mut h = s.transpose(x);
    let mut done = 0;
    let mut next = params.iter();
    for (k, layer) in decl.layers.iter().enumerate() {
        if !layer.weighted() {
            continue;
        }
        if done == stop {
            break;
        }
        let (w, b) = next.next().expect("a weight and bias per weighted layer");
        let (z, units) = match (layer, &shapes[k]) {
            (Layer::Dense { .. }, _) => (s.matmul_tn(w, &h), w.shape()[1]),
            (&Layer::Conv { channels, .. }, &LayerShape::Image(input)) => {
                let conv = Conv::of(layer, input).expect("a convolution");
                (convolve(s, &h, w, &conv, rows), channels)
            }
            _ => unreachable!("checked: convolutions take images"),
        };
        // z: [units · positions, rows]; each unit's bias is the same over its positions.
        let per_unit = z.len() / units;
        let bias = s.insert_axis(b, 1, per_unit).reshaped(z.shape());
        let mut z = s.zip(ZipFn::Add, &z, &bias);
        if layer.norm() {
            let (gain, shift) = next.next().expect("a gain and shift per normalised layer");
            z = layer_norm(s, &z, gain, shift);
        }
        done += 1;
        let act = if done == weighted { decl.out } else { decl.hidden };
        h = activate(s, act, &z);
    }
    s.transpose(&h)
}

/// One convolution's geometry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Conv {
    /// (channels, height, width) in.
    input: [usize; 3],
    kernel: usize,
    stride: usize,
    padding: usize,
    transposed: bool,
}

impl Conv {
    /// The geometry of `layer` on images of shape `input`, when it is a convolution.
    fn of(layer: &Layer, input: [usize; 3]) -> Option<Conv> {
        match *layer {
            Layer::Conv {
                kernel,
                stride,
                padding,
                transposed,
                ..
            } => Some(Conv {
                input,
                kernel,
                stride,
                padding,
                transposed,
            }),
            _ => None,
        }
    }

    fn output(&self) -> [usize; 2] {
        let [_, h, w] = self.input;
        let side = |n| conv_out(n, self.kernel, self.stride, self.padding, self.transposed).expect("checked");
        [side(h), side(w)]
    }

    /// For each tap (channel, ky, kx) and output position (oy, ox), the input feature it reads,
    /// or `zero` (one past the input's features) where the tap falls outside the image.
    fn patch_index(&self) -> Vec<usize> {
        let [c, h, w] = self.input;
        let [h2, w2] = self.output();
        let (st, p) = (self.stride as isize, self.padding as isize);
        let zero = c * h * w;
        let source = |o: usize, tap: usize, n: usize| -> Option<usize> {
            let i = o as isize * st + tap as isize - p;
            (0..n as isize).contains(&i).then_some(i as usize)
        };
        let k = self.kernel;
        let mut index = Vec::with_capacity(c * k * k * h2 * w2);
        for ci in 0..c {
            for ky in 0..k {
                for kx in 0..k {
                    for oy in 0..h2 {
                        let iy = source(oy, ky, h);
                        for ox in 0..w2 {
                            index.push(match (iy, source(ox, kx, w)) {
                                (Some(iy), Some(ix)) => (ci * h + iy) * w + ix,
                                _ => zero,
                            });
                        }
                    }
                }
            }
        }
        index
    }

    /// The taps each output pixel of a transposed convolution sums: at most
    /// ⌈k / stride⌉² of them.
    fn taps_per_output(&self) -> usize {
        self.kernel.div_ceil(self.stride).pow(2)
    }

    /// A transposed convolution spreads input pixel (iy, ix)'s block of contributions
    /// (`cols[c', ky, kx, iy, ix]`) over outputs (iy, ix)·stride − padding + (ky, kx). For each
    /// output channel and pixel, and each of its [`Conv::taps_per_output`] slots, the row of
    /// `cols` that lands there, or `zero` (one past them) for an empty slot; summing the
    /// slots is the convolution.
    fn scatter_index(&self, out_channels: usize) -> Vec<usize> {
        let [_, h, w] = self.input;
        let [h2, w2] = self.output();
        let (k, st, p) = (self.kernel, self.stride as isize, self.padding as isize);
        let zero = out_channels * k * k * h * w;
        let slots = self.taps_per_output();
        // The (input pixel, tap) pairs that reach output o along one axis.
        let sources = |o: usize, n: usize| -> Vec<(usize, usize)> {
            (0..k)
                .filter_map(|tap| {
                    let t = o as isize + p - tap as isize;
                    (t >= 0 && t % st == 0 && ((t / st) as usize) < n).then(|| ((t / st) as usize, tap))
                })
                .collect()
        };
        let along_y: Vec<Vec<(usize, usize)>> = (0..h2).map(|o| sources(o, h)).collect();
        let along_x: Vec<Vec<(usize, usize)>> = (0..w2).map(|o| sources(o, w)).collect();
        let mut index = Vec::with_capacity(out_channels * h2 * w2 * slots);
        for co in 0..out_channels {
            for ys in &along_y {
                for xs in &along_x {
                    let mut used = 0;
                    for &(iy, ky) in ys {
                        for &(ix, kx) in xs {
                            index.push((((co * k + ky) * k + kx) * h + iy) * w + ix);
                            used += 1;
                        }
                    }
                    index.extend(std::iter::repeat_n(zero, slots - used));
                }
            }
        }
        index
    }
}

/// Gather indices by a convolution's geometry and output channels.
type IndexCache = HashMap<(Conv, usize), Arc<Vec<usize>>>;

thread_local! {
    /// Every step of a fit convolves the same shapes.
    static INDICES: RefCell<IndexCache> = RefCell::new(HashMap::new());
}

/// `conv`'s patch indices, or a transposed convolution's scatter indices.
fn indices_for(conv: &Conv, out_channels: usize) -> Arc<Vec<usize>> {
    INDICES.with(|cache| {
        let mut cache = cache.borrow_mut();
        if cache.len() > 64 {
            cache.clear();
        }
        cache
            .entry((*conv, out_channels))
            .or_insert_with(|| {
                Arc::new(if conv.transposed {
                    conv.scatter_index(out_channels)
                } else {
                    conv.patch_index()
                })
            })
            .clone()
    })
}

/// Columns `x` (`[c·h·w, rows]`) convolved by `filters`: `[c'·h'·w', rows]`.
fn convolve(s: &mut Session, x: &Array, filters: &Array, conv: &Conv, rows: usize) -> Array {
    let [h2, w2] = conv.output();
    let [c, h, w] = conv.input;
    let k = conv.kernel;
    let zero = s.full(0.0, &[rows]);
    if conv.transposed {
        let out = filters.shape()[1];
        // cols[(c', ky, kx), (iy, ix, r)] = Σ_c filters[c, c', ky, kx] · x[(c, iy, ix), r]
        let cols = s.matmul_tn(
            &filters.reshaped(&[c, out * k * k]),
            &x.reshaped(&[c, h * w * rows]),
        );
        let blocks = out * k * k * h * w;
        let padded = s.concat(&[cols, zero], &[blocks + 1, rows]);
        let slots = conv.taps_per_output();
        let spread = s.gather_rows(&padded, &indices_for(conv, out));
        return s.sum_axes(&spread.reshaped(&[out * h2 * w2, slots, rows]), 1, 2);
    }
    let out = filters.shape()[0];
    let taps = c * k * k;
    let padded = s.concat(&[x.clone(), zero], &[c * h * w + 1, rows]);
    let patches = s.gather_rows(&padded, &indices_for(conv, 0));
    let y = s.matmul(
        &filters.reshaped(&[out, taps]),
        &patches.reshaped(&[taps, h2 * w2 * rows]),
    );
    y.reshaped(&[out * h2 * w2, rows])
}

/// Normalise each row's features (a column of `z`, `[units · positions, rows]`) to mean 0
/// and variance 1, then scale and shift each unit (over all its positions).
fn layer_norm(s: &mut Session, z: &Array, gain: &Array, shift: &Array) -> Array {
    let [features, rows] = z.shape()[..] else {
        panic!("layer_norm of a {:?} value", z.shape())
    };
    let per_unit = features / gain.len() * rows;
    let mean = s.sum_axes(z, 0, 1);
    let mean = s.scale(&mean, 1.0 / features as f64);
    let mean = s.insert_axis(&mean, 0, features);
    let centred = s.zip(ZipFn::Sub, z, &mean);
    let square = s.zip(ZipFn::Mul, &centred, &centred);
    let var = s.sum_axes(&square, 0, 1);
    let var = s.scale(&var, 1.0 / features as f64);
    let sd = s.shift(&var, NORM_EPS);
    let sd = s.map(MapFn::Sqrt, &sd);
    let sd = s.insert_axis(&sd, 0, features);
    let unit = s.zip(ZipFn::Div, &centred, &sd);
    let g = s.insert_axis(gain, 1, per_unit).reshaped(z.shape());
    let t = s.insert_axis(shift, 1, per_unit).reshaped(z.shape());
    let scaled = s.zip(ZipFn::Mul, &unit, &g);
    s.zip(ZipFn::Add, &scaled, &t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::{Param, Precision};
    use rand::{Rng, SeedableRng};

    fn random(rng: &mut rand_chacha::ChaCha8Rng, n: usize) -> Vec<f64> {
        (0..n).map(|_| rng.gen_range(-1.0..1.0)).collect()
    }

    /// The textbook loops, on rows of (channel, y, x) pixels with PyTorch's filter layouts:
    /// out[r, o, oy, ox] = Σ x[r, c, oy·s + ky − p, ox·s + kx − p] w[o, c, ky, kx] for an
    /// ordinary convolution; a transposed one adds x[r, c, iy, ix] w[c, o, ky, kx] into
    /// out[r, o, iy·s − p + ky, ix·s − p + kx].
    fn reference(conv: &Conv, rows: usize, x: &[f64], w: &[f64], out_c: usize) -> Vec<f64> {
        let [c, h, wd] = conv.input;
        let [h2, w2] = conv.output();
        let (k, s, p) = (conv.kernel, conv.stride as isize, conv.padding as isize);
        let mut y = vec![0.0; rows * out_c * h2 * w2];
        let pixel = |r: usize, ch: usize, yy: usize, xx: usize, cc: usize, hh: usize, ww: usize| {
            ((r * cc + ch) * hh + yy) * ww + xx
        };
        for r in 0..rows {
            for ci in 0..c {
                for o in 0..out_c {
                    for ky in 0..k {
                        for kx in 0..k {
                            let (ki, kj) = (ky as isize, kx as isize);
                            if conv.transposed {
                                let wv = w[((ci * out_c + o) * k + ky) * k + kx];
                                for iy in 0..h {
                                    for ix in 0..wd {
                                        let (oy, ox) = (iy as isize * s - p + ki, ix as isize * s - p + kj);
                                        if (0..h2 as isize).contains(&oy) && (0..w2 as isize).contains(&ox) {
                                            y[pixel(r, o, oy as usize, ox as usize, out_c, h2, w2)] +=
                                                x[pixel(r, ci, iy, ix, c, h, wd)] * wv;
                                        }
                                    }
                                }
                            } else {
                                let wv = w[((o * c + ci) * k + ky) * k + kx];
                                for oy in 0..h2 {
                                    for ox in 0..w2 {
                                        let (iy, ix) = (oy as isize * s + ki - p, ox as isize * s + kj - p);
                                        if (0..h as isize).contains(&iy) && (0..wd as isize).contains(&ix) {
                                            y[pixel(r, o, oy, ox, out_c, h2, w2)] +=
                                                x[pixel(r, ci, iy as usize, ix as usize, c, h, wd)] * wv;
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        y
    }

    const GEOMETRIES: [(usize, usize, usize, bool); 6] = [
        (3, 1, 1, false),
        (3, 2, 1, false),
        (4, 2, 1, false),
        (4, 2, 1, true),
        (3, 2, 0, true),
        (5, 3, 2, true),
    ];

    fn filter_shape(conv: &Conv, out_c: usize) -> Vec<usize> {
        let (c, k) = (conv.input[0], conv.kernel);
        if conv.transposed {
            vec![c, out_c, k, k]
        } else {
            vec![out_c, c, k, k]
        }
    }

    /// `convolve` on rows: into columns and back.
    fn on_rows(s: &mut Session, x: &Array, w: &Array, conv: &Conv) -> Array {
        let rows = x.shape()[0];
        let cols = s.transpose(x);
        let y = convolve(s, &cols, w, conv, rows);
        s.transpose(&y)
    }

    #[test]
    fn convolutions_match_the_textbook_loops() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        for (kernel, stride, padding, transposed) in GEOMETRIES {
            let conv = Conv {
                input: [3, 5, 6],
                kernel,
                stride,
                padding,
                transposed,
            };
            let (rows, out_c) = (2, 4);
            let x = random(&mut rng, rows * 3 * 5 * 6);
            let w = random(&mut rng, kernel * kernel * 3 * out_c);
            let mut s = Session::new(Precision::F64);
            let xa = s.array(&x, &[rows, 3 * 5 * 6]);
            let wa = s.array(&w, &filter_shape(&conv, out_c));
            let y = on_rows(&mut s, &xa, &wa, &conv);
            let got = s.values(&y);
            let want = reference(&conv, rows, &x, &w, out_c);
            assert_eq!(got.len(), want.len(), "{conv:?}");
            for (g, r) in got.iter().zip(&want) {
                assert!((g - r).abs() < 1e-12, "{conv:?}: {g} vs {r}");
            }
        }
    }

    /// d/dθ Σ f(θ)·u by the tape against central differences, for every input of `f`.
    fn gradients_agree(inputs: &[(Vec<f64>, Vec<usize>)], f: impl Fn(&mut Session, &[Array]) -> Array) {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let value = |vals: &[Vec<f64>], u: Option<&[f64]>| -> (f64, Vec<f64>) {
            let mut s = Session::new(Precision::F64);
            let arrays: Vec<Array> = vals
                .iter()
                .zip(inputs)
                .map(|(v, (_, sh))| s.array(v, sh))
                .collect();
            let y = f(&mut s, &arrays);
            let yv = s.values(&y);
            (u.map_or(0.0, |u| yv.iter().zip(u).map(|(a, b)| a * b).sum()), yv)
        };
        let base: Vec<Vec<f64>> = inputs.iter().map(|(v, _)| v.clone()).collect();
        let n_out = value(&base, None).1.len();
        let u = random(&mut rng, n_out);
        let mut s = Session::new(Precision::F64);
        let params: Vec<Param> = inputs.iter().map(|(v, sh)| s.param(v, sh)).collect();
        let leaves: Vec<Array> = params.iter().map(|p| s.leaf(p)).collect();
        let y = f(&mut s, &leaves);
        let ua = s.array(&u, y.shape());
        let prod = s.zip(ZipFn::Mul, &y, &ua);
        let loss = s.sum(&prod);
        let mut grads = s.backward(&loss);
        for (k, p) in params.iter().enumerate() {
            let g = s.grad(&mut grads, p);
            for i in (0..inputs[k].0.len()).step_by(3) {
                let h = 1e-6;
                let mut up = base.clone();
                up[k][i] += h;
                let mut down = base.clone();
                down[k][i] -= h;
                let fd = (value(&up, Some(&u)).0 - value(&down, Some(&u)).0) / (2.0 * h);
                assert!(
                    (fd - g[i]).abs() < 1e-6 * (1.0 + fd.abs()),
                    "input {k}[{i}]: tape {} vs differences {fd}",
                    g[i]
                );
            }
        }
    }

    #[test]
    fn convolution_gradients_match_finite_differences() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        for (kernel, stride, padding, transposed) in GEOMETRIES {
            let conv = Conv {
                input: [2, 4, 5],
                kernel,
                stride,
                padding,
                transposed,
            };
            let inputs = [
                (random(&mut rng, 2 * 2 * 4 * 5), vec![2, 2 * 4 * 5]),
                (random(&mut rng, kernel * kernel * 2 * 3), filter_shape(&conv, 3)),
            ];
            gradients_agree(&inputs, |s, a| on_rows(s, &a[0], &a[1], &conv));
        }
    }

    #[test]
    fn layer_norm_gradients_match_finite_differences() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(4);
        // Features of three channels × four positions, for five rows.
        let inputs = [
            (random(&mut rng, 12 * 5), vec![12, 5]),
            (random(&mut rng, 3), vec![3]),
            (random(&mut rng, 3), vec![3]),
        ];
        gradients_agree(&inputs, |s, a| layer_norm(s, &a[0], &a[1], &a[2]));
        // Each row's features have mean 0 and variance 1 before the gain and shift.
        let mut s = Session::new(Precision::F64);
        let z = s.array(&inputs[0].0, &[12, 5]);
        let (one, nought) = (s.full(1.0, &[3]), s.full(0.0, &[3]));
        let normed = layer_norm(&mut s, &z, &one, &nought);
        let v = s.values(&normed);
        for r in 0..5 {
            let column: Vec<f64> = (0..12).map(|f| v[f * 5 + r]).collect();
            let mean = column.iter().sum::<f64>() / 12.0;
            let var = column.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / 12.0;
            assert!(
                mean.abs() < 1e-12 && (var - 1.0).abs() < 1e-4,
                "mean {mean}, var {var}"
            );
        }
    }
}
