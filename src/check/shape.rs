//! Shapes: dimension expressions, broadcasting and plate unions.

use super::{Checker, Symbol};
use crate::diag::Diagnostic;
use crate::dist::Domain;
use crate::graph::{Dim, NodeId, PlateId, ShapeDisplay};
use crate::syntax::ast::{self, BinOp, ExprKind};
use crate::syntax::Span;

/// A dimension expression's value so far: its number if known, and how to print it.
struct DimVal {
    value: Option<i64>,
    text: String,
    /// Whether it mentions a data-bound name (so it prints symbolically).
    symbolic: bool,
}

impl Checker<'_> {
    /// The plates of both, outermost first (plate ids grow with nesting).
    pub(super) fn union_plates(&self, a: &[PlateId], b: &[PlateId]) -> Vec<PlateId> {
        let mut out: Vec<PlateId> = a.iter().chain(b).copied().collect();
        out.sort();
        out.dedup();
        out
    }

    /// Numpy broadcasting of two nodes' shapes (aligned at the right; a 1 stretches), with their
    /// plates united. Reports a mismatch with both operands labelled.
    pub(super) fn broadcast(
        &mut self,
        a: NodeId,
        b: NodeId,
        span: Span,
        what: &str,
    ) -> Option<(Vec<PlateId>, Vec<Dim>)> {
        let (sa, sb) = (self.ty(a).shape.clone(), self.ty(b).shape.clone());
        match broadcast_shapes(&sa, &sb) {
            Some(shape) => {
                let plates = self.union_plates(&self.ty(a).plates.clone(), &self.ty(b).plates.clone());
                Some((plates, shape))
            }
            None => {
                self.error(
                    Diagnostic::new(
                        "vi::shape::mismatch",
                        format!("shapes {} and {} do not match for `{what}`", ShapeDisplay(&sa), ShapeDisplay(&sb)),
                    )
                    .primary(self.node_span(a), format!("shape {}", ShapeDisplay(&sa)))
                    .secondary(self.node_span(b), format!("shape {}", ShapeDisplay(&sb)))
                    .secondary(span, "combined here")
                    .help("elementwise operations need equal shapes, a scalar, or axes of length 1 (aligned from the right)"),
                );
                None
            }
        }
    }

    /// A dimension: a whole number, a `const`, a data dimension name, or arithmetic of these.
    pub(super) fn dim(&mut self, e: &ast::Expr) -> Option<Dim> {
        let v = self.dim_val(e, false)?;
        self.finish_dim(v, e.span)
    }

    /// A dimension in a `data` declaration, where a new name introduces a data dimension.
    pub(super) fn data_dim(&mut self, e: &ast::Expr) -> Option<Dim> {
        let v = self.dim_val(e, true)?;
        self.finish_dim(v, e.span)
    }

    fn finish_dim(&mut self, v: DimVal, span: Span) -> Option<Dim> {
        match v.value {
            Some(n) if n < 0 => {
                self.error(
                    Diagnostic::new("vi::shape::negative", format!("a dimension of {n}"))
                        .primary(span, "negative")
                        .help("axis lengths are whole numbers, at least 0"),
                );
                None
            }
            // A plain number stays a number; a named one keeps its name for messages (`K=3`).
            Some(n) if !v.symbolic && v.text.parse::<i64>().is_ok() => Some(Dim::Known(n as usize)),
            value => Some(Dim::Sym {
                name: v.text.into(),
                value: value.map(|n| n as usize),
            }),
        }
    }

    /// The dimension called `name`, with its value if data has bound it.
    pub(super) fn dim_named(&self, name: &str) -> Dim {
        Dim::sym(name, self.dims.get(name).and_then(|d| d.value))
    }

    fn dim_val(&mut self, e: &ast::Expr, introduce: bool) -> Option<DimVal> {
        crate::limits::deep(|| self.dim_val_at_depth(e, introduce))
    }

    fn dim_val_at_depth(&mut self, e: &ast::Expr, introduce: bool) -> Option<DimVal> {
        match &e.kind {
            ExprKind::Num { value, is_int: true } if *value < 1e15 => Some(DimVal {
                value: Some(*value as i64),
                text: format!("{value}"),
                symbolic: false,
            }),
            ExprKind::Num { value, .. } => {
                self.error(
                    Diagnostic::new("vi::shape::not_whole", format!("a dimension of {value}"))
                        .primary(e.span, "not a whole number")
                        .help("axis lengths are whole numbers"),
                );
                None
            }
            ExprKind::Name(n) => {
                if let Some(d) = self.dims.get(n) {
                    return Some(DimVal {
                        value: d.value.map(|v| v as i64),
                        text: n.clone(),
                        symbolic: true,
                    });
                }
                match self.globals.get(n).copied() {
                    Some((Symbol::Const(k), _)) => {
                        let c = &self.consts[k];
                        if c.shape.is_empty() && c.values[0].fract() == 0.0 {
                            Some(DimVal {
                                value: Some(c.values[0] as i64),
                                text: n.clone(),
                                symbolic: false,
                            })
                        } else {
                            self.error(
                                Diagnostic::new(
                                    "vi::shape::not_whole",
                                    format!("const `{n}` is not a whole number"),
                                )
                                .primary(e.span, "used as a dimension")
                                .secondary(c.span, "declared here")
                                .help("dimensions are whole numbers"),
                            );
                            None
                        }
                    }
                    // Scalar whole-number data (Stan's `int<lower=0> K`), once bound.
                    Some((Symbol::Data(id), span))
                        if self.data[id.index()].shape.is_empty()
                            && matches!(self.data[id.index()].domain, Domain::Count | Domain::Int) =>
                    {
                        let value = self.dataset.get(n).map(|a| a.values[0]);
                        if let Some(v) = value.filter(|v| *v < 0.0 || v.fract() != 0.0) {
                            self.error(
                                Diagnostic::new(
                                    "vi::shape::not_whole",
                                    format!("`{n}` is {v}, not a length"),
                                )
                                .primary(e.span, "used as a dimension")
                                .secondary(span, "declared here")
                                .help("a dimension is a whole number, at least 0"),
                            );
                            return None;
                        }
                        Some(DimVal {
                            value: value.map(|v| v as i64),
                            text: n.clone(),
                            symbolic: true,
                        })
                    }
                    Some((sym, span)) => {
                        self.error(
                            Diagnostic::new("vi::shape::not_dimension", format!("`{n}` is not a dimension"))
                                .primary(e.span, "used as a dimension")
                                .secondary(span, format!("declared here as {}", super::describe(sym)))
                                .help("dimensions are numbers, consts, names bound by data shapes, or scalar `count`/`int` data"),
                        );
                        None
                    }
                    None if introduce => {
                        self.dims.insert(
                            n.clone(),
                            super::DimBinding {
                                value: None,
                                span: e.span,
                                bound_by: None,
                            },
                        );
                        Some(DimVal {
                            value: None,
                            text: n.clone(),
                            symbolic: true,
                        })
                    }
                    None => {
                        let mut d = Diagnostic::new(
                            "vi::shape::unknown_dimension",
                            format!("unknown dimension `{n}`"),
                        )
                        .primary(e.span, "not a dimension");
                        let names: Vec<&str> = self.dims.keys().map(String::as_str).collect();
                        d = match crate::diag::did_you_mean(n, names.iter().copied()) {
                            Some(s) => d.help(format!("did you mean `{s}`?")),
                            None => d.help("dimension names are introduced by `data` shapes (`data x: real[N]`) or declared with `const`"),
                        };
                        self.error(d);
                        None
                    }
                }
            }
            ExprKind::Binary(op @ (BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div), a, b) => {
                let a = self.dim_val(a, introduce)?;
                let b = self.dim_val(b, introduce)?;
                let value = match (a.value, b.value) {
                    (Some(x), Some(y)) => match op {
                        BinOp::Add => x.checked_add(y),
                        BinOp::Sub => x.checked_sub(y),
                        BinOp::Mul => x.checked_mul(y),
                        _ if y != 0 && x % y == 0 => Some(x / y),
                        _ => {
                            self.error(
                                Diagnostic::new(
                                    "vi::shape::not_whole",
                                    format!("{x} / {y} is not a whole number"),
                                )
                                .primary(e.span, "a dimension")
                                .help("dimensions are whole numbers"),
                            );
                            return None;
                        }
                    },
                    _ => None,
                };
                Some(DimVal {
                    value,
                    text: format!("{}{}{}", paren(&a.text), op.symbol(), paren(&b.text)),
                    symbolic: a.symbolic || b.symbolic,
                })
            }
            _ => {
                self.error(
                    Diagnostic::new("vi::shape::bad_dimension", "not a dimension")
                        .primary(e.span, "expected a dimension")
                        .help("a dimension is a whole number, a const, a data dimension name, or `+ - * /` of these"),
                );
                None
            }
        }
    }
}

fn paren(s: &str) -> String {
    if s.contains(['+', '-']) {
        format!("({s})")
    } else {
        s.to_string()
    }
}

/// Numpy broadcasting: align at the right; equal axes, or one of them 1.
pub(super) fn broadcast_shapes(a: &[Dim], b: &[Dim]) -> Option<Vec<Dim>> {
    let n = a.len().max(b.len());
    let mut out = Vec::with_capacity(n);
    for k in 0..n {
        let da = (k + a.len()).checked_sub(n).map(|i| &a[i]);
        let db = (k + b.len()).checked_sub(n).map(|i| &b[i]);
        out.push(match (da, db) {
            (Some(x), None) => x.clone(),
            (None, Some(y)) => y.clone(),
            (Some(x), Some(y)) if x.same(y) => x.clone(),
            (Some(x), Some(y)) if x.is_one() => y.clone(),
            (Some(x), Some(y)) if y.is_one() => x.clone(),
            _ => return None,
        });
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcasting_follows_numpy() {
        let k = Dim::Known;
        let n = Dim::sym("N", None);
        assert_eq!(
            broadcast_shapes(&[n.clone(), k(3)], &[k(3)]),
            Some(vec![n.clone(), k(3)])
        );
        assert_eq!(
            broadcast_shapes(&[k(1)], std::slice::from_ref(&n)),
            Some(vec![n.clone()])
        );
        assert_eq!(
            broadcast_shapes(std::slice::from_ref(&n), &[Dim::sym("D", None)]),
            None
        );
        assert_eq!(broadcast_shapes(&[], &[k(2)]), Some(vec![k(2)]));
    }
}
