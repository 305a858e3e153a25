//! Comparisons and indicators (`race == 2`), `where(cond, a, b)`, reductions along one axis
//! (`mean(X, 0)`, column means for centring; `logsumexp(x, axis)`) and `cumsum`.

use super::Checker;
use crate::diag::Diagnostic;
use crate::graph::{CmpFn, Elem, NodeId, Op, ReduceFn, ShapeDisplay, Ty};
use crate::syntax::ast::{self, BinOp};
use crate::syntax::Span;

impl Checker<'_> {
    /// `a == b`, `a < b`, ...: 1 where it holds, else 0, broadcasting like arithmetic.
    pub(super) fn compare(&mut self, op: BinOp, a: NodeId, b: NodeId, span: Span) -> Option<NodeId> {
        let f = match op {
            BinOp::Eq => CmpFn::Eq,
            BinOp::Ne => CmpFn::Ne,
            BinOp::Lt => CmpFn::Lt,
            BinOp::Le => CmpFn::Le,
            BinOp::Gt => CmpFn::Gt,
            _ => CmpFn::Ge,
        };
        let (plates, shape) = self.broadcast(a, b, span, f.symbol())?;
        Some(self.add(
            Op::Compare(f, a, b),
            Ty {
                plates,
                shape,
                elem: Elem::Int,
            },
            span,
        ))
    }

    /// `where(cond, a, b)` (also `ifelse`): all three broadcast together.
    pub(super) fn where_call(&mut self, ids: &[NodeId], span: Span) -> Option<NodeId> {
        let (cond, then, other) = (ids[0], ids[1], ids[2]);
        self.broadcast(cond, then, span, "where")?;
        let (plates, shape) = self.broadcast(then, other, span, "where")?;
        let (p2, s2) = self.broadcast(cond, then, span, "where")?;
        let plates = self.union_plates(&plates, &p2);
        let shape = super::shape::broadcast_shapes(&shape, &s2).unwrap_or(shape);
        let elem = if self.ty(then).elem.is_int() && self.ty(other).elem.is_int() {
            Elem::Int
        } else {
            Elem::Real
        };
        Some(self.add(Op::Where { cond, then, other }, Ty { plates, shape, elem }, span))
    }

    /// `sum(x, axis)` and `mean(x, axis)`: the axis a whole number, zero-based among x's own
    /// axes (plates are never reduced).
    pub(super) fn reduce_axis(
        &mut self,
        name: &str,
        src: NodeId,
        axis: &ast::Arg,
        span: Span,
    ) -> Option<NodeId> {
        let ty = self.ty(src).clone();
        let k = match axis.value.kind {
            ast::ExprKind::Num { value, is_int: true } if (value as usize) < ty.shape.len() => value as usize,
            _ => {
                self.error(
                    Diagnostic::new("vi::call::axis", format!("`{name}`'s axis is one of its argument's axes"))
                        .primary(axis.span, "not an axis of it")
                        .secondary(self.node_span(src), format!("shape {}", ShapeDisplay(&ty.shape)))
                        .help(format!(
                            "write a whole number from 0 to {}: `{name}(X, 0)` reduces the first axis (column {name}s of a matrix)",
                            ty.shape.len().saturating_sub(1)
                        )),
                );
                return None;
            }
        };
        let f = match name {
            "sum" => ReduceFn::Sum,
            "mean" => ReduceFn::Mean,
            _ => ReduceFn::LogSumExp,
        };
        let mut shape = ty.shape.clone();
        shape.remove(k);
        Some(self.add(
            Op::ReduceAxis { f, src, axis: k },
            Ty::real(ty.plates, shape),
            span,
        ))
    }

    /// `cumsum(x)`: running sums along x's last axis.
    pub(super) fn cumsum(&mut self, src: NodeId, span: Span) -> Option<NodeId> {
        let ty = self.ty(src).clone();
        if ty.shape.is_empty() {
            self.error(
                Diagnostic::new("vi::shape::rank", "`cumsum` needs a vector")
                    .primary(self.node_span(src), "a scalar")
                    .help("`cumsum(x)` gives the running sums along x's last axis"),
            );
            return None;
        }
        Some(self.add(Op::CumSum(src), Ty::real(ty.plates, ty.shape), span))
    }
}
