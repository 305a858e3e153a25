//! Observed values of discrete families against the support the distribution gives them, once
//! data are bound: a Categorical's 0..K−1 with K from its weights or logits, a Binomial's 0..n,
//! a Bernoulli's [0, 1], counts that are whole and non-negative. A value outside would be read
//! as some other value (a category clamped, a count's log-factorial of a fraction) and fitted
//! without a word, so it is a located error naming the file, row, line and value.
//!
//! The values are followed from the data array as index values are (`index.rs`), so an
//! observation of `y[i]`, `y[i] - 1` or `y[g[i]]` is checked element by element.

use super::index::Taken;
use super::Checker;
use crate::diag::Diagnostic;
use crate::dist::Family;
use crate::graph::{DataId, DistApp, NodeId, Op};
use crate::syntax::Span;

/// What a discrete family allows one observed value to be.
struct Allowed {
    /// Whole numbers only (a Bernoulli also takes grey levels in [0, 1]).
    whole: bool,
    /// The largest value: one for all, or one per observed element.
    upper: Upper,
    /// How the range reads in a message: "a category 0..2 (K = 3)".
    words: String,
    /// Where the upper bound comes from, if from an argument.
    source: Option<(Span, String)>,
}

/// Where the observed values come from.
enum Observed {
    Direct(DataId),
    Followed(Taken),
}

enum Upper {
    None,
    All(f64),
    /// Aligned with the observed values' entries (a Binomial's `n[i]` from data).
    Each(Vec<f64>),
}

impl Checker<'_> {
    /// Whether every bound value `value` (observed by `app` at `tspan`) is in the family's
    /// support; reports the first that is not.
    pub(super) fn observed_in_support(&mut self, value: NodeId, app: &DistApp, tspan: Span) -> bool {
        if self.discrete_observation(app).is_none() {
            return true;
        }
        // The data itself (or its view along plates) is read straight from the array, so that
        // a million images cost one pass and no copy; an expression of it is followed.
        let observed = match self.data_view(value) {
            Some(d) => Observed::Direct(d),
            None => match self.taken(value) {
                Some(t) => Observed::Followed(t),
                None => return true,
            },
        };
        let Some(allowed) = self.allowed(app, value) else {
            return true;
        };
        let upper_at = |k: usize| match &allowed.upper {
            Upper::None => f64::INFINITY,
            Upper::All(u) => *u,
            Upper::Each(us) => us.get(k).copied().unwrap_or(f64::INFINITY),
        };
        let admits = |k: usize, v: f64| v >= 0.0 && v <= upper_at(k) && (!allowed.whole || v.fract() == 0.0);
        let (data, combined) = match &observed {
            Observed::Direct(d) => (*d, false),
            Observed::Followed(t) => (t.data, true),
        };
        let values = || -> Box<dyn Iterator<Item = (usize, usize, f64)> + '_> {
            match &observed {
                Observed::Direct(d) => {
                    let decl = &self.data[d.index()];
                    let array = self.dataset.get(&decl.name).expect("a data view is bound");
                    let factor = array.unit_factor(decl.domain);
                    Box::new(
                        array
                            .values
                            .iter()
                            .enumerate()
                            .map(move |(k, v)| (k, k, v * factor)),
                    )
                }
                Observed::Followed(t) => {
                    Box::new(t.entries.iter().enumerate().map(|(k, e)| (k, e.source, e.value)))
                }
            }
        };
        let Some((_, source, bad)) = values().find(|&(k, _, v)| !admits(k, v)) else {
            return true;
        };
        // Categories counted from 1 (R's and Stan's convention) are the usual cause.
        let family = app.value_family();
        let one_based = family == Family::Categorical
            && values().all(|(k, _, v)| v >= 1.0 && v <= upper_at(k) + 1.0)
            && values().any(|(k, _, v)| v == upper_at(k) + 1.0);
        let Some((at, place)) = self.data_place(data, source) else {
            return true;
        };
        let name = &self.data[data.index()].name;
        let message = if combined {
            format!(
                "this observed value is {} at {at} of `{name}`, outside {family}'s {}",
                bad, allowed.words
            )
        } else {
            format!(
                "`{name}` at {at} is {}, outside {family}'s {}",
                bad, allowed.words
            )
        };
        let mut d =
            Diagnostic::new("vi::data::observed_support", message).primary(tspan, format!("{bad} at {at}"));
        if let Some((span, label)) = &allowed.source {
            d = d.secondary(*span, label.clone());
        }
        let hint = if one_based {
            format!("; the values run from 1 to K, as if counted from 1: observe `{name}[…] - 1`")
        } else {
            String::new()
        };
        self.error(d.help(format!("{place}; fix the data, or the distribution{hint}")));
        false
    }

    /// The discrete family whose values an observation by `app` takes, if any.
    fn discrete_observation(&self, app: &DistApp) -> Option<Family> {
        let f = app.value_family();
        matches!(
            f,
            Family::Bernoulli
                | Family::Binomial
                | Family::BetaBinomial
                | Family::Poisson
                | Family::NegativeBinomial
                | Family::Categorical
                | Family::Multinomial
        )
        .then_some(f)
    }

    fn allowed(&self, app: &DistApp, value: NodeId) -> Option<Allowed> {
        let family = app.value_family();
        let mixture = family != app.family;
        let count = || Allowed {
            whole: true,
            upper: Upper::None,
            words: "support, whole numbers 0, 1, 2, …".into(),
            source: None,
        };
        if mixture {
            // A mixture's arguments are its weights and its components' stacked: only what
            // the component family itself allows is checked.
            return Some(match family {
                Family::Bernoulli => Allowed {
                    whole: false,
                    upper: Upper::All(1.0),
                    words: "support [0, 1]".into(),
                    source: None,
                },
                _ => count(),
            });
        }
        let arg = |name: &str| {
            let k = app.param_names().position(|n| n == name)?;
            app.args.get(k).copied()
        };
        Some(match family {
            Family::Bernoulli => Allowed {
                whole: false,
                upper: Upper::All(1.0),
                words: "support [0, 1]".into(),
                source: None,
            },
            Family::Categorical => {
                let weights = *app.args.first()?;
                let k = self.nodes[weights.index()].ty.shape.last()?.value()?;
                let what = if app.param_names().next() == Some("logits") {
                    "logits"
                } else {
                    "probabilities"
                };
                Allowed {
                    whole: true,
                    upper: Upper::All(k as f64 - 1.0),
                    words: format!("categories 0..{} (K = {k})", k.saturating_sub(1)),
                    source: Some((self.node_span(weights), format!("{k} {what}: K = {k}"))),
                }
            }
            Family::Binomial | Family::BetaBinomial => {
                let n = arg("n")?;
                let span = self.node_span(n);
                if let Some(c) = self.constant(n) {
                    Allowed {
                        whole: true,
                        upper: Upper::All(c),
                        words: format!("support 0..{c} (n = {c})"),
                        source: Some((span, format!("n = {c}"))),
                    }
                } else {
                    match self.aligned_bound(n, value) {
                        Some(each) => Allowed {
                            whole: true,
                            upper: Upper::Each(each),
                            words: "support 0..n (its trials)".into(),
                            source: Some((span, "the number of trials n".into())),
                        },
                        None => count(),
                    }
                }
            }
            _ => count(),
        })
    }

    /// The values of `n` member by member beside the observed values, when both come from data
    /// along the same plates and axes (`y[i] ~ Binomial(n[i], p)`).
    fn aligned_bound(&self, n: NodeId, value: NodeId) -> Option<Vec<f64>> {
        let (tn, taken) = (self.taken(n)?, self.taken(value)?);
        tn.aligned_with(&taken)
            .then(|| tn.entries.iter().map(|e| e.value).collect())
    }

    /// The bound data array `value` is, itself or viewed along plates (`y`, `y[i]`): each of
    /// its elements observed once, in the array's order.
    fn data_view(&self, value: NodeId) -> Option<DataId> {
        let data = match &self.nodes[value.index()].op {
            Op::Data(d) => *d,
            Op::PlateView { src, .. } => match self.nodes[src.index()].op {
                Op::Data(d) => d,
                _ => return None,
            },
            _ => return None,
        };
        self.dataset.get(&self.data[data.index()].name).map(|_| data)
    }
}
