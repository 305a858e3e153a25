//! What SVI can fit: the checks that refuse a model (or a holdout split) before any step, each
//! pointing at the statement that stops it.
//!
//! Reads only the model; never imports the engine, the trainer, `report/` or the posterior tools.

use crate::diag::{Diagnostic, Diagnostics};
use crate::dist::Family;
use crate::graph::{LatentId, Model, Op};

/// Refuse models SVI cannot fit, pointing at the statement that stops it.
pub fn check_supported(model: &Model) -> Result<(), Diagnostics> {
    let mut diags = Diagnostics::new();
    for l in &model.latents {
        if l.support.is_discrete() {
            let site = &model.sites[l.site];
            diags.push(
                Diagnostic::new("vi::svi::discrete_latent", format!("`{}` is discrete: gradients cannot pass through it", l.name))
                    .primary(site.span, format!("a {} latent", site.dist.family))
                    .help("fit the model with `--method cavi` (mixtures through a categorical index are conjugate), or marginalise the discrete variable out")
                    .with_source(&model.source),
            );
        }
    }
    for s in model.guide.iter().flatten() {
        if !matches!(s.dist.family, Family::Normal | Family::LogNormal) {
            diags.push(
                Diagnostic::new("vi::svi::guide_family", format!("the guide cannot draw from {} by reparameterisation", s.dist.family))
                    .primary(s.dist.span, "not reparameterisable here")
                    .help("write guide distributions as Normal or LogNormal, or leave this latent to the automatic guide")
                    .with_source(&model.source),
            );
        }
    }
    for n in &model.nodes {
        if let Op::Draw(app) = &n.op {
            if app.family != Family::Normal {
                diags.push(
                    Diagnostic::new(
                        "vi::svi::draw_family",
                        format!("`draw` supports Normal, not {}", app.family),
                    )
                    .primary(app.span, "not supported")
                    .help("draw standard normals and transform them")
                    .with_source(&model.source),
                );
            }
        }
    }
    for site in model.sites.iter() {
        let m = site.dist.args.get(1).map(|a| model.node(*a));
        let fixed =
            m.is_some_and(|n| n.ty.plates.is_empty()) && model.latents_of(site.dist.args[1]).is_empty();
        if site.dist.family == Family::MvNormal && !fixed {
            diags.push(
                Diagnostic::new("vi::svi::mvnormal", "an MvNormal's covariance must be fixed for SVI")
                    .primary(model.node(site.dist.args[1]).span, "depends on a latent or a plate")
                    .help("give it a constant or data covariance (one for all plate members), or write independent Normals")
                    .with_source(&model.source),
            );
        }
    }
    diags.into_result(())
}

/// Held-out rows need a guide that computes each row's parameters from its data (an encoder):
/// an automatic guide has per-row parameters that training never touches for them.
pub(super) fn check_split(model: &Model, split: crate::infer::epoch::Split) -> Result<(), Diagnostics> {
    let mut diags = Diagnostics::new();
    for (k, l) in model.latents.iter().enumerate() {
        if l.plates.contains(&split.plate) && model.guide_site(LatentId(k as u32)).is_none() {
            let plate = model.plate(split.plate);
            diags.push(
                Diagnostic::new(
                    "vi::fit::holdout",
                    format!("`{}` has no amortised guide, so its held-out rows cannot be measured", l.name),
                )
                .primary(model.sites[l.site].span, format!("one value per `{}`", plate.var))
                .help("set `holdout = 0` (or `--holdout 0`), or give the latent a guide whose parameters come from the data, e.g. an encoder network")
                .with_source(&model.source),
            );
        }
    }
    diags.into_result(())
}
