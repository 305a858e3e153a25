//! Learnable tensors and the automatic guide.
//!
//! [`Learnables`] holds every tensor an optimiser moves: model `param`s (stored unconstrained),
//! network weights, and the automatic guide's variational parameters. The automatic guide is a
//! Gaussian over the latents' unconstrained values, mean-field (a location and a scale per
//! element, as NumPyro's AutoNormal) or full-rank (one location vector and a Cholesky factor over
//! all of them, as AutoMultivariateNormal); the [`Bijection`]s carry its draws into the supports.
//!
//! Part of SVI, below its engine and trainer: never imports either, nor `report/` or the
//! posterior tools.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::reparam::{self, NonCentred, Reparam};
use crate::backend::{Array, Param, Session};
use crate::graph::{Group, Init, LatentId, Model, NetId, ParamId};
use crate::interpret::Value;
use crate::transform::Bijection;

/// Which objective group a learnable belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Owner {
    Net(NetId),
    Param(ParamId),
    Guide,
}

impl Owner {
    pub fn in_group(self, g: Group) -> bool {
        match (self, g) {
            (Owner::Net(a), Group::Net(b)) => a == b,
            (Owner::Param(a), Group::Param(b)) => a == b,
            (Owner::Guide, Group::Guide) => true,
            _ => false,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Learnable {
    /// A stable name: `encoder.1.weight`, `guide.mu.loc`, `sigma`.
    pub name: String,
    pub owner: Owner,
    pub shape: Vec<usize>,
    /// Current values (host copy, kept in step with the tensor).
    pub host: Vec<f64>,
    pub tensor: Param,
}

#[derive(Default, Debug)]
pub struct Learnables {
    pub entries: Vec<Learnable>,
}

impl Learnables {
    /// The learnables under their names, at `values` (one Vec per learnable).
    pub fn named(&self, values: &[Vec<f64>]) -> Vec<crate::infer::NamedTensor> {
        self.entries
            .iter()
            .zip(values)
            .map(|(e, v)| crate::infer::NamedTensor {
                name: e.name.clone(),
                shape: e.shape.clone(),
                values: v.clone(),
            })
            .collect()
    }

    pub fn add(
        &mut self,
        s: &Session,
        name: String,
        owner: Owner,
        shape: Vec<usize>,
        values: Vec<f64>,
    ) -> usize {
        let tensor = s.param(&values, &shape);
        self.entries.push(Learnable {
            name,
            owner,
            shape,
            host: values,
            tensor,
        });
        self.entries.len() - 1
    }

    pub fn leaf(&self, s: &Session, k: usize) -> Array {
        s.leaf(&self.entries[k].tensor)
    }

    /// Write host values back into the tensors.
    pub fn sync(&mut self, s: &Session) {
        for e in &mut self.entries {
            s.set_param(&mut e.tensor, &e.host);
        }
    }

    /// Write values held elsewhere (a trainer's, one per entry) into the tensors.
    pub fn upload(&mut self, s: &Session, values: &[Vec<f64>]) {
        for (e, v) in self.entries.iter_mut().zip(values) {
            s.set_param(&mut e.tensor, v);
        }
    }

    pub fn find(&self, name: &str) -> Option<usize> {
        self.entries.iter().position(|e| e.name == name)
    }
}

/// The softplus inverse, for initialising a scale through softplus.
pub fn softplus_inv(y: f64) -> f64 {
    y + (-(-y).exp_m1()).ln()
}

/// Initial scale of the automatic guide (NumPyro's AutoNormal default).
pub const INIT_SCALE: f64 = 0.1;

/// One latent handled by the automatic guide.
#[derive(Clone, Debug)]
pub struct AutoLatent {
    pub latent: LatentId,
    pub bijection: Bijection,
    /// Full plate lengths, then the unconstrained value shape.
    pub unconstrained: Vec<usize>,
    pub plates: usize,
    /// Mean-field: indices of loc and raw-scale learnables.
    pub loc: usize,
    pub scale: usize,
    /// Full-rank: this latent's offset and length in the joint vector.
    pub offset: usize,
    /// Fitted as its standardised value (see [`super::reparam`]); the bijection is bypassed.
    pub noncentred: Option<NonCentred>,
}

impl AutoLatent {
    pub fn len(&self) -> usize {
        self.unconstrained.iter().product()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The automatic guide's kind and parameters.
#[derive(Clone, Debug)]
pub enum AutoGuide {
    MeanField(Vec<AutoLatent>),
    /// One Gaussian over all the latents' unconstrained values: location, strictly lower
    /// off-diagonal entries of the Cholesky factor, and its raw diagonal.
    FullRank {
        latents: Vec<AutoLatent>,
        dim: usize,
        loc: usize,
        off: usize,
        diag: usize,
    },
}

impl AutoGuide {
    pub fn latents(&self) -> &[AutoLatent] {
        match self {
            AutoGuide::MeanField(l) | AutoGuide::FullRank { latents: l, .. } => l,
        }
    }

    /// Every learnable of the guide: per latent its location and raw scale (mean-field), or the
    /// location, the factor's off-diagonal entries and its raw diagonal (full-rank).
    pub fn learnables(&self) -> Vec<usize> {
        match self {
            AutoGuide::MeanField(l) => l.iter().flat_map(|a| [a.loc, a.scale]).collect(),
            AutoGuide::FullRank { loc, off, diag, .. } => vec![*loc, *off, *diag],
        }
    }
}

/// Every net's learnables, started by its `init` (Glorot uniform with zero biases, or
/// PyTorch's U(±1/√fan_in) for both); normalisations start at gain 1 and shift 0.
pub fn init_nets(
    s: &Session,
    model: &Model,
    rng: &mut ChaCha8Rng,
    learn: &mut Learnables,
) -> Vec<Vec<(usize, usize)>> {
    let mut out = Vec::new();
    for (k, net) in model.nets.iter().enumerate() {
        let owner = Owner::Net(NetId(k as u32));
        let mut layers = Vec::new();
        for p in net.params() {
            let n: usize = p.shape.iter().product();
            let (first, second, names) = match p.fans {
                Some((fan_in, fan_out)) => {
                    let bound = match net.init {
                        Init::Glorot => (6.0 / (fan_in + fan_out) as f64).sqrt(),
                        Init::Torch => (1.0 / fan_in as f64).sqrt(),
                    };
                    let weights: Vec<f64> = (0..n).map(|_| rng.gen_range(-bound..bound)).collect();
                    let biases: Vec<f64> = match net.init {
                        Init::Glorot => vec![0.0; p.units],
                        Init::Torch => (0..p.units).map(|_| rng.gen_range(-bound..bound)).collect(),
                    };
                    (weights, biases, ["weight", "bias"])
                }
                None => (vec![1.0; n], vec![0.0; p.units], ["gain", "shift"]),
            };
            let a = learn.add(
                s,
                format!("{}.{}", p.name, names[0]),
                owner,
                p.shape.clone(),
                first,
            );
            let b = learn.add(
                s,
                format!("{}.{}", p.name, names[1]),
                owner,
                vec![p.units],
                second,
            );
            layers.push((a, b));
        }
        out.push(layers);
    }
    out
}

/// The network weights for one step.
pub fn net_arrays(s: &Session, learn: &Learnables, nets: &[Vec<(usize, usize)>]) -> Vec<Vec<(Array, Array)>> {
    nets.iter()
        .map(|layers| {
            layers
                .iter()
                .map(|(w, b)| (learn.leaf(s, *w), learn.leaf(s, *b)))
                .collect()
        })
        .collect()
}

/// Model params, stored unconstrained; returns their learnable indices and bijections.
pub fn init_params(s: &Session, model: &Model, learn: &mut Learnables) -> Vec<(usize, Bijection)> {
    model
        .params
        .iter()
        .enumerate()
        .map(|(k, p)| {
            let shape: Vec<usize> = p.shape.iter().map(|d| d.value().expect("bound")).collect();
            let n: usize = shape.iter().product();
            let b = Bijection::for_domain(p.domain).expect("params have continuous types");
            let default = match p.domain {
                crate::dist::Domain::Positive => 1.0,
                crate::dist::Domain::Unit => 0.5,
                crate::dist::Domain::Interval(lo, hi) => 0.5 * (lo + hi),
                _ => 0.0,
            };
            let ushape = b.unconstrained_shape(&shape);
            let values = if b == Bijection::StickBreaking {
                let k = *shape.last().expect("simplex params have a length");
                let point = vec![1.0 / k as f64; k];
                let one = b.inverse(&point);
                one.iter()
                    .cycle()
                    .take(ushape.iter().product())
                    .copied()
                    .collect()
            } else {
                let u = b.inverse(&[p.init.unwrap_or(default)])[0];
                vec![u; n]
            };
            let idx = learn.add(s, p.name.clone(), Owner::Param(ParamId(k as u32)), ushape, values);
            (idx, b)
        })
        .collect()
}

/// Build the automatic guide for the given latents.
pub fn init_auto(
    s: &Session,
    model: &Model,
    latents: &[LatentId],
    full_rank: bool,
    reparam: Reparam,
    learn: &mut Learnables,
) -> AutoGuide {
    let mut autos = Vec::new();
    let mut offset = 0;
    for (k, &l) in latents.iter().enumerate() {
        let lat = model.latent(l);
        let noncentred = reparam::choose(model, l, &latents[..k], reparam);
        let b = Bijection::for_domain(lat.support).expect("continuous latents only");
        let shape: Vec<usize> = lat.shape.iter().map(|d| d.value().expect("bound")).collect();
        let mut unconstrained: Vec<usize> = lat
            .plates
            .iter()
            .map(|p| model.plate(*p).size.value().expect("bound"))
            .collect();
        unconstrained.extend(b.unconstrained_shape(&shape));
        let n: usize = unconstrained.iter().product();
        let (loc, scale) = if full_rank {
            (0, 0)
        } else {
            let loc = learn.add(
                s,
                format!("guide.{}.loc", lat.name),
                Owner::Guide,
                unconstrained.clone(),
                vec![0.0; n],
            );
            let scale = learn.add(
                s,
                format!("guide.{}.scale", lat.name),
                Owner::Guide,
                unconstrained.clone(),
                vec![softplus_inv(INIT_SCALE); n],
            );
            (loc, scale)
        };
        autos.push(AutoLatent {
            latent: l,
            bijection: b,
            unconstrained,
            plates: lat.plates.len(),
            loc,
            scale,
            offset,
            noncentred,
        });
        offset += n;
    }
    if !full_rank {
        return AutoGuide::MeanField(autos);
    }
    let dim = offset;
    let loc = learn.add(s, "guide.loc".into(), Owner::Guide, vec![dim], vec![0.0; dim]);
    let off = learn.add(
        s,
        "guide.scale_tril_offdiag".into(),
        Owner::Guide,
        vec![dim * dim.saturating_sub(1) / 2],
        vec![0.0; dim * dim.saturating_sub(1) / 2],
    );
    let diag = learn.add(
        s,
        "guide.scale_tril_diag".into(),
        Owner::Guide,
        vec![dim],
        vec![softplus_inv(INIT_SCALE); dim],
    );
    AutoGuide::FullRank {
        latents: autos,
        dim,
        loc,
        off,
        diag,
    }
}

/// The full-rank guide's Cholesky factor L ([dim, dim]) from its learnables.
pub fn cholesky_factor(s: &mut Session, learn: &Learnables, dim: usize, off: usize, diag: usize) -> Array {
    // L = scatter(offdiag) + diag(softplus(raw)), built by one gather each from [values, 0].
    let zero = s.full(0.0, &[1]);
    let nz = dim * dim.saturating_sub(1) / 2;
    let lower = if nz == 0 {
        // One dimension: no off-diagonal (and dfdx cannot concatenate an empty tensor).
        s.full(0.0, &[dim, dim])
    } else {
        let offv = learn.leaf(s, off);
        let offz = s.concat(&[offv, zero.clone()], &[nz + 1]);
        let mut idx_off = vec![nz; dim * dim];
        let mut k = 0;
        for i in 0..dim {
            for j in 0..i {
                idx_off[i * dim + j] = k;
                k += 1;
            }
        }
        s.gather(&offz, &idx_off, &[dim, dim])
    };
    let raw = learn.leaf(s, diag);
    let d = s.map(crate::graph::MapFn::Softplus, &raw);
    let dz = s.concat(&[d, zero], &[dim + 1]);
    let idx_diag: Vec<usize> = (0..dim * dim)
        .map(|p| if p / dim == p % dim { p / dim } else { dim })
        .collect();
    let dmat = s.gather(&dz, &idx_diag, &[dim, dim]);
    s.zip(crate::graph::ZipFn::Add, &lower, &dmat)
}

/// Draws from the automatic guide for one step.
pub struct AutoDraw {
    /// Unconstrained draws per auto latent: [S, plates (batched), unconstrained shape].
    pub zeta: Vec<Value>,
    /// log q(ζ) per sample, summed over the guide (plates scaled), or its entropy when
    /// `analytic`.
    pub log_q: Value,
}

/// Standard normal noise of a shape.
pub fn normals(rng: &mut ChaCha8Rng, n: usize) -> Vec<f64> {
    use rand_distr::{Distribution, StandardNormal};
    (0..n).map(|_| StandardNormal.sample(rng)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn softplus_inverse_inverts() {
        for y in [0.01, 0.1, 1.0, 5.0] {
            let x = softplus_inv(y);
            let back = x.max(0.0) + (-x.abs()).exp().ln_1p();
            assert!((back - y).abs() < 1e-12);
        }
    }

    #[test]
    fn the_cholesky_factor_is_lower_triangular_with_positive_diagonal() {
        let mut s = Session::new(crate::backend::Precision::F64);
        let mut learn = Learnables::default();
        let off = learn.add(&s, "o".into(), Owner::Guide, vec![3], vec![1.0, 2.0, 3.0]);
        let diag = learn.add(&s, "d".into(), Owner::Guide, vec![3], vec![0.0; 3]);
        let l = cholesky_factor(&mut s, &learn, 3, off, diag);
        let v = s.values(&l);
        let sp0 = 2f64.ln();
        let want = [sp0, 0.0, 0.0, 1.0, sp0, 0.0, 2.0, 3.0, sp0];
        for (a, b) in v.iter().zip(want) {
            assert!((a - b).abs() < 1e-12, "{v:?}");
        }
    }
}
