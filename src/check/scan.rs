//! `scan`: recurrences, checked and lowered to one [`Op::Scan`] node whose body is built once.
//!
//! `let v = scan t in 2..T from INIT { let a = ...; VALUE }` defines T members: member 1 is
//! `INIT` and member `t` is `VALUE`, which may read the member before as `v[t - 1]` and other
//! arrays at `t` plus or minus a constant (`y[t - 1]`). From `1..T`, `INIT` is the state before
//! member 1 and is not kept. Inside the body `t` is an index, never a value. The graph does not
//! grow with T: the interpreter evaluates the body once per step, so the series length only
//! lengthens the gradient tape.

use super::{Checker, Frame, Program, ScanFrame, Scope};
use crate::diag::Diagnostic;
use crate::graph::{op_inputs, Dim, Elem, NodeId, Op, ShapeDisplay, Ty};
use crate::syntax::ast::{self, BinOp, ExprKind, Stmt};

impl Checker<'_> {
    /// `let name = scan ...`: the scan's node, or `None` after reporting why not.
    pub(super) fn scan(&mut self, name: &ast::Ident, sc: &ast::Scan, scope: &mut Scope) -> Option<NodeId> {
        let first = match sc.from.kind {
            ExprKind::Num { value, is_int: true } if value == 1.0 || value == 2.0 => value as usize,
            _ => {
                self.error(
                    Diagnostic::new("vi::scan::start", "a scan starts at member 1 or 2")
                        .primary(sc.from.span, "must be `1` or `2`")
                        .help(format!(
                            "write `scan {t} in 2..N from FIRST {{ ... }}` (FIRST is member 1) or `scan {t} in 1..N from BEFORE {{ ... }}` (BEFORE is the state before member 1)",
                            t = sc.var.name
                        )),
                );
                return None;
            }
        };
        if matches!(scope.program, Program::Objective | Program::Const) {
            self.error(
                Diagnostic::new("vi::scan::place", "a scan belongs in the model or the guide")
                    .primary(sc.span, "here")
                    .help("define the recurrence with `let v = scan ...` in the model"),
            );
            return None;
        }
        let len = self.dim(&sc.to)?;
        if len.value().is_some_and(|n| n < first) {
            self.error(
                Diagnostic::new(
                    "vi::scan::empty",
                    format!("this scan has no step: {first}..{len}"),
                )
                .primary(sc.to.span, format!("{len} members"))
                .help(format!("a scan from {first} needs at least {first} members")),
            );
            return None;
        }
        if !self.claim(&sc.var, Some(scope)) {
            return None;
        }
        let init = self.expr(&sc.init, scope)?;
        let id = self.scans.len() as u32;
        self.scans.push((first, len.clone()));
        let index = self.add(
            Op::ScanIndex(id),
            Ty {
                plates: vec![],
                shape: vec![],
                elem: Elem::Int,
            },
            sc.var.span,
        );
        self.set_scan_index_bound(index, first, &len);
        let mut state = Ty {
            elem: Elem::Real,
            ..self.ty(init).clone()
        };
        // The state's plates are those of the initial value and of the body; a body that
        // varies over more plates than its start is checked again with the wider state.
        loop {
            let prev = self.add(Op::ScanPrev(id), state.clone(), name.span);
            let start = self.bound(init);
            self.bounds.insert(prev, start);
            scope.frames.push(Frame {
                scan: Some(ScanFrame {
                    var: (sc.var.name.clone(), sc.var.span),
                    own: (name.name.clone(), name.span),
                    index,
                    prev,
                }),
                ..Frame::default()
            });
            let value = self.scan_body(sc, scope);
            scope.frames.pop();
            let value = value?;
            let vty = self.ty(value).clone();
            if !super::expr::same_shape(&vty.shape, &state.shape) {
                self.error(
                    Diagnostic::new(
                        "vi::scan::shape",
                        format!(
                            "each member of `{}` must have one shape: the body gives {}, the first member {}",
                            name.name,
                            ShapeDisplay(&vty.shape),
                            ShapeDisplay(&state.shape)
                        ),
                    )
                    .primary(
                        self.node_span(value),
                        format!("shape {}", ShapeDisplay(&vty.shape)),
                    )
                    .secondary(
                        self.node_span(init),
                        format!("shape {}", ShapeDisplay(&state.shape)),
                    )
                    .help("a recurrence carries one value of a fixed shape from step to step"),
                );
                return None;
            }
            let plates = self.union_plates(&state.plates, &vty.plates);
            if plates != state.plates {
                state.plates = plates;
                continue;
            }
            let inner = self.scan_inner(value, index, prev);
            let mut shape = vec![len.clone()];
            shape.extend(state.shape.iter().cloned());
            let node = self.add(
                Op::Scan {
                    init,
                    body: value,
                    index,
                    prev,
                    first,
                    len,
                    inner: inner.clone(),
                },
                Ty {
                    plates: state.plates,
                    shape,
                    elem: Elem::Real,
                },
                sc.span,
            );
            self.settle_scan_bound(node, init, value, prev, &inner);
            return Some(node);
        }
    }

    /// The body's `let`s into the scan's frame, then its value.
    fn scan_body(&mut self, sc: &ast::Scan, scope: &mut Scope) -> Option<NodeId> {
        for stmt in &sc.lets {
            let Stmt::Let { name, value, .. } = stmt else {
                continue;
            };
            if !self.claim(name, Some(scope)) {
                return None;
            }
            let v = self.expr(value, scope)?;
            let frame = scope.frames.last_mut().expect("the scan's frame");
            frame.lets.push((name.name.clone(), v, name.span));
        }
        self.expr(&sc.value, scope)
    }

    /// The body's nodes that read the step's position or the member before, in order (not
    /// those two themselves): what the interpreter forgets between steps.
    fn scan_inner(&self, value: NodeId, index: NodeId, prev: NodeId) -> Vec<NodeId> {
        let lo = index.index().min(prev.index());
        let mut reads = vec![false; self.nodes.len()];
        reads[index.index()] = true;
        reads[prev.index()] = true;
        for i in lo..=value.index() {
            if !reads[i] {
                reads[i] = op_inputs(&self.nodes[i].op).iter().any(|x| reads[x.index()]);
            }
        }
        let mut used = vec![false; self.nodes.len()];
        let mut stack = vec![value];
        while let Some(n) = stack.pop() {
            if n.index() < lo || std::mem::replace(&mut used[n.index()], true) {
                continue;
            }
            stack.extend(op_inputs(&self.nodes[n.index()].op));
        }
        (lo..=value.index())
            .filter(|&i| reads[i] && used[i] && i != index.index() && i != prev.index())
            .map(|i| NodeId(i as u32))
            .collect()
    }

    /// Inside a scan, `name[...]` where `name` is the scan's own value: only `name[t - 1]`,
    /// which is the member before. `None` when `base` is not a scan's own name.
    pub(super) fn scan_self_index(
        &mut self,
        base: &ast::Expr,
        indices: &[ast::IndexArg],
        scope: &Scope,
    ) -> Option<Result<(NodeId, usize), ()>> {
        let ExprKind::Name(n) = &base.kind else {
            return None;
        };
        let sf = scope.scan_frame(n).filter(|sf| sf.own.0 == *n)?.clone();
        let t = &sf.var.0;
        let is_prev = matches!(indices.first(), Some(ast::IndexArg::Expr(ast::Expr {
            kind: ExprKind::Binary(BinOp::Sub, a, b),
            ..
        })) if matches!(&a.kind, ExprKind::Name(v) if v == t)
            && matches!(b.kind, ExprKind::Num { value, is_int: true } if value == 1.0));
        if is_prev {
            return Some(Ok((sf.prev, 1)));
        }
        let at = indices.first().map_or(base.span, ast::IndexArg::span);
        self.error(
            Diagnostic::new(
                "vi::scan::self",
                format!("inside its scan, `{n}` can only be read at `{t} - 1`"),
            )
            .primary(at, format!("not `{t} - 1`"))
            .secondary(sf.own.1, "the scan defined here")
            .help(format!(
                "the body computes member `{t}` from the member before, `{n}[{t} - 1]`; earlier members are not kept in the step"
            )),
        );
        Some(Err(()))
    }

    /// The zero-based positions an index built from a scan's step takes (`t`, `t - 1`,
    /// `t + 2`), if it is one: (lowest, highest once bound, the scan's first member).
    pub(super) fn scan_positions(&self, index: NodeId) -> Option<(i64, Option<i64>, usize)> {
        let constant = |id: NodeId| self.constant(id).filter(|v| v.fract() == 0.0).map(|v| v as i64);
        match &self.nodes[index.index()].op {
            Op::ScanIndex(k) => {
                let (first, len) = &self.scans[*k as usize];
                Some((*first as i64 - 1, len.value().map(|n| n as i64 - 1), *first))
            }
            Op::Zip(f @ (crate::graph::ZipFn::Add | crate::graph::ZipFn::Sub), a, b) => {
                let sign = if *f == crate::graph::ZipFn::Add { 1 } else { -1 };
                if let (Some(r), Some(c)) = (self.scan_positions(*a), constant(*b)) {
                    return Some((r.0 + sign * c, r.1.map(|h| h + sign * c), r.2));
                }
                match (f, constant(*a), self.scan_positions(*b)) {
                    (crate::graph::ZipFn::Add, Some(c), Some(r)) => Some((r.0 + c, r.1.map(|h| h + c), r.2)),
                    _ => None,
                }
            }
            _ => None,
        }
    }

    /// An index built from a scan's step must stay on the axis at every step.
    pub(super) fn check_scan_index(&mut self, index: NodeId, len: &Dim, ispan: crate::syntax::Span) -> bool {
        let Some((lo, hi, first)) = self.scan_positions(index) else {
            return true;
        };
        let n = len.value().map(|n| n as i64);
        let below = lo < 0;
        let above = matches!((hi, n), (Some(h), Some(n)) if h >= n);
        if !(below || above) {
            return true;
        }
        let (at, member) = if below { (lo, first) } else { (hi.unwrap_or(0), 0) };
        let when = if below {
            format!("at the first step (member {member})")
        } else {
            "at the last step".to_string()
        };
        self.error(
            Diagnostic::new(
                "vi::scan::index_range",
                format!("this index reaches position {at} {when}, outside an axis of length {len}"),
            )
            .primary(ispan, format!("position {at}"))
            .help(if below {
                "start the scan later (`scan t in 2..T from ...` makes member 1 the initial value), or read a later member".to_string()
            } else {
                format!("the axis has positions 0..{len}: run the scan to its length at most")
            }),
        );
        false
    }
}
