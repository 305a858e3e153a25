//! Fit settings: what a model's `fit { ... }` block may say, checked against one table.
//!
//! Command-line flags override these; the engines read the merged result through the typed
//! getters. Unknown keys and bad values are diagnostics with the span of the setting.

use std::collections::BTreeMap;

use crate::diag::{did_you_mean, Diagnostic};
use crate::syntax::Span;

/// What kind of value a setting takes.
#[derive(Clone, Copy, Debug)]
pub enum Kind {
    /// A number in `[min, max]`, an integer when `int` is set.
    Number { min: f64, max: f64, int: bool },
    /// One of these words (written as a name or a string; `-` and `_` alike).
    Choice(&'static [&'static str]),
}

/// What a fit uses when a setting is not given.
#[derive(Clone, Copy, Debug)]
pub enum DefaultValue {
    Number(f64),
    Word(&'static str),
    /// Each engine has its own: closed-form CAVI, and gradients.
    PerEngine {
        cavi: f64,
        svi: f64,
    },
    /// Worked out from the model; the text says how.
    FromModel(&'static str),
    /// Off unless given.
    Unset,
}

impl DefaultValue {
    /// For `--help`: `0.01`, `adam`, `1000 (CAVI) / 10000 (gradients)`.
    pub fn describe(self) -> Option<String> {
        match self {
            DefaultValue::Number(x) => Some(show(x)),
            DefaultValue::Word(w) => Some(w.replace('_', "-")),
            DefaultValue::PerEngine { cavi, svi } => {
                Some(format!("{} for CAVI, {} for gradients", show(cavi), show(svi)))
            }
            DefaultValue::FromModel(how) => Some(how.to_string()),
            DefaultValue::Unset => None,
        }
    }
}

/// One fit setting: its key in a `fit { }` block, its command-line flag, the values it takes,
/// its default and its help. Everything that reads settings reads this row.
#[derive(Clone, Copy, Debug)]
pub struct Spec {
    pub key: &'static str,
    /// The flag's long name, without `--`.
    pub flag: &'static str,
    pub kind: Kind,
    pub default: DefaultValue,
    pub doc: &'static str,
}

const fn num(
    key: &'static str,
    flag: &'static str,
    min: f64,
    max: f64,
    default: DefaultValue,
    doc: &'static str,
) -> Spec {
    Spec {
        key,
        flag,
        kind: Kind::Number { min, max, int: false },
        default,
        doc,
    }
}

const fn int(
    key: &'static str,
    flag: &'static str,
    min: f64,
    default: DefaultValue,
    doc: &'static str,
) -> Spec {
    Spec {
        key,
        flag,
        kind: Kind::Number {
            min,
            max: 1e15,
            int: true,
        },
        default,
        doc,
    }
}

const fn choice(
    key: &'static str,
    options: &'static [&'static str],
    default: &'static str,
    doc: &'static str,
) -> Spec {
    Spec {
        key,
        flag: key,
        kind: Kind::Choice(options),
        default: DefaultValue::Word(default),
        doc,
    }
}

/// Every fit setting, in the order `--help` and the diagnostics list them.
pub const SPECS: &[Spec] = &[
    choice(
        "method",
        &["auto", "cavi", "svi", "pathfinder"],
        "auto",
        "inference: closed-form CAVI where conjugate, gradients otherwise (pathfinder: multi-path Pathfinder alone)",
    ),
    choice(
        "guide",
        &["mean_field", "full_rank"],
        "mean_field",
        "the automatic guide's covariance",
    ),
    choice(
        "optimizer",
        &["adam", "adagrad", "rmsprop", "sgd"],
        "adam",
        "the stochastic optimiser",
    ),
    choice(
        "estimator",
        &["mc", "analytic"],
        "mc",
        "ELBO estimator: Monte-Carlo log p - log q (L^A) or analytic KL (L^B)",
    ),
    num("lr", "lr", 1e-12, 1e6, DefaultValue::Number(0.01), "learning rate"),
    int(
        "steps",
        "steps",
        1.0,
        DefaultValue::PerEngine {
            cavi: 1000.0,
            svi: 10000.0,
        },
        "the most optimisation steps or CAVI sweeps",
    ),
    int(
        "epochs",
        "epochs",
        1.0,
        DefaultValue::Unset,
        "passes over the data for minibatch models (instead of steps)",
    ),
    int(
        "samples",
        "samples",
        1.0,
        DefaultValue::Number(1.0),
        "Monte-Carlo samples per step",
    ),
    int(
        "image_height",
        "image-height",
        1.0,
        DefaultValue::FromModel("square images"),
        "pixel rows of one image, for the image grids (default: square images)",
    ),
    num(
        "holdout",
        "holdout",
        0.0,
        0.9,
        DefaultValue::FromModel("0.1 for models with networks, else 0"),
        "fraction of the batched plate's rows held out to measure the fit (the last rows)",
    ),
    num(
        "tol",
        "tol",
        0.0,
        1.0,
        DefaultValue::PerEngine { cavi: 1e-8, svi: 1e-4 },
        "relative ELBO change that counts as converged",
    ),
    int("seed", "seed", 0.0, DefaultValue::Number(0.0), "random seed"),
    int(
        "restarts",
        "restarts",
        1.0,
        DefaultValue::Number(1.0),
        "random initialisations; the best ELBO is kept",
    ),
    int(
        "paths",
        "paths",
        1.0,
        DefaultValue::Number(4.0),
        "Pathfinder's paths from random starts, pooled by importance resampling (--method pathfinder)",
    ),
    choice(
        "init",
        &["pathfinder", "origin"],
        "pathfinder",
        "where gradient VI starts: the best normal approximation along an L-BFGS path (which also scales each step), or the origin of the unconstrained space",
    ),
    choice(
        "reparam",
        &["auto", "none"],
        "auto",
        "auto: a latent whose loc-scale prior has a latent scale (`theta ~ Normal(mu, tau)`) is fitted in non-centred form, as (theta - mu) / tau; none: every latent as written",
    ),
    num("clip", "clip", 1e-12, 1e12, DefaultValue::Unset, "gradient norm clipping threshold"),
    num(
        "decay",
        "decay",
        0.0,
        1e6,
        DefaultValue::Number(0.0),
        "learning-rate decay: lr / (1 + decay * step)",
    ),
    int(
        "backoff",
        "lr-backoff",
        0.0,
        DefaultValue::Number(0.0),
        "times a non-finite ELBO or gradient may halve the learning rate (from the last finite parameters) before the fit stops",
    ),
    num(
        "momentum",
        "momentum",
        0.0,
        0.999_999,
        DefaultValue::Number(0.9),
        "momentum for sgd",
    ),
];

/// The row of `key`, at compile time (for constants taken from the table).
pub const fn spec_of(key: &str) -> &'static Spec {
    let mut i = 0;
    while i < SPECS.len() {
        let (a, b) = (SPECS[i].key.as_bytes(), key.as_bytes());
        if a.len() == b.len() {
            let mut j = 0;
            while j < a.len() && a[j] == b[j] {
                j += 1;
            }
            if j == a.len() {
                return &SPECS[i];
            }
        }
        i += 1;
    }
    panic!("not a setting")
}

/// The CAVI and gradient defaults of a per-engine setting, at compile time.
pub const fn per_engine(key: &str) -> (f64, f64) {
    match spec_of(key).default {
        DefaultValue::PerEngine { cavi, svi } => (cavi, svi),
        _ => panic!("not a per-engine setting"),
    }
}

/// A setting's value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Number(f64),
    Word(String),
}

/// Checked settings, each with the span it was written at (none when it came from a flag).
#[derive(Clone, Debug, Default)]
pub struct Settings {
    values: BTreeMap<&'static str, (Value, Option<Span>)>,
}

impl Settings {
    pub fn spec(key: &str) -> Option<&'static Spec> {
        SPECS.iter().find(|s| s.key == key)
    }

    /// Check and store one setting from a model file.
    pub fn set_checked(
        &mut self,
        key: &str,
        key_span: Span,
        value: Value,
        value_span: Span,
    ) -> Result<(), Diagnostic> {
        let Some(spec) = Settings::spec(key) else {
            let mut d = Diagnostic::new("vi::fit::unknown_setting", format!("unknown setting `{key}`"))
                .primary(key_span, "not a fit setting");
            d = match did_you_mean(key, SPECS.iter().map(|s| s.key)) {
                Some(s) => d.help(format!("did you mean `{s}`?")),
                None => d.help(format!(
                    "the settings are {}",
                    SPECS
                        .iter()
                        .map(|s| format!("`{}`", s.key))
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            };
            return Err(d);
        };
        let value = validate(spec, value).map_err(|msg| {
            Diagnostic::new("vi::fit::bad_setting", format!("bad value for `{key}`"))
                .primary(value_span, msg)
                .help(format!("`{key}`: {}", spec.doc))
        })?;
        if let Some((_, Some(prev))) = self.values.get(spec.key) {
            return Err(
                Diagnostic::new("vi::fit::duplicate_setting", format!("`{key}` is set twice"))
                    .primary(key_span, "set again here")
                    .secondary(*prev, "first set here")
                    .help("keep one of them"),
            );
        }
        self.values.insert(spec.key, (value, Some(key_span)));
        Ok(())
    }

    /// Check a value from the command line against the same table; `Err` says why not.
    pub fn check_flag(key: &str, value: Value) -> Result<Value, String> {
        let spec = Settings::spec(key).ok_or_else(|| format!("`{key}` is not a setting"))?;
        validate(spec, value)
    }

    /// Override from the command line (checked with [`Settings::check_flag`]).
    pub fn set(&mut self, key: &'static str, value: Value) {
        self.values.insert(key, (value, None));
    }

    pub fn remove(&mut self, key: &str) {
        self.values.remove(key);
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.values.get(key).map(|(v, _)| v)
    }

    pub fn span(&self, key: &str) -> Option<Span> {
        self.values.get(key).and_then(|(_, s)| *s)
    }

    pub fn number(&self, key: &str) -> Option<f64> {
        match self.get(key)? {
            Value::Number(x) => Some(*x),
            Value::Word(_) => None,
        }
    }

    pub fn count(&self, key: &str) -> Option<usize> {
        self.number(key).map(|x| x as usize)
    }

    pub fn word(&self, key: &str) -> Option<&str> {
        match self.get(key)? {
            Value::Word(w) => Some(w),
            Value::Number(_) => None,
        }
    }

    /// The setting's value, or its default from the table (`None` where it has none of its own).
    pub fn number_or_default(&self, key: &str) -> Option<f64> {
        self.number(key).or_else(|| match Settings::spec(key)?.default {
            DefaultValue::Number(x) => Some(x),
            _ => None,
        })
    }

    /// A word setting or its default.
    pub fn word_or_default(&self, key: &str) -> Option<&str> {
        self.word(key).or_else(|| match Settings::spec(key)?.default {
            DefaultValue::Word(w) => Some(w),
            _ => None,
        })
    }

    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &Value)> {
        self.values.iter().map(|(k, (v, _))| (*k, v))
    }
}

/// A bound for people: `1e-12`, `1e6`, `0.9`.
fn show(x: f64) -> String {
    if x != 0.0 && !(1e-3..1e6).contains(&x.abs()) {
        format!("{x:e}")
    } else {
        format!("{x}")
    }
}

/// A choice's words as people type them (`mean-field`; the table keys them `mean_field`, and
/// both spellings are accepted).
fn spelled(options: &[&str]) -> String {
    options
        .iter()
        .map(|o| o.replace('_', "-"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn validate(spec: &Spec, value: Value) -> Result<Value, String> {
    match (spec.kind, value) {
        (Kind::Number { min, max, int }, Value::Number(x)) => {
            if int && x.fract() != 0.0 {
                Err(format!("expected a whole number, found {x}"))
            } else if !(min..=max).contains(&x) {
                Err(if max >= 1e15 && x <= max {
                    format!("must be at least {min}")
                } else if min > 0.0 && min <= 1e-12 && x <= 0.0 {
                    format!("must be positive (at most {}), found {x}", show(max))
                } else if max >= 1e15 {
                    "must be at most 10^15".to_string()
                } else {
                    format!("must be between {} and {}", show(min), show(max))
                })
            } else {
                Ok(Value::Number(x))
            }
        }
        (Kind::Number { .. }, Value::Word(w)) => Err(format!("expected a number, found `{w}`")),
        (Kind::Choice(options), Value::Word(w)) => {
            let norm = w.replace('-', "_");
            if let Some(o) = options.iter().find(|o| **o == norm) {
                Ok(Value::Word((*o).to_string()))
            } else {
                let hint = did_you_mean(&norm, options.iter().copied())
                    .map(|s| format!(" (did you mean `{}`?)", s.replace('_', "-")))
                    .unwrap_or_default();
                Err(format!("expected one of {}{hint}", spelled(options)))
            }
        }
        (Kind::Choice(options), Value::Number(_)) => Err(format!("expected one of {}", spelled(options))),
    }
}
