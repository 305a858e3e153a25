//! How much memory a fit will need, estimated from the graph and its shapes before anything is
//! allocated, so that a model too large for the machine is refused with a figure instead of
//! being killed by the kernel half-way through.
//!
//! The estimate counts what the engines hold at their peak: the data (a host copy in f64 and
//! the device's copy), every graph value and its gradient on the tape, once per Monte-Carlo
//! sample where it depends on a latent (per minibatch, not per data set, for batched plates),
//! the hidden layers of networks, and the learnables with their optimiser state. It is meant
//! to be right within a factor of two, which is what separates "fits" from "does not".

use crate::backend::Precision;
use crate::diag::Diagnostic;
use crate::graph::{Model, NodeId, Op};
use crate::limits;
use crate::syntax::Span;
use crate::Loaded;

use super::FitOptions;

/// Bytes a fit needs, with its largest single part for the message.
#[derive(Clone, Debug)]
pub struct Estimate {
    pub total: f64,
    /// What the largest part is, and where in the source.
    pub largest: (String, f64, Option<Span>),
}

/// Estimate a fit's peak memory; `cavi` for the closed-form engine (f64, no tape, no samples).
pub fn estimate(loaded: &Loaded, opts: &FitOptions, cavi: bool) -> Estimate {
    let model = &loaded.model;
    let elem = if cavi || opts.precision == Precision::F64 {
        8.0
    } else {
        4.0
    };
    // A gradient fit keeps each value and its gradient; CAVI keeps values.
    let tape = if cavi { 1.0 } else { 2.0 };
    let samples = if cavi { 1.0 } else { opts.samples.max(1) as f64 };
    // Each part with the declaration it comes from, where one does.
    let mut parts: Vec<(String, f64, Option<Span>)> = Vec::new();

    let data: f64 = loaded.data.arrays.values().map(|a| a.len() as f64).sum();
    // The values read from the file, the bound array and the engine's host copy (f64), and the
    // device's copy.
    let largest_data = model
        .data
        .iter()
        .max_by_key(|d| loaded.data.get(&d.name).map_or(0, |a| a.len()))
        .map(|d| d.span);
    parts.push(("the data".into(), data * (3.0 * 8.0 + elem), largest_data));

    let random = random_nodes(model);
    for (k, node) in model.nodes.iter().enumerate() {
        let per_sample = if random[k] { samples } else { 1.0 };
        let n = elements(model, &node.ty.plates, &node.ty.shape);
        let mut bytes = n * per_sample * elem * tape;
        if let Op::Net { net, input, layer } = &node.op {
            // Hidden activations, before and after the nonlinearity.
            let decl = &model.nets[net.index()];
            let input_width = dim(decl.widths.first());
            let rows = elements(model, &model.node(*input).ty.plates, &model.node(*input).ty.shape)
                / input_width.max(1.0);
            let last = layer.unwrap_or(decl.widths.len() - 1).min(decl.widths.len() - 1);
            let hidden: f64 = decl.widths[1..last.max(1)].iter().map(|d| dim(Some(d))).sum();
            // A convolution also holds its patches: each output position's k·k·c taps.
            let patches: f64 = decl.patch_counts().iter().map(|&n| n as f64).sum();
            bytes += rows * (hidden * 2.0 + patches) * per_sample * elem * tape;
        }
        parts.push((
            "the values and gradients of this expression".into(),
            bytes,
            Some(node.span),
        ));
    }
    // Each `~` statement's log density, per element.
    for site in &model.sites {
        let n = elements(model, &site.plates, &site.dist.value_shape());
        parts.push((
            "the log densities of this statement".into(),
            n * samples * elem * tape,
            Some(site.span),
        ));
    }
    // Learnables: f64 host values, tail average, last good values and two optimiser moments,
    // plus the device's value and gradient.
    let per_learnable = if cavi { 8.0 * 2.0 } else { 8.0 * 5.0 + elem * 2.0 };
    for latent in &model.latents {
        let n = elements(model, &latent.plates, &latent.shape);
        let q = if cavi {
            // A categorical's q has a probability per category; other families' natural
            // parameters are about one per element (a Dirichlet's already counts its categories).
            let site = &model.sites[latent.site];
            if site.dist.family == crate::dist::Family::Categorical {
                let k = site
                    .dist
                    .args
                    .first()
                    .map_or(1.0, |a| dim(model.node(*a).ty.shape.last()));
                n * k.max(2.0)
            } else {
                2.0 * n
            }
        } else if opts.guide == super::Guide::FullRank {
            // Its loc; the shared Cholesky factor is counted below.
            n
        } else {
            2.0 * n
        };
        // Drawing from q: one value per sample, and its gradient.
        let draws = if cavi { 0.0 } else { n * samples * elem * tape };
        parts.push((
            format!("the variational parameters of `{}`", latent.name),
            q * per_learnable + draws,
            Some(latent.span),
        ));
    }
    if !cavi && opts.guide == super::Guide::FullRank {
        // One Gaussian over every latent the model's guide does not draw: a D × D factor.
        let d: f64 = model
            .latents
            .iter()
            .enumerate()
            .filter(|(k, _)| model.guide_site(crate::graph::LatentId(*k as u32)).is_none())
            .map(|(_, l)| elements(model, &l.plates, &l.shape))
            .sum();
        parts.push((
            "the full-rank guide's Cholesky factor".into(),
            d * (d + 1.0) / 2.0 * per_learnable + d * samples * elem * tape,
            model.settings.span("guide"),
        ));
    }
    for net in &model.nets {
        let weights = net.weight_count() as f64;
        parts.push((
            format!("the weights of network `{}`", net.name),
            weights * per_learnable,
            Some(net.span),
        ));
    }
    for p in &model.params {
        let n = elements(model, &[], &p.shape);
        parts.push((format!("parameter `{}`", p.name), n * per_learnable, Some(p.span)));
    }
    // The fit diagnostics evaluate log p(x, z) for draws from q a chunk at a time; each work unit
    // holds about this many bytes of intermediate values (measured on gmm and lda).
    const DIAGNOSTIC_BYTES_PER_UNIT: f64 = 150.0;
    if opts.diagnostic_draws > 0 && model.nets.is_empty() {
        let work = (work_per_draw(model) * opts.diagnostic_draws as f64).min(WORK_PER_CHUNK);
        parts.push((
            "the fit diagnostics' draws".into(),
            work * DIAGNOSTIC_BYTES_PER_UNIT,
            None,
        ));
    }
    // The program, its libraries and the allocator's caches.
    parts.push(("the program itself".into(), 32.0 * 1024.0 * 1024.0, None));
    let total = parts.iter().map(|p| p.1).sum();
    let largest = parts
        .into_iter()
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .expect("the data part is always there");
    Estimate { total, largest }
}

/// Refuse a fit that needs more memory than the machine has free.
pub fn check(loaded: &Loaded, opts: &FitOptions, cavi: bool) -> Result<(), Diagnostic> {
    let Some(available) = limits::available_bytes() else {
        return Ok(());
    };
    let est = estimate(loaded, opts, cavi);
    if est.total <= available as f64 {
        return Ok(());
    }
    let (what, bytes, span) = &est.largest;
    let mut advice = Vec::new();
    if !cavi && opts.guide == super::Guide::FullRank {
        advice.push("the mean-field guide");
    }
    if !cavi && opts.samples > 1 {
        advice.push("fewer Monte-Carlo samples (`--samples`)");
    }
    if loaded.model.plates.iter().any(|p| p.batch.is_none()) && !cavi {
        advice.push("a minibatch plate (`for i in 1..N batch 256`)");
    }
    advice.push("a smaller model or less data");
    let mut d = Diagnostic::new(
        "vi::fit::memory",
        format!(
            "this fit would need about {} of memory; {} is available",
            limits::human(est.total),
            limits::human(available as f64)
        ),
    )
    .help(format!(
        "the largest part is {what} (about {}); try {}; if the estimate is wrong for this machine, \
         set {}=none",
        limits::human(*bytes),
        advice.join(", or "),
        limits::ENV
    ));
    if let Some(span) = span {
        d = d
            .primary(*span, format!("about {}", limits::human(*bytes)))
            .with_source(&loaded.model.source);
    }
    Err(d)
}

/// Elements of a value over `plates` (their minibatch size where batched) with `shape`.
fn elements(model: &Model, plates: &[crate::graph::PlateId], shape: &[crate::graph::Dim]) -> f64 {
    let over: f64 = plates
        .iter()
        .map(|p| {
            let plate = model.plate(*p);
            plate.batch.map_or_else(|| dim(Some(&plate.size)), |b| b as f64)
        })
        .product();
    over * shape.iter().map(|d| dim(Some(d))).product::<f64>()
}

fn dim(d: Option<&crate::graph::Dim>) -> f64 {
    d.and_then(crate::graph::Dim::value).unwrap_or(1) as f64
}

/// Nodes whose value depends on a latent (so each Monte-Carlo sample has its own).
fn random_nodes(model: &Model) -> Vec<bool> {
    let mut random = vec![false; model.nodes.len()];
    // Nodes come in topological order: inputs before the nodes that read them.
    for (k, node) in model.nodes.iter().enumerate() {
        random[k] = matches!(node.op, Op::Latent(_))
            || crate::graph::op_inputs(&node.op)
                .iter()
                .any(|i: &NodeId| random.get(i.index()).copied().unwrap_or(false));
    }
    random
}

/// The diagnostics and the IW evaluations draw this many data-point evaluations at a time.
pub(crate) const WORK_PER_CHUNK: f64 = 1e6;
/// The values one draw's densities read: [`work_per_draw`], with each statement's members
/// counted as wide as its widest argument (a Categorical over V words reads V values per
/// token where its value is one).
pub(crate) fn values_per_draw(model: &Model) -> f64 {
    model
        .sites
        .iter()
        .map(|s| {
            let lens = model.full_shape(&s.plates, &s.dist.value_shape());
            let own: f64 = s.dist.value_shape().iter().map(|d| dim(Some(d))).product();
            let widest = s
                .dist
                .args
                .iter()
                .map(|a| {
                    model
                        .node(*a)
                        .ty
                        .shape
                        .iter()
                        .map(|d| dim(Some(d)))
                        .product::<f64>()
                })
                .fold(own, f64::max);
            lens.iter().map(|&d| d as f64).product::<f64>() * widest / own.max(1.0)
        })
        .sum::<f64>()
        .max(1.0)
}

/// The number of values one draw evaluates: each statement's plate members times its shape.
pub(crate) fn work_per_draw(model: &Model) -> f64 {
    model
        .sites
        .iter()
        .map(|s| {
            let lens = model.full_shape(&s.plates, &s.dist.value_shape());
            lens.iter().map(|&d| d as f64).product::<f64>()
        })
        .sum::<f64>()
        .max(1.0)
}
