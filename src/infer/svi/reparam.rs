//! Automatic non-centring of hierarchical latents.
//!
//! A latent whose prior is a location-scale family with a scale that is itself a latent
//! (`theta[j] ~ Normal(mu, tau)`, `b[i] ~ Normal(0, 1 / sqrt(tau))`) makes a funnel: where the
//! scale is small, the latent is pinned to its location, so a Gaussian guide over the latent as
//! written must choose between the neck and the mouth, and gradient VI drifts down the neck
//! with a still-rising ELBO. Fitted in non-centred form instead, the guide is over the
//! standardised value z = (x − loc) / scale, whose prior is the family's standard member and
//! does not depend on the other latents; x = loc + scale · z is what the model and every
//! output see. The log-Jacobian (log scale) cancels the prior's normaliser exactly, so the
//! engine scores z under the standard density and adds nothing else. This is the reparam that
//! Stan's users write by hand and NumPyro's `LocScaleReparam(0)` applies; Gorinova, Moore &
//! Hoffman (ICML 2020) measure it against the centred form on the models of this kind.
//!
//! A Uniform latent whose bounds are not constants (GARCH's `beta1 ~ Uniform(0, 1 - alpha1)`)
//! is always fitted this way, whatever `reparam` says: x = low + (high − low) · u with
//! u ∈ (0, 1) through the logit bijection, so that its support moves with its bounds; no fixed
//! bijection could follow them.
//!
//! The choice is made once per fit, from the model alone (`reparam = auto`), and saved with the
//! fit so that the after-fit tools read its tensors in the same coordinates. This file knows
//! the graph and the densities; it never imports the engine, the trainer or `report/`.

use crate::backend::Session;
use crate::dist::{Domain, Family, Parameterization};
use crate::graph::{LatentId, MapFn, Model, ZipFn};
use crate::interpret::{expand, map, zip, Value};
use crate::transform::Bijection;

/// Which prior argument is the scale, and how it enters (a scale, a precision, a variance).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScaleArg {
    Scale(usize),
    Precision(usize),
    Variance(usize),
    /// The width `high - low` of a Uniform whose `low` is the location (arguments 0 and 1).
    Width,
}

/// A latent fitted in non-centred form: its prior's family, and where its location and scale
/// are among the prior's arguments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NonCentred {
    pub family: Family,
    pub loc: usize,
    pub scale: ScaleArg,
}

/// Whether to non-centre, as the settings and a saved fit spell it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reparam {
    /// Non-centre every latent that [`choose`] picks.
    Auto,
    /// Fit every latent as written.
    None,
}

impl Reparam {
    pub fn name(self) -> &'static str {
        match self {
            Reparam::Auto => "auto",
            Reparam::None => "none",
        }
    }

    /// The choice a saved fit's metadata records; fits saved before the choice existed were
    /// all fitted as written.
    pub fn from_saved(meta: &std::collections::HashMap<String, String>) -> Reparam {
        match meta.get("reparam").map(String::as_str) {
            Some("auto") => Reparam::Auto,
            _ => Reparam::None,
        }
    }
}

/// The latents of the automatic guide (those no user guide draws) that are fitted non-centred,
/// by name, as the engine will choose them.
pub fn noncentred_names(model: &Model, reparam: Reparam) -> Vec<String> {
    let auto: Vec<LatentId> = (0..model.latents.len())
        .map(|k| LatentId(k as u32))
        .filter(|l| model.guide_site(*l).is_none())
        .collect();
    (0..auto.len())
        .filter(|&k| choose(model, auto[k], &auto[..k], reparam).is_some())
        .map(|k| model.latent(auto[k]).name.clone())
        .collect()
}

/// Whether `latent` is fitted non-centred: its prior is Normal (any parameterisation),
/// LogNormal, StudentT, Cauchy or Laplace on its natural support, its scale depends on some
/// latent, and every latent its prior reads is one of `earlier` (drawn before it, so that its
/// location and scale can be evaluated when it is drawn).
pub fn choose(model: &Model, latent: LatentId, earlier: &[LatentId], reparam: Reparam) -> Option<NonCentred> {
    if moving_bounds(model, latent) {
        return Some(NonCentred {
            family: Family::Uniform,
            loc: 0,
            scale: ScaleArg::Width,
        });
    }
    if reparam == Reparam::None {
        return None;
    }
    let lat = model.latent(latent);
    let dist = &model.sites[lat.site].dist;
    // Standardising would drop a truncation's normaliser.
    if dist.trunc.is_some() {
        return None;
    }
    let (loc, scale) = match (dist.family, dist.pz) {
        (Family::Normal, Parameterization::Precision) => (0, ScaleArg::Precision(1)),
        (Family::Normal, Parameterization::Variance) => (0, ScaleArg::Variance(1)),
        (f, Parameterization::Standard) if f.is_location_scale() => (0, ScaleArg::Scale(1)),
        (Family::StudentT, Parameterization::Standard) => (1, ScaleArg::Scale(2)),
        _ => return None,
    };
    let natural = match dist.family {
        Family::LogNormal => Domain::Positive,
        _ => Domain::Real,
    };
    if lat.support != natural {
        return None;
    }
    let scale_node = dist.args[scale.index()];
    if model.latents_of(scale_node).is_empty() {
        return None;
    }
    let reads_only_earlier = dist
        .args
        .iter()
        .flat_map(|a| model.latents_of(*a))
        .all(|l| earlier.contains(&l));
    reads_only_earlier.then_some(NonCentred {
        family: dist.family,
        loc,
        scale,
    })
}

/// Whether `latent` has a Uniform prior whose bounds are not constants (they read other
/// latents, data or params): it must be fitted as low + (high − low) · u. The checker has
/// proved high > low and refused a guide block that draws it or the latents its bounds read,
/// so they are drawn before it by the automatic guide.
pub fn moving_bounds(model: &Model, latent: LatentId) -> bool {
    let dist = &model.sites[model.latent(latent).site].dist;
    dist.family == Family::Uniform && dist.args.iter().any(|a| model.constant(*a).is_none())
}

impl ScaleArg {
    pub fn index(self) -> usize {
        match self {
            ScaleArg::Scale(k) | ScaleArg::Precision(k) | ScaleArg::Variance(k) => k,
            ScaleArg::Width => 1,
        }
    }
}

impl NonCentred {
    /// The standardised value from the guide's unconstrained draw, and the log-Jacobian to add
    /// where it is not the draw itself: a Uniform's u = sigmoid(zeta) in (0, 1).
    pub fn standardise(&self, s: &mut Session, zeta: &Value) -> (Value, Option<Value>) {
        match self.scale {
            ScaleArg::Width => {
                let (u, logdet) = Bijection::Interval(0.0, 1.0).forward(s, zeta);
                (u, Some(logdet))
            }
            _ => (zeta.clone(), None),
        }
    }

    /// x = loc + scale · z (exponentiated for LogNormal), laid out as `z` is.
    pub fn latent_value(&self, s: &mut Session, args: &[Value], z: &Value) -> Value {
        let arg = &args[self.scale.index()];
        let shifted = match self.scale {
            ScaleArg::Width => {
                let width = zip(s, ZipFn::Sub, arg, &args[0]);
                zip(s, ZipFn::Mul, &width, z)
            }
            ScaleArg::Scale(_) => zip(s, ZipFn::Mul, arg, z),
            ScaleArg::Variance(_) => {
                let sd = map(s, MapFn::Sqrt, arg);
                zip(s, ZipFn::Mul, &sd, z)
            }
            ScaleArg::Precision(_) => {
                let root = map(s, MapFn::Sqrt, arg);
                zip(s, ZipFn::Div, z, &root)
            }
        };
        let x = zip(s, ZipFn::Add, &args[self.loc], &shifted);
        let x = expand(s, &x, &z.lay);
        match self.family {
            Family::LogNormal => map(s, MapFn::Exp, &x),
            _ => x,
        }
    }

    /// The prior's standard member, whose density scores z: the family with location 0 and
    /// scale 1 (StudentT keeps its degrees of freedom; LogNormal's z is Normal).
    pub fn standard(&self, s: &Session, args: &[Value]) -> (Family, Vec<Value>) {
        let zero = Value::new(s.scalar(0.0), crate::interpret::Layout::scalar());
        let one = Value::new(s.scalar(1.0), crate::interpret::Layout::scalar());
        match self.family {
            Family::StudentT => (Family::StudentT, vec![args[0].clone(), zero, one]),
            Family::LogNormal => (Family::Normal, vec![zero, one]),
            // Uniform(0, 1): its density is 1, and u's Jacobian is added by `standardise`.
            f => (f, vec![zero, one]),
        }
    }
}
