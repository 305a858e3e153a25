//! Conjugacy analysis: which latents have closed-form mean-field updates.
//!
//! Every argument of every `~` statement is classified by how it depends on latents
//! ([`ArgForm`]): not at all, the latent itself, a mixture component chosen by a categorical
//! latent (`mu[c[i]]`), a row chosen by data (`theta[doc[t]]`), or a linear predictor
//! (`dot(X[i], w)`). A latent is conjugate when its prior is one of the exponential families
//! below with fixed (or conjugate-latent) parameters, and every statement that uses it uses it
//! in a slot whose likelihood is conjugate to that prior (the table in [`slot_is_conjugate`]).
//! Each rule is written once and serves every model that contains it; the CAVI engine turns
//! the plan into variational message passing updates (Winn & Bishop 2005).

use crate::dist::{Family, Parameterization};
use crate::graph::{LatentId, Model, NodeId, Op, Site, Target};
use crate::syntax::Span;

/// The variational family of a conjugate latent (the same family as its prior).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QFamily {
    /// Independent Normals, one per element.
    Normal,
    /// One multivariate Normal over the latent's vector (regression weights).
    NormalBlock,
    Gamma,
    /// On a Normal variance.
    InverseGamma,
    Beta,
    Dirichlet,
    Categorical,
}

/// How an argument depends on the latents.
#[derive(Clone, Debug, PartialEq)]
pub enum ArgForm {
    /// No latent: evaluated once.
    Const(NodeId),
    /// The latent's own value, along the statement's plates.
    Latent(LatentId),
    /// `latent[index]` along the latent's first axis, `index` a categorical latent.
    Mix { latent: LatentId, index: LatentId },
    /// `latent[index]` along the latent's first axis (its plate), `index` data.
    Gather { latent: LatentId, node: NodeId },
    /// `covariates @ latent` or `dot(covariates, latent)`: a linear predictor.
    Linear { latent: LatentId, covariates: NodeId },
}

impl ArgForm {
    pub fn latent(&self) -> Option<LatentId> {
        match self {
            ArgForm::Const(_) => None,
            ArgForm::Latent(l)
            | ArgForm::Mix { latent: l, .. }
            | ArgForm::Gather { latent: l, .. }
            | ArgForm::Linear { latent: l, .. } => Some(*l),
        }
    }

    pub fn mixture_index(&self) -> Option<LatentId> {
        match self {
            ArgForm::Mix { index, .. } => Some(*index),
            _ => None,
        }
    }
}

/// What a statement's left-hand side is.
#[derive(Clone, Debug, PartialEq)]
pub enum ValueForm {
    Data(NodeId),
    Latent(LatentId),
}

#[derive(Clone, Debug)]
pub struct SitePlan {
    pub site: usize,
    pub args: Vec<ArgForm>,
    pub value: ValueForm,
    /// The categorical latent that picks mixture components in this statement, if any.
    pub index: Option<LatentId>,
}

/// A latent's verdict.
#[derive(Clone, Debug)]
pub struct Verdict {
    pub latent: LatentId,
    /// `Some` when conjugate.
    pub q: Option<QFamily>,
    /// "Gamma prior on a Normal precision — conjugate", or why not.
    pub reason: String,
    /// The statement that breaks conjugacy, when it is broken.
    pub culprit: Option<Span>,
}

#[derive(Clone, Debug)]
pub struct Plan {
    pub verdicts: Vec<Verdict>,
    pub sites: Vec<SitePlan>,
}

impl Plan {
    pub fn all_conjugate(&self) -> bool {
        self.verdicts.iter().all(|v| v.q.is_some())
    }

    pub fn q(&self, l: LatentId) -> QFamily {
        self.verdicts[l.index()].q.expect("conjugate")
    }
}

/// Classify how `id` depends on latents.
pub fn classify(model: &Model, id: NodeId) -> Result<ArgForm, String> {
    if model.latents_of(id).is_empty() {
        return Ok(ArgForm::Const(id));
    }
    let node = model.node(id);
    let latent_of = |n: NodeId| -> Option<LatentId> {
        match &model.node(n).op {
            Op::Latent(l) => Some(*l),
            Op::Unplate { src } => match model.node(*src).op {
                Op::Latent(l) => Some(l),
                _ => None,
            },
            _ => None,
        }
    };
    match &node.op {
        Op::Latent(l) => Ok(ArgForm::Latent(*l)),
        Op::Select { src, axis: 0, index } => {
            let Some(l) = latent_of(*src) else {
                return Err("an indexed expression of a latent".into());
            };
            match model.node(*index).op {
                Op::Latent(c) if model.latent(c).support == crate::dist::Domain::Category => {
                    if model.latent(l).plates.len() > 1 {
                        return Err("a mixture over a latent drawn in nested plates".into());
                    }
                    Ok(ArgForm::Mix { latent: l, index: c })
                }
                _ if model.latents_of(*index).is_empty() => Ok(ArgForm::Gather { latent: l, node: id }),
                _ => Err("an index that depends on a latent other than a categorical draw".into()),
            }
        }
        Op::MatMul(a, b) => {
            let (la, lb) = (latent_of(*a), latent_of(*b));
            let (l, x) = match (la, lb) {
                (None, Some(l)) if model.latents_of(*a).is_empty() => (l, *a),
                (Some(l), None) if model.latents_of(*b).is_empty() => (l, *b),
                _ => return Err("a product of latents".into()),
            };
            let lat = model.latent(l);
            if lat.shape.len() != 1 || !lat.plates.is_empty() {
                return Err("a matrix product with a latent that is not one vector".into());
            }
            Ok(ArgForm::Linear {
                latent: l,
                covariates: x,
            })
        }
        other => Err(op_phrase(other)),
    }
}

/// How an unsupported expression of a latent reads in an explanation.
fn op_phrase(op: &Op) -> String {
    match op {
        Op::Map(f, _) => format!("`{}` of a latent", f.name()),
        Op::Zip(f, _, _) => format!("`{}` with a latent", f.symbol()),
        Op::Reduce(f, _) => format!("`{}` of a latent", f.name()),
        Op::Net { .. } => "a network applied to a latent".into(),
        Op::Softmax { .. } => "a softmax of a latent".into(),
        Op::Stack(_) => "a vector built from a latent".into(),
        Op::Slice { .. } => "a slice of a latent".into(),
        Op::Fill { .. } => "`fill` with a latent".into(),
        Op::Transpose(_) => "a transposed latent".into(),
        Op::PlateView { .. } => "a plate view of a latent".into(),
        _ => "an expression of a latent".into(),
    }
}

/// Whether a latent with variational family `q` may sit in `slot` of a `family` likelihood in
/// this `form`.
pub fn slot_is_conjugate(
    family: Family,
    pz: Parameterization,
    slot: &str,
    q: QFamily,
    form: &ArgForm,
) -> bool {
    use Family as F;
    use QFamily as Q;
    let plain = matches!(
        form,
        ArgForm::Latent(_) | ArgForm::Mix { .. } | ArgForm::Gather { .. }
    );
    match (family, pz, slot, q) {
        (F::Normal, _, "loc", Q::Normal) => plain,
        (F::Normal, _, "loc", Q::NormalBlock) => matches!(form, ArgForm::Linear { .. }),
        (F::Normal, Parameterization::Precision, "precision", Q::Gamma) => plain,
        (F::Normal, Parameterization::Variance, "variance", Q::InverseGamma) => plain,
        (F::Poisson, _, "rate", Q::Gamma) | (F::Exponential, _, "rate", Q::Gamma) => plain,
        (F::Gamma, _, "rate", Q::Gamma) => matches!(form, ArgForm::Latent(_)),
        (F::Bernoulli | F::Binomial, Parameterization::Standard, "p", Q::Beta) => plain,
        (F::Categorical | F::Multinomial, Parameterization::Standard, "p", Q::Dirichlet) => plain,
        _ => false,
    }
}

/// The family a latent's q takes from its prior, or why it cannot.
fn q_of_prior(model: &Model, l: LatentId, linear: bool) -> Result<QFamily, String> {
    let site = &model.sites[model.latent(l).site];
    let d = &site.dist;
    let forms: Vec<Result<ArgForm, String>> = d.args.iter().map(|a| classify(model, *a)).collect();
    let is_const = |k: usize| matches!(forms[k], Ok(ArgForm::Const(_)));
    let latent_q = |k: usize, want: Family| match &forms[k] {
        Ok(ArgForm::Latent(p)) => model.sites[model.latent(*p).site].dist.family == want,
        _ => false,
    };
    match d.family {
        Family::Normal => {
            let loc_ok = is_const(0) || latent_q(0, Family::Normal);
            let scale_ok = match d.pz {
                Parameterization::Precision => is_const(1) || latent_q(1, Family::Gamma),
                Parameterization::Variance => is_const(1) || latent_q(1, Family::InverseGamma),
                _ => is_const(1),
            };
            if !loc_ok {
                return Err("its prior mean is not fixed or a Normal latent".into());
            }
            if !scale_ok {
                return Err("its prior scale is not fixed (write `precision = tau` with a Gamma tau, or `variance = v` with an InverseGamma v)".into());
            }
            Ok(if linear {
                QFamily::NormalBlock
            } else {
                QFamily::Normal
            })
        }
        Family::Gamma => {
            if !is_const(0) {
                return Err("its Gamma shape is not fixed".into());
            }
            if !(is_const(1) || latent_q(1, Family::Gamma)) {
                return Err("its Gamma rate is not fixed or a Gamma latent".into());
            }
            Ok(QFamily::Gamma)
        }
        Family::InverseGamma if is_const(0) && is_const(1) => Ok(QFamily::InverseGamma),
        Family::Beta if is_const(0) && is_const(1) => Ok(QFamily::Beta),
        Family::Dirichlet if is_const(0) => Ok(QFamily::Dirichlet),
        Family::Categorical if d.pz == Parameterization::Standard => match &forms[0] {
            Ok(ArgForm::Const(_)) => Ok(QFamily::Categorical),
            Ok(ArgForm::Latent(p) | ArgForm::Gather { latent: p, .. })
                if model.sites[model.latent(*p).site].dist.family == Family::Dirichlet =>
            {
                Ok(QFamily::Categorical)
            }
            _ => Err("its probabilities are not fixed or a Dirichlet latent".into()),
        },
        Family::Beta | Family::Dirichlet | Family::InverseGamma => {
            Err("its prior parameters are not fixed".into())
        }
        f => Err(format!("a {f} prior has no conjugate update")),
    }
}

fn describe(model: &Model, l: LatentId, q: QFamily, uses: &[(usize, usize)]) -> String {
    let lat = model.latent(l);
    let prior = model.sites[lat.site].dist.family;
    let role = uses
        .first()
        .map(|(s, k)| {
            let site = &model.sites[*s];
            let slot = site.dist.param_names().nth(*k).unwrap_or("?");
            format!("on a {} {slot}", site.dist.family)
        })
        .unwrap_or_else(|| "with no children".into());
    match q {
        QFamily::Categorical => format!(
            "{}: Categorical assignment in a mixture — conjugate (closed-form responsibilities)",
            lat.name
        ),
        QFamily::NormalBlock => format!(
            "{}: {prior} prior on linear-regression weights — conjugate (multivariate Normal)",
            lat.name
        ),
        _ => format!("{}: {prior} prior {role} — conjugate", lat.name),
    }
}

/// One use of a latent: statement, argument slot, and the argument's form.
type Use = (usize, usize, Result<ArgForm, String>);

/// Analyse the model: a verdict per latent and the argument forms of every statement.
pub fn analyse(model: &Model) -> Plan {
    let mut sites = Vec::new();
    // (latent, site, slot, form) for every use of a latent as an argument.
    let mut uses: Vec<Vec<Use>> = vec![Vec::new(); model.latents.len()];
    let mut broken: Vec<Option<(String, Span)>> = vec![None; model.latents.len()];
    for (k, site) in model.sites.iter().enumerate() {
        let args: Vec<Result<ArgForm, String>> = site.dist.args.iter().map(|a| classify(model, *a)).collect();
        for (slot, (arg, form)) in site.dist.args.iter().zip(&args).enumerate() {
            for l in model.latents_of(*arg) {
                // Picking a mixture component is a categorical latent's conjugate role.
                if matches!(form, Ok(ArgForm::Mix { index, .. }) if *index == l) {
                    continue;
                }
                uses[l.index()].push((k, slot, form.clone()));
                if let Err(why) = form {
                    broken[l.index()].get_or_insert((
                        format!("{} depends on it through {why}", slot_label(site, slot)),
                        site.span,
                    ));
                }
            }
        }
        if let Some(t) = site.dist.trunc {
            let bounds = [t.lo, t.hi].into_iter().flatten();
            for a in site.dist.args.iter().copied().chain(bounds) {
                for l in model.latents_of(a) {
                    broken[l.index()].get_or_insert(("it appears in a truncated density".into(), site.span));
                }
            }
        }
        if site.dist.family == crate::dist::Family::Factor {
            if let Target::Derived { value } = site.target {
                for l in model.latents_of(value) {
                    broken[l.index()].get_or_insert(("it appears in a `target +=` term".into(), site.span));
                }
            }
        }
        let value = match &site.target {
            Target::Latent(l) => ValueForm::Latent(*l),
            Target::Data { value, .. } => ValueForm::Data(*value),
            Target::Derived { value } => ValueForm::Data(*value),
        };
        if let Ok(args) = args.into_iter().collect::<Result<Vec<_>, _>>() {
            let index = args.iter().find_map(ArgForm::mixture_index);
            sites.push(SitePlan {
                site: k,
                args,
                value,
                index,
            });
        }
    }
    // A latent declared on a narrower support than its prior's (`latent s: positive` with a
    // Normal prior, `latent mu: ordered[K]`) has a truncated prior: no closed form.
    for (k, lat) in model.latents.iter().enumerate() {
        let prior = &model.sites[lat.site];
        if lat.support != prior.dist.support() {
            broken[k].get_or_insert((
                format!(
                    "it is declared {}, narrower than its prior's support",
                    lat.support.keyword()
                ),
                prior.span,
            ));
        }
    }
    // Latents used inside `draw`, terms, nets or objectives are out of reach of closed forms.
    for n in &model.nodes {
        if let Op::Net { input, .. } = n.op {
            for l in model.latents_of(input) {
                broken[l.index()].get_or_insert(("it feeds a network".into(), n.span));
            }
        }
    }
    let mut verdicts = Vec::new();
    for (k, lat) in model.latents.iter().enumerate() {
        let l = LatentId(k as u32);
        let linear = uses[k]
            .iter()
            .any(|(_, _, f)| matches!(f, Ok(ArgForm::Linear { .. })));
        let prior_span = model.sites[lat.site].span;
        let mut verdict = Verdict {
            latent: l,
            q: None,
            reason: String::new(),
            culprit: None,
        };
        let prior_family = model.sites[lat.site].dist.family;
        let prior_q = q_of_prior(model, l, linear);
        // A prior family with no conjugate update is the first thing to say.
        let hopeless = matches!(&prior_q, Err(why) if why.contains("no conjugate update"));
        match (&broken[k], prior_q) {
            (_, Err(_)) if hopeless => {
                verdict.reason = format!(
                    "{}: {prior_family} prior — no conjugate update, fitted by gradients",
                    lat.name
                );
                verdict.culprit = Some(prior_span);
            }
            (Some((why, span)), _) => {
                verdict.reason = format!(
                    "{}: {prior_family} prior, but {why} — not conjugate, fitted by gradients",
                    lat.name
                );
                verdict.culprit = Some(*span);
            }
            (None, Err(why)) => {
                verdict.reason = format!(
                    "{}: {prior_family} prior, but {why} — not conjugate, fitted by gradients",
                    lat.name
                );
                verdict.culprit = Some(prior_span);
            }
            (None, Ok(q)) => {
                let bad = uses[k].iter().find(|(s, slot, f)| {
                    let site: &Site = &model.sites[*s];
                    let name = site.dist.param_names().nth(*slot).unwrap_or("");
                    let form = f.as_ref().expect("no broken uses");
                    // A categorical latent is used only as a mixture index, never as an argument.
                    q == QFamily::Categorical
                        || !slot_is_conjugate(site.dist.family, site.dist.pz, name, q, form)
                });
                match bad {
                    Some((s, slot, _)) => {
                        let site = &model.sites[*s];
                        verdict.reason = format!(
                            "{}: {prior_family} prior as the {} of a {} — not conjugate, fitted by gradients",
                            lat.name,
                            site.dist.param_names().nth(*slot).unwrap_or("?"),
                            site.dist.family
                        );
                        verdict.culprit = Some(site.span);
                    }
                    None => {
                        let u: Vec<(usize, usize)> = uses[k].iter().map(|(s, sl, _)| (*s, *sl)).collect();
                        verdict.reason = describe(model, l, q, &u);
                        verdict.q = Some(q);
                    }
                }
            }
        }
        verdicts.push(verdict);
    }
    // A mixture index must be a conjugate categorical.
    for sp in &sites {
        if let Some(c) = sp.index {
            if verdicts[c.index()].q != Some(QFamily::Categorical) {
                for a in &sp.args {
                    if let Some(l) = a.latent() {
                        if verdicts[l.index()].q.is_some() {
                            verdicts[l.index()].q = None;
                            verdicts[l.index()].reason = format!(
                                "{}: mixed by `{}`, which is not conjugate — fitted by gradients",
                                model.latent(l).name,
                                model.latent(c).name
                            );
                            verdicts[l.index()].culprit = Some(model.sites[sp.site].span);
                        }
                    }
                }
            }
        }
    }
    Plan { verdicts, sites }
}

fn slot_label(site: &Site, slot: usize) -> String {
    format!(
        "the {} of a {}",
        site.dist.param_names().nth(slot).unwrap_or("argument"),
        site.dist.family
    )
}
