//! Declarations: `data` (and binding data to it), `const`, `param`, and `fit` settings (`net`s are in `net.rs`).

use super::{Checker, Program, Scope, Symbol};
use crate::data::Array;
use crate::diag::{did_you_mean, Diagnostic};
use crate::dist::Domain;
use crate::graph::{ConstDecl, DataDecl, DataId, Dim, NodeId, Op, ParamDecl, ParamId};
use crate::settings::Value;
use crate::syntax::ast::{self, ExprKind};
use crate::syntax::Span;

const DATA_TYPES: &[&str] = &[
    "real", "positive", "unit", "simplex", "binary", "count", "int", "bounded",
];
const PARAM_TYPES: &[&str] = &["real", "positive", "unit", "simplex", "bounded"];

impl Checker<'_> {
    pub(super) fn data_decl(&mut self, d: &ast::DataDecl) {
        let free = self.claim(&d.name, None);
        if free {
            // Until the declaration succeeds, its uses say nothing more: one error per mistake.
            self.poisoned.insert(d.name.name.clone());
        }
        if let Some(c) = &d.columns {
            if !matches!(c.keyword.name.as_str(), "column" | "columns") {
                self.error(
                    Diagnostic::new(
                        "vi::data::from_clause",
                        format!("unexpected `{}` after the file", c.keyword.name),
                    )
                    .primary(c.keyword.span, "expected `column` or `columns`")
                    .help(format!(
                        "pick columns of a table with `from \"file.csv\" column \"{0}\"` or `columns \"{0}0,{0}1\"`",
                        d.name.name
                    )),
                );
                return;
            }
        }
        let Some(domain) = self.domain_type(&d.ty, DATA_TYPES, "data") else {
            return;
        };
        let mut shape = Vec::new();
        for e in &d.ty.dims {
            shape.push(self.data_dim(e));
        }
        let Some(mut shape) = shape.into_iter().collect::<Option<Vec<Dim>>>() else {
            return;
        };
        if let Some(array) = self.dataset.get(&d.name.name) {
            match self.bind_data(d, domain, &shape, array) {
                Some(bound) => shape = bound,
                None => return,
            }
        }
        if !free {
            return;
        }
        self.poisoned.remove(&d.name.name);
        self.data.push(DataDecl {
            name: d.name.name.clone(),
            domain,
            shape,
            from: d.from.as_ref().map(|s| (s.value.clone(), s.span)),
            span: d.span,
        });
        let id = DataId((self.data.len() - 1) as u32);
        self.globals
            .insert(d.name.name.clone(), (Symbol::Data(id), d.name.span));
    }

    /// Fit an array to a declaration: bind its dimension names, check the known ones, and check
    /// every value against the declared support. Returns the bound shape.
    fn bind_data(
        &mut self,
        d: &ast::DataDecl,
        domain: Domain,
        shape: &[Dim],
        array: &Array,
    ) -> Option<Vec<Dim>> {
        let name = &d.name.name;
        if shape.len() == 1 && array.shape.len() >= 2 && array.shape[1..].iter().product::<usize>() > 1 {
            // Flattening a table into one long vector is never what a 1-D declaration means.
            let rest: Vec<String> = array.shape[1..].iter().map(usize::to_string).collect();
            let dim0 = d.ty.dims.first().map_or("N".to_string(), |e| match &e.kind {
                ExprKind::Name(n) => n.clone(),
                _ => array.shape[0].to_string(),
            });
            self.error(
                Diagnostic::new(
                    "vi::data::rank",
                    format!(
                        "`{name}` is declared with 1 axis, but its data ({}) has shape {:?}",
                        array.origin, array.shape
                    ),
                )
                .primary(d.ty.span, "1 axis")
                .help(format!(
                    "declare the whole table, `data {name}: {}[{dim0}, {}]`, or take one column: `--data {name}=PATH:NAME`, or in the model `from \"file.csv\" column \"NAME\"`",
                    d.ty.name.name,
                    rest.join(", ")
                )),
            );
            return None;
        }
        let dims = adapt_rank(&array.shape, shape.len());
        let Some(dims) = dims else {
            self.error(
                Diagnostic::new(
                    "vi::data::rank",
                    format!(
                        "`{name}` is declared with {} ax{}, but its data has shape {:?}",
                        shape.len(),
                        if shape.len() == 1 { "is" } else { "es" },
                        array.shape
                    ),
                )
                .primary(
                    d.ty.span,
                    format!("{} ax{}", shape.len(), if shape.len() == 1 { "is" } else { "es" }),
                )
                .help(format!(
                    "the data came from {}; declare a shape with as many axes",
                    array.origin
                )),
            );
            return None;
        };
        let mut bound = Vec::with_capacity(shape.len());
        for (k, (dim, &n)) in shape.iter().zip(&dims).enumerate() {
            let span = d.ty.dims.get(k).map_or(d.ty.span, |e| e.span);
            match dim {
                Dim::Sym {
                    name: sym,
                    value: None,
                } if self.dims.get(&**sym).is_some_and(|b| b.value.is_none()) => {
                    let b = self.dims.get_mut(&**sym).expect("checked");
                    b.value = Some(n);
                    b.bound_by = Some(format!("`{name}` ({})", array.origin));
                    bound.push(Dim::sym(sym, Some(n)));
                }
                _ if dim.value() == Some(n) => bound.push(match dim {
                    Dim::Sym { name: sym, .. } => Dim::sym(sym, Some(n)),
                    known => known.clone(),
                }),
                _ => {
                    let mut diag = Diagnostic::new(
                        "vi::data::shape",
                        format!("axis {k} of `{name}` has length {n} in the data, but the model says {dim}"),
                    )
                    .primary(span, format!("{dim}"));
                    if let Dim::Sym { name: sym, .. } = dim {
                        if let Some(by) = self.dims.get(&**sym).and_then(|b| b.bound_by.clone()) {
                            diag = diag.help(format!(
                                "{sym} = {} was bound by {by}; {} has {n}",
                                dim.value().unwrap_or(0),
                                array.origin
                            ));
                        } else {
                            diag = diag.help(format!("{} has {n} along axis {k}", array.origin));
                        }
                        if let Some(b) = self.dims.get(&**sym) {
                            if b.span != span {
                                diag = diag.secondary(b.span, format!("{sym} introduced here"));
                            }
                        }
                    } else {
                        diag = diag.help(format!("{} has {n} along axis {k}", array.origin));
                    }
                    self.error(diag);
                    return None;
                }
            }
        }
        let factor = array.unit_factor(domain);
        // A simplex is a row; other values are checked one by one, rows along the first axis.
        let width = if domain == Domain::Simplex || dims.len() >= 2 {
            dims.last().copied().unwrap_or(1).max(1)
        } else {
            1
        };
        let bad = if domain == Domain::Simplex {
            array
                .values
                .chunks(width)
                .position(|row| row.iter().any(|v| *v < 0.0) || (row.iter().sum::<f64>() - 1.0).abs() > 1e-6)
                .map(|r| r * width)
        } else {
            array.values.iter().position(|v| !domain.admits(v * factor))
        };
        if let Some(i) = bad {
            let v = array.values[i] * factor;
            let row = i / width;
            let (at, what) = if domain == Domain::Simplex {
                let entries = &array.values[row * width..(row + 1) * width];
                let shown: Vec<String> = entries.iter().take(8).map(|x| format!("{x}")).collect();
                let more = if entries.len() > 8 { ", …" } else { "" };
                let fault = match entries.iter().position(|x| *x < 0.0) {
                    Some(j) => format!("has the negative entry {} in column {}", entries[j], j + 1),
                    None => format!(
                        "sums to {}, not 1",
                        (entries.iter().sum::<f64>() * 1e9).round() / 1e9
                    ),
                };
                (
                    format!("row {}", row + 1),
                    format!("({}{more}) {fault}", shown.join(", ")),
                )
            } else if dims.len() >= 2 {
                (
                    format!("row {}, column {}", row + 1, i % width + 1),
                    format!("= {v} is not {}", domain_word(domain)),
                )
            } else {
                (
                    format!("row {}", row + 1),
                    format!("= {v} is not {}", domain_word(domain)),
                )
            };
            // Text files say which line the row is, so that an editor can jump to it.
            let place = match array.lines.get(row) {
                Some(line) => format!("{at} is line {line} of {}", array.origin),
                None => format!("the value comes from {}", array.origin),
            };
            self.error(
                Diagnostic::new("vi::data::support", format!("`{name}` at {at} {what}"))
                    .primary(d.ty.name.span, format!("declared {}", domain.keyword()))
                    .help(format!("{place}; {}", suggest_domain(domain, v))),
            );
            return None;
        }
        Some(bound)
    }

    /// A type name: `real`, `positive`, `bounded(0, 1)`, ...
    pub(super) fn domain_type(&mut self, t: &ast::TypeExpr, allowed: &[&str], what: &str) -> Option<Domain> {
        let name = t.name.name.as_str();
        if !allowed.contains(&name) {
            let mut d = Diagnostic::new("vi::type::unknown", format!("unknown {what} type `{name}`"))
                .primary(t.name.span, "not a type");
            d = match did_you_mean(name, allowed.iter().copied()) {
                Some(s) => d.help(format!("did you mean `{s}`?")),
                None => d.help(format!("{what} types are {}", allowed.join(", "))),
            };
            self.error(d);
            return None;
        }
        if name == "bounded" {
            let scope = Scope::new(Program::Const);
            let vals: Vec<Option<f64>> = t
                .args
                .iter()
                .map(|a| self.expr(a, &scope).and_then(|id| self.constant(id)))
                .collect();
            return match vals.as_slice() {
                [Some(lo), Some(hi)] if lo < hi => Some(Domain::Interval(*lo, *hi)),
                _ => {
                    self.error(
                        Diagnostic::new("vi::type::bounded", "`bounded` takes two constants, low < high")
                            .primary(t.span, "bad bounds")
                            .help("write e.g. `bounded(0, 10)`"),
                    );
                    None
                }
            };
        }
        if !t.args.is_empty() {
            self.error(
                Diagnostic::new("vi::type::arguments", format!("type `{name}` takes no arguments"))
                    .primary(t.span, "arguments given")
                    .help(format!("write `{name}[dims]`")),
            );
            return None;
        }
        Some(match name {
            "real" => Domain::Real,
            "positive" => Domain::Positive,
            "unit" => Domain::Unit,
            "simplex" => Domain::Simplex,
            "binary" => Domain::Binary,
            "count" => Domain::Count,
            _ => Domain::Int,
        })
    }

    pub(super) fn const_decl(&mut self, c: &ast::ConstDecl) {
        let free = self.claim(&c.name, None);
        let scope = Scope::new(Program::Const);
        let Some(id) = self.expr(&c.value, &scope) else {
            return;
        };
        let Some((shape, values)) = self.fold(id) else {
            self.error(
                Diagnostic::new(
                    "vi::const::not_constant",
                    format!("const `{}` is not computable", c.name.name),
                )
                .primary(c.value.span, "not a constant")
                .help("a const is built from numbers and other consts; use `let` for anything else"),
            );
            return;
        };
        if let Some(v) = values.iter().find(|v| !v.is_finite()) {
            self.error(
                Diagnostic::new("vi::const::not_finite", format!("const `{}` is {v}", c.name.name))
                    .primary(c.value.span, "not finite")
                    .help("check for division by zero or the log of a non-positive number"),
            );
            return;
        }
        if free {
            self.consts.push(ConstDecl {
                name: c.name.name.clone(),
                shape,
                values,
                is_int: self.ty(id).elem.is_int(),
                span: c.span,
            });
            self.globals.insert(
                c.name.name.clone(),
                (Symbol::Const(self.consts.len() - 1), c.name.span),
            );
        }
    }

    /// Evaluate a constant expression to an array (shape, row-major values).
    fn fold(&self, id: NodeId) -> Option<(Vec<usize>, Vec<f64>)> {
        crate::limits::deep(|| self.fold_at_depth(id))
    }

    fn fold_at_depth(&self, id: NodeId) -> Option<(Vec<usize>, Vec<f64>)> {
        let node = &self.nodes[id.index()];
        let shape: Option<Vec<usize>> = node.ty.shape.iter().map(Dim::value).collect();
        let shape = shape?;
        if !node.ty.plates.is_empty() {
            return None;
        }
        let n: usize = shape.iter().product();
        let values = match &node.op {
            Op::Const(v) => vec![*v],
            Op::Literal(vs) => vs.clone(),
            Op::DimValue(d) => vec![d.value()? as f64],
            Op::Map(f, a) => self.fold(*a)?.1.into_iter().map(|x| f.apply(x)).collect(),
            Op::Zip(f, a, b) => {
                let (sa, va) = self.fold(*a)?;
                let (sb, vb) = self.fold(*b)?;
                match (va.len(), vb.len()) {
                    (1, _) => vb.iter().map(|y| f.apply(va[0], *y)).collect(),
                    (_, 1) => va.iter().map(|x| f.apply(*x, vb[0])).collect(),
                    _ if sa == sb => va.iter().zip(&vb).map(|(x, y)| f.apply(*x, *y)).collect(),
                    _ => return None,
                }
            }
            Op::Fill { value, .. } => vec![self.fold(*value)?.1[0]; n],
            Op::Stack(items) => {
                let mut out = Vec::with_capacity(n);
                for it in items {
                    out.extend(self.fold(*it)?.1);
                }
                out
            }
            _ => return None,
        };
        (values.len() == n).then_some((shape, values))
    }

    pub(super) fn param_decl(&mut self, p: &ast::ParamDecl) {
        let free = self.claim(&p.name, None);
        let Some(domain) = self.domain_type(&p.ty, PARAM_TYPES, "param") else {
            return;
        };
        let mut shape = Vec::new();
        for e in &p.ty.dims {
            shape.push(self.dim(e));
        }
        let Some(shape) = shape.into_iter().collect::<Option<Vec<Dim>>>() else {
            return;
        };
        if domain == Domain::Simplex && shape.is_empty() {
            self.error(
                Diagnostic::new("vi::type::simplex_scalar", "a simplex param needs a length")
                    .primary(p.ty.span, "no shape")
                    .help("write `simplex[K]`"),
            );
            return;
        }
        let init = match &p.init {
            None => None,
            Some(e) => {
                let scope = Scope::new(Program::Const);
                let v = self.expr(e, &scope).and_then(|id| self.constant(id));
                match v {
                    Some(v) if domain.admits(v) || (domain == Domain::Unit && (0.0..=1.0).contains(&v)) => {
                        Some(v)
                    }
                    Some(v) => {
                        self.error(
                            Diagnostic::new(
                                "vi::param::init",
                                format!("initial value {v} is not {}", domain_word(domain)),
                            )
                            .primary(e.span, "outside the param's support")
                            .secondary(p.ty.span, format!("declared {}", domain.keyword()))
                            .help("start the param inside its support"),
                        );
                        return;
                    }
                    None => {
                        self.error(
                            Diagnostic::new(
                                "vi::param::init",
                                "a param's initial value must be a constant scalar",
                            )
                            .primary(e.span, "not a constant")
                            .help("write a number or a const; it is broadcast to the param's shape"),
                        );
                        return;
                    }
                }
            }
        };
        if free {
            self.params.push(ParamDecl {
                name: p.name.name.clone(),
                domain,
                shape,
                init,
                span: p.span,
            });
            let id = ParamId((self.params.len() - 1) as u32);
            self.globals
                .insert(p.name.name.clone(), (Symbol::Param(id), p.name.span));
        }
    }

    pub(super) fn fit_block(&mut self, f: &ast::FitBlock) {
        for s in &f.settings {
            let value = match &s.value.kind {
                ExprKind::Num { value, .. } => Value::Number(*value),
                ExprKind::Neg(inner) => match inner.kind {
                    ExprKind::Num { value, .. } => Value::Number(-value),
                    _ => {
                        self.bad_setting_value(s.value.span);
                        continue;
                    }
                },
                ExprKind::Name(w) | ExprKind::Str(w) => Value::Word(w.clone()),
                _ => {
                    self.bad_setting_value(s.value.span);
                    continue;
                }
            };
            if let Err(d) = self
                .settings
                .set_checked(&s.key.name, s.key.span, value, s.value.span)
            {
                self.error(d);
            }
        }
    }

    fn bad_setting_value(&mut self, span: Span) {
        self.error(
            Diagnostic::new("vi::fit::bad_setting", "a setting's value is a number or a word")
                .primary(span, "not a number or a word")
                .help("write e.g. `steps = 2000` or `method = svi`"),
        );
    }
}

/// Fit an array's shape to a declared rank: equal ranks as they are; extra trailing axes are
/// flattened into the last declared axis (28×28 images into 784 pixels); a scalar takes a
/// one-element array.
fn adapt_rank(shape: &[usize], rank: usize) -> Option<Vec<usize>> {
    if shape.len() == rank {
        return Some(shape.to_vec());
    }
    if rank == 0 {
        return (shape.iter().product::<usize>() == 1).then(Vec::new);
    }
    if shape.len() > rank {
        let mut out = shape[..rank - 1].to_vec();
        out.push(shape[rank - 1..].iter().product());
        return Some(out);
    }
    // A single column read as a vector, declared as an N×1 matrix.
    if shape.len() + 1 == rank {
        let mut out = shape.to_vec();
        out.push(1);
        return Some(out);
    }
    None
}

fn domain_word(d: Domain) -> String {
    match d {
        Domain::Real => "a real number".into(),
        Domain::Positive => "positive".into(),
        Domain::Unit => "in [0, 1]".into(),
        Domain::Binary => "0 or 1".into(),
        Domain::Count => "a count (a whole number ≥ 0)".into(),
        Domain::Int => "a whole number".into(),
        other => format!("in {other}"),
    }
}

fn suggest_domain(declared: Domain, v: f64) -> String {
    let fits = if v.fract() == 0.0 && v >= 0.0 {
        "count"
    } else if v.fract() == 0.0 {
        "int"
    } else if (0.0..=1.0).contains(&v) {
        "unit"
    } else if v > 0.0 {
        "positive"
    } else {
        "real"
    };
    if fits == declared.keyword() {
        "fix the data".into()
    } else {
        format!("fix the data, or declare it `{fits}` if such values are expected")
    }
}

#[cfg(test)]
mod tests {
    use super::adapt_rank;

    #[test]
    fn ranks_adapt_by_flattening_trailing_axes() {
        assert_eq!(adapt_rank(&[10, 28, 28], 2), Some(vec![10, 784]));
        assert_eq!(adapt_rank(&[5], 1), Some(vec![5]));
        assert_eq!(adapt_rank(&[5], 2), Some(vec![5, 1]));
        assert_eq!(adapt_rank(&[1], 0), Some(vec![]));
        assert_eq!(adapt_rank(&[3], 0), None);
    }
}
