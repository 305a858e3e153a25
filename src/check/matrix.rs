//! Linear algebra in expressions: `a @ b` (`matmul`, `dot`) and Stan's
//! `diag_pre_multiply(v, M)` / `diag_post_multiply(M, v)`, which scale a matrix's rows or
//! columns (the scale matrix of correlated effects is `diag_pre_multiply(tau, L)`).

use super::expr::signature;
use super::Checker;
use crate::diag::Diagnostic;
use crate::graph::{NodeId, Op, ShapeDisplay, Ty, ZipFn};
use crate::syntax::Span;

impl Checker<'_> {
    pub(super) fn matmul(&mut self, a: NodeId, b: NodeId, span: Span) -> Option<NodeId> {
        let (sa, sb) = (self.ty(a).shape.clone(), self.ty(b).shape.clone());
        let shape = match (sa.len(), sb.len()) {
            (0, _) | (_, 0) => {
                self.error(
                    Diagnostic::new("vi::shape::matmul", "`@` needs vectors or matrices, not scalars")
                        .primary(self.node_span(if sa.is_empty() { a } else { b }), "a scalar")
                        .help("multiply scalars with `*`"),
                );
                return None;
            }
            (_, 1) | (_, 2) => {
                let k_a = sa.last().expect("rank >= 1");
                let k_b = &sb[0];
                if !k_a.same(k_b) {
                    self.error(
                        Diagnostic::new(
                            "vi::shape::matmul",
                            format!("cannot multiply {} by {}", ShapeDisplay(&sa), ShapeDisplay(&sb)),
                        )
                        .primary(
                            self.node_span(a),
                            format!("shape {}, last axis {k_a}", ShapeDisplay(&sa)),
                        )
                        .secondary(
                            self.node_span(b),
                            format!("shape {}, first axis {k_b}", ShapeDisplay(&sb)),
                        )
                        .help("the left operand's last axis must equal the right operand's first"),
                    );
                    return None;
                }
                let mut s = sa[..sa.len() - 1].to_vec();
                s.extend(sb[1..].iter().cloned());
                s
            }
            _ => {
                self.error(
                    Diagnostic::new(
                        "vi::shape::matmul",
                        "the right operand of `@` must be a vector or a matrix",
                    )
                    .primary(self.node_span(b), format!("shape {}", ShapeDisplay(&sb)))
                    .help("batch over the left operand's leading axes, or over a plate"),
                );
                return None;
            }
        };
        let plates = self.union_plates(&self.ty(a).plates.clone(), &self.ty(b).plates.clone());
        Some(self.add(Op::MatMul(a, b), Ty::real(plates, shape), span))
    }

    /// diag(v) @ m (`rows`) or m @ diag(v), as elementwise products: m's columns times v is a
    /// broadcast along the last axis; its rows times v is the same between two transposes.
    pub(super) fn diag_multiply(&mut self, v: NodeId, m: NodeId, rows: bool, span: Span) -> Option<NodeId> {
        let name = if rows {
            "diag_pre_multiply"
        } else {
            "diag_post_multiply"
        };
        let (sv, sm) = (self.ty(v).shape.clone(), self.ty(m).shape.clone());
        if sv.len() != 1 || sm.len() != 2 {
            let (at, what) = if sv.len() != 1 {
                (v, "a vector")
            } else {
                (m, "a matrix")
            };
            self.error(
                Diagnostic::new("vi::shape::rank", format!("`{name}` takes a vector and a matrix"))
                    .primary(
                        self.node_span(at),
                        format!("shape {}, not {what}", ShapeDisplay(&self.ty(at).shape)),
                    )
                    .help(signature(name)),
            );
            return None;
        }
        let axis = if rows { &sm[0] } else { &sm[1] };
        if !sv[0].same(axis) {
            self.error(
                Diagnostic::new(
                    "vi::shape::mismatch",
                    format!(
                        "`{name}`: a vector of length {} against a matrix {}",
                        sv[0],
                        ShapeDisplay(&sm)
                    ),
                )
                .primary(self.node_span(v), format!("length {}", sv[0]))
                .secondary(
                    self.node_span(m),
                    format!("{} {axis}", if rows { "rows" } else { "columns" }),
                )
                .help(signature(name)),
            );
            return None;
        }
        if !rows {
            return self.zip(ZipFn::Mul, m, v, span);
        }
        let plates = self.ty(m).plates.clone();
        let flipped = vec![sm[1].clone(), sm[0].clone()];
        let t = self.add(Op::Transpose(m), Ty::real(plates, flipped.clone()), span);
        let scaled = self.zip(ZipFn::Mul, t, v, span)?;
        let plates = self.ty(scaled).plates.clone();
        Some(self.add(Op::Transpose(scaled), Ty::real(plates, sm), span))
    }
}
