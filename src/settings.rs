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
    /// One of these words (written as a name or a string).
    Choice(&'static [&'static str]),
}

#[derive(Clone, Copy, Debug)]
pub struct Spec {
    pub key: &'static str,
    pub kind: Kind,
    pub doc: &'static str,
}

const fn num(key: &'static str, min: f64, max: f64, doc: &'static str) -> Spec {
    Spec {
        key,
        kind: Kind::Number { min, max, int: false },
        doc,
    }
}

const fn int(key: &'static str, min: f64, doc: &'static str) -> Spec {
    Spec {
        key,
        kind: Kind::Number {
            min,
            max: 1e15,
            int: true,
        },
        doc,
    }
}

const fn choice(key: &'static str, options: &'static [&'static str], doc: &'static str) -> Spec {
    Spec {
        key,
        kind: Kind::Choice(options),
        doc,
    }
}

/// Every setting a `fit` block accepts.
pub const SPECS: &[Spec] = &[
    choice(
        "method",
        &["auto", "cavi", "svi"],
        "inference: closed-form CAVI where conjugate, gradients otherwise",
    ),
    choice(
        "guide",
        &["mean_field", "full_rank"],
        "the automatic guide's covariance",
    ),
    choice(
        "optimizer",
        &["adam", "adagrad", "rmsprop", "sgd"],
        "the stochastic optimiser",
    ),
    choice(
        "estimator",
        &["mc", "analytic"],
        "ELBO estimator: Monte-Carlo log p - log q (L^A) or analytic KL (L^B)",
    ),
    num("lr", 1e-12, 1e6, "learning rate"),
    int("steps", 1.0, "the most optimisation steps or CAVI sweeps"),
    int(
        "epochs",
        1.0,
        "passes over the data for minibatch models (instead of steps)",
    ),
    int("samples", 1.0, "Monte-Carlo samples per step"),
    int(
        "image_height",
        1.0,
        "pixel rows of one image, for the image grids (default: square images)",
    ),
    num(
        "holdout",
        0.0,
        0.9,
        "fraction of the batched plate's rows held out to measure the fit (the last rows)",
    ),
    num("tol", 0.0, 1.0, "relative ELBO change that counts as converged"),
    int("seed", 0.0, "random seed"),
    int("restarts", 1.0, "random initialisations; the best ELBO is kept"),
    num("clip", 1e-12, 1e12, "gradient norm clipping threshold"),
    num("decay", 0.0, 1e6, "learning-rate decay: lr / (1 + decay * step)"),
    int(
        "backoff",
        0.0,
        "times a non-finite ELBO or gradient may halve the learning rate (from the last finite parameters) before the fit stops",
    ),
    num("momentum", 0.0, 0.999_999, "momentum for sgd"),
];

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

fn validate(spec: &Spec, value: Value) -> Result<Value, String> {
    match (spec.kind, value) {
        (Kind::Number { min, max, int }, Value::Number(x)) => {
            if int && x.fract() != 0.0 {
                Err(format!("expected a whole number, found {x}"))
            } else if !(min..=max).contains(&x) {
                Err(if max >= 1e15 && x <= max {
                    format!("must be at least {min}")
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
                    .map(|s| format!(" (did you mean `{s}`?)"))
                    .unwrap_or_default();
                Err(format!("expected one of {}{hint}", options.join(", ")))
            }
        }
        (Kind::Choice(options), Value::Number(_)) => Err(format!("expected one of {}", options.join(", "))),
    }
}
