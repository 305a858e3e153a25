//! Reports for people: the summary `vinf check` prints, and what a fit prints and writes.

pub mod fit;
pub mod images;
pub mod narrate;
pub mod plots;

use std::fmt::Write;

use crate::data::DataSet;
use crate::graph::{Model, ShapeDisplay, Target};

/// Left-aligned columns, two spaces apart.
fn table(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for r in rows {
        let mut line = String::from("  ");
        for (c, cell) in r.iter().enumerate() {
            line.push_str(cell);
            if c + 1 < r.len() {
                line.push_str(&" ".repeat(widths[c] - cell.chars().count() + 2));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// What `vinf check` prints for a model that checks: data with bound shapes, latents with shape,
/// support and prior family, params, nets and plates.
pub fn model_summary(model: &Model, data: &DataSet) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "model `{}` checks", model.name);

    let plate_vars = |plates: &[crate::graph::PlateId]| -> String {
        if plates.is_empty() {
            String::new()
        } else {
            format!(
                "[{}]",
                plates
                    .iter()
                    .map(|p| model.plate(*p).var.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
    };

    let _ = writeln!(out, "data");
    if model.data.is_empty() {
        out.push_str("  (none)\n");
    } else {
        let rows: Vec<Vec<String>> = model
            .data
            .iter()
            .map(|d| {
                let observed = model.sites.iter().any(|s| matches!(s.target, Target::Data { data, .. } if model.data[data.index()].name == d.name));
                let origin = match data.get(&d.name) {
                    Some(a) => a.origin.clone(),
                    None => "not bound (dimensions stay symbolic)".into(),
                };
                vec![
                    d.name.clone(),
                    format!("{}{}", d.domain.keyword(), ShapeDisplay(&d.shape)),
                    if observed { "observed".into() } else { "covariate".into() },
                    origin,
                ]
            })
            .collect();
        out.push_str(&table(&rows));
    }

    let _ = writeln!(out, "latents");
    if model.latents.is_empty() {
        out.push_str("  (none)\n");
    } else {
        let rows: Vec<Vec<String>> = model
            .latents
            .iter()
            .enumerate()
            .map(|(k, l)| {
                let site = &model.sites[l.site];
                let guide = match model.guide_site(crate::graph::LatentId(k as u32)) {
                    Some(g) => format!("guide {}", g.dist.family),
                    None => "automatic guide".into(),
                };
                vec![
                    format!("{}{}", l.name, plate_vars(&l.plates)),
                    format!("{}", ShapeDisplay(&l.shape)),
                    l.support.to_string(),
                    format!("{} prior", site.dist.family),
                    guide,
                ]
            })
            .collect();
        out.push_str(&table(&rows));
    }

    if !model.derived.is_empty() {
        // Fits summarise no codes or derived values of models with networks (see infer::fit).
        let _ = if model.nets.is_empty() {
            writeln!(out, "derived (reported from draws of q)")
        } else {
            writeln!(out, "derived (written by vinf sample)")
        };
        let rows: Vec<Vec<String>> = model
            .derived
            .iter()
            .map(|d| {
                let ty = &model.node(d.value).ty;
                let reads: Vec<&str> = model
                    .latents_of(d.value)
                    .iter()
                    .map(|l| model.latent(*l).name.as_str())
                    .collect();
                vec![
                    format!("{}{}", d.name, plate_vars(&ty.plates)),
                    format!("{}", ShapeDisplay(&ty.shape)),
                    format!("of {}", reads.join(", ")),
                ]
            })
            .collect();
        out.push_str(&table(&rows));
    }

    if !model.params.is_empty() {
        let _ = writeln!(out, "params");
        let rows: Vec<Vec<String>> = model
            .params
            .iter()
            .map(|p| {
                vec![
                    p.name.clone(),
                    format!("{}{}", p.domain.keyword(), ShapeDisplay(&p.shape)),
                    p.init
                        .map_or_else(|| "default init".to_string(), |v| format!("init {v}")),
                ]
            })
            .collect();
        out.push_str(&table(&rows));
    }

    if !model.nets.is_empty() {
        let _ = writeln!(out, "nets");
        let rows: Vec<Vec<String>> = model
            .nets
            .iter()
            .map(|n| {
                vec![
                    n.name.clone(),
                    format!("{} {}", n.kind().name(), n.describe()),
                    format!(
                        "hidden {}, out {}, init {}",
                        n.hidden.name(),
                        n.out.name(),
                        n.init.name()
                    ),
                ]
            })
            .collect();
        out.push_str(&table(&rows));
    }

    let _ = writeln!(out, "plates");
    if model.plates.is_empty() {
        out.push_str("  (none)\n");
    } else {
        let rows: Vec<Vec<String>> = model
            .plates
            .iter()
            .map(|p| {
                let mut v = vec![format!("{} in {}", p.var, p.range_text())];
                v.push(match p.batch {
                    Some(m) => format!("batch {m}"),
                    None => "full".into(),
                });
                if let Some(parent) = p.parent {
                    v.push(format!("inside {}", model.plate(parent).var));
                }
                v
            })
            .collect();
        out.push_str(&table(&rows));
    }

    let observations = model
        .sites
        .iter()
        .filter(|s| !matches!(s.target, Target::Latent(_)) && s.dist.family != crate::dist::Family::Factor)
        .count();
    let _ = writeln!(
        out,
        "{} latent{}, {} observation{}, {} param{}, {} net{}",
        model.latents.len(),
        plural(model.latents.len()),
        observations,
        plural(observations),
        model.params.len(),
        plural(model.params.len()),
        model.nets.len(),
        plural(model.nets.len()),
    );
    out
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}
