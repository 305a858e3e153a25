//! Draws from the automatic guide: a mean-field or full-rank Gaussian over the latents'
//! unconstrained values, with −log q (or the entropy) of each draw.
//!
//! Part of the engine; like it, this file never imports the trainer or the after-fit tools.

use rand_chacha::ChaCha8Rng;

use super::super::guide::{self, AutoGuide, AutoLatent};
use super::Engine;
use crate::backend::{Array, Session};
use crate::graph::{MapFn, PlateId, ZipFn};
use crate::interpret::{map, zip, Layout, PlateState, Value};

impl Engine<'_> {
    /// Draw the automatic guide's unconstrained values; adds −log q (or the entropy) to `acc`.
    pub(super) fn draw_auto(
        &self,
        s: &mut Session,
        plates: &[PlateState],
        samples: usize,
        rng: &mut ChaCha8Rng,
        acc: &mut Option<Value>,
    ) -> Vec<Value> {
        let model = self.model;
        let push = |s: &mut Session, v: Value, acc: &mut Option<Value>| {
            *acc = Some(match acc.take() {
                None => v,
                Some(a) => zip(s, ZipFn::Add, &a, &v),
            });
        };
        match &self.auto {
            AutoGuide::MeanField(latents) => {
                let mut out = Vec::new();
                for a in latents {
                    let lat = model.latent(a.latent);
                    let loc = self.learn.leaf(s, a.loc);
                    let raw = self.learn.leaf(s, a.scale);
                    let sd = s.map(MapFn::Softplus, &raw);
                    // Subsample the rows of batched plates.
                    let (loc, sd) = self.rows_for_batch(s, lat.plates.as_slice(), plates, loc, sd);
                    let mut lay = Layout {
                        samples: None,
                        plates: lat.plates.iter().map(|p| (*p, plates[p.index()].len)).collect(),
                        shape: a.unconstrained[a.plates..].to_vec(),
                    };
                    let loc = Value::new(loc.reshaped(&lay.dims()), lay.clone());
                    let sd = Value::new(sd.reshaped(&lay.dims()), lay.clone());
                    lay.samples = Some(samples);
                    let eps = guide::normals(rng, lay.dims().iter().product());
                    let eps = Value::new(s.noise(&eps, &lay.dims()), lay.clone());
                    let scaled = zip(s, ZipFn::Mul, &sd, &eps);
                    let zeta = zip(s, ZipFn::Add, &loc, &scaled);
                    let lsd = map(s, MapFn::Log, &sd);
                    let neg_log_q = if self.analytic {
                        // Entropy: Σ ln σ + ½ ln(2πe)
                        let h = Value::new(
                            s.shift(
                                &lsd.arr,
                                0.5 * (2.0 * std::f64::consts::PI * std::f64::consts::E).ln(),
                            ),
                            lsd.lay.clone(),
                        );
                        self.total(s, &h, &lat.plates)
                    } else {
                        // −log q(ζ) = Σ ½ ε² + ln σ + ½ ln 2π
                        let e2 = map(s, MapFn::Square, &eps);
                        let e2 = Value::new(s.scale(&e2.arr, 0.5), e2.lay.clone());
                        let t = zip(s, ZipFn::Add, &e2, &lsd);
                        let t = Value::new(
                            s.shift(&t.arr, 0.5 * (2.0 * std::f64::consts::PI).ln()),
                            t.lay.clone(),
                        );
                        self.total(s, &t, &lat.plates)
                    };
                    push(s, neg_log_q, acc);
                    out.push(zeta);
                }
                out
            }
            AutoGuide::FullRank {
                latents,
                dim,
                loc,
                off,
                diag,
            } => {
                let dim = *dim;
                let l = guide::cholesky_factor(s, &self.learn, dim, *off, *diag);
                let m = self.learn.leaf(s, *loc);
                let eps_v = guide::normals(rng, samples * dim);
                let eps = s.noise(&eps_v, &[samples, dim]);
                let le = s.matmul_t(&eps, &l);
                let mb = s.insert_axis(&m, 0, samples);
                let zeta = s.zip(ZipFn::Add, &mb, &le);
                // −log q = ½ Σ ε² + Σ ln L_ii + d/2 ln 2π (or the entropy, without the ε term)
                let raw = self.learn.leaf(s, *diag);
                let d = s.map(MapFn::Softplus, &raw);
                let ld = s.map(MapFn::Log, &d);
                let sum_ld = s.sum(&ld);
                let c = if self.analytic {
                    0.5 * dim as f64 * (2.0 * std::f64::consts::PI * std::f64::consts::E).ln()
                } else {
                    0.5 * dim as f64 * (2.0 * std::f64::consts::PI).ln()
                };
                let base = s.shift(&sum_ld, c);
                let neg_log_q = if self.analytic {
                    Value::new(base, Layout::scalar())
                } else {
                    let e2 = s.map(MapFn::Square, &eps);
                    let e2 = s.sum_axes(&e2, 1, 2);
                    let e2 = s.scale(&e2, 0.5);
                    let v = Value::new(
                        e2,
                        Layout {
                            samples: Some(samples),
                            plates: vec![],
                            shape: vec![],
                        },
                    );
                    let b = Value::new(base, Layout::scalar());
                    zip(s, ZipFn::Add, &v, &b)
                };
                // One joint Gaussian is no plate's own term.
                if self.only_plate.is_none() {
                    push(s, neg_log_q, acc);
                }
                self.split_joint(s, &zeta, latents, plates, samples, dim)
            }
        }
    }

    /// The per-latent values in one joint vector per sample ([samples, dim]): each latent's
    /// slice, laid out over its plates and shape.
    fn split_joint(
        &self,
        s: &mut Session,
        zeta: &Array,
        latents: &[AutoLatent],
        plates: &[PlateState],
        samples: usize,
        dim: usize,
    ) -> Vec<Value> {
        let model = self.model;
        latents
            .iter()
            .map(|a| {
                let n = a.len();
                let idx: Vec<usize> = (0..samples)
                    .flat_map(|r| (0..n).map(move |j| r * dim + a.offset + j))
                    .collect();
                let lay = Layout {
                    samples: Some(samples),
                    plates: model
                        .latent(a.latent)
                        .plates
                        .iter()
                        .map(|p| (*p, plates[p.index()].len))
                        .collect(),
                    shape: a.unconstrained[a.plates..].to_vec(),
                };
                let z = s.gather(zeta, &idx, &lay.dims());
                Value::new(z, lay)
            })
            .collect()
    }

    /// The unconstrained values at given points (one row of `points` per sample) instead of
    /// draws: the log joint density there is what the pass then computes (no −log q).
    pub(super) fn at_points(&self, s: &mut Session, points: &Array, plates: &[PlateState]) -> Vec<Value> {
        let (samples, dim) = (points.shape()[0], points.shape()[1]);
        self.split_joint(s, points, self.auto.latents(), plates, samples, dim)
    }

    /// For a latent in batched plates, the rows of its variational parameters for this batch.
    fn rows_for_batch(
        &self,
        s: &mut Session,
        lat_plates: &[PlateId],
        plates: &[PlateState],
        loc: Array,
        sd: Array,
    ) -> (Array, Array) {
        let mut loc = loc;
        let mut sd = sd;
        for (j, p) in lat_plates.iter().enumerate() {
            let Some(rows) = &plates[p.index()].batch else {
                continue;
            };
            let (idx, nd) = crate::interpret::rows_along(loc.shape(), j, rows);
            loc = s.gather(&loc, &idx, &nd);
            sd = s.gather(&sd, &idx, &nd);
        }
        (loc, sd)
    }
}
