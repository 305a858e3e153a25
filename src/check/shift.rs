//! Plates that start later than member 1 (`for t in K+1..T`) and plate indices shifted by a
//! whole number (`y[t - 1]`, `y[t - k]` in a scan over k): Stan's loops over lagged series.
//!
//! Loop variables count members from 1, as Stan's do, and an array's member m is its zero-based
//! row m - 1; so inside `for t in K+1..T`, `y[t - k]` is row t - k - 1 of y. Such an index
//! lowers to one [`Op::Shift`] node (the rows `start + member + offset` of the array's first
//! axis become the plate), and every row it reads is proved to be on the axis.

use super::{Checker, Scope};
use crate::diag::Diagnostic;
use crate::graph::{Dim, Elem, MapFn, NodeId, Op, PlateId, ShapeDisplay, Ty, ZipFn};
use crate::syntax::ast::{self, BinOp, ExprKind};
use crate::syntax::Span;

/// An index that is a plate's variable, perhaps shifted: `t`, `t - 1`, `t + K`, `1 + t`.
pub(super) struct PlateIndex<'e> {
    pub plate: PlateId,
    /// The shift, and whether it is subtracted.
    pub shift: Option<(bool, &'e ast::Expr)>,
    pub span: Span,
}

impl Checker<'_> {
    /// A loop's (start, size): the zero-based row of member 1 and the number of members.
    pub(super) fn plate_range(&mut self, f: &ast::ForLoop) -> Option<(Dim, Dim)> {
        if matches!(f.from.kind, ExprKind::Num { value, is_int: true } if value == 1.0) {
            return Some((Dim::Known(0), self.dim(&f.to)?));
        }
        let from = self.dim(&f.from)?;
        if from.value() == Some(0) {
            self.error(
                Diagnostic::new("vi::plate::start", "a plate's members count from 1")
                    .primary(f.from.span, "must be 1 or more")
                    .help(format!(
                        "write `for {v} in 1..N` for N members (`{v}` indexes arrays: `x[{v}]` is row {v} - 1), or `for {v} in K+1..N` to skip the first K",
                        v = f.var.name
                    )),
            );
            return None;
        }
        let to = self.dim(&f.to)?;
        let start_name = match &from {
            Dim::Sym { name, .. } => {
                let compact = name.replace(' ', "");
                compact
                    .strip_suffix("+1")
                    .map_or_else(|| format!("{name} - 1"), str::to_string)
            }
            Dim::Known(a) => (a - 1).to_string(),
        };
        let start = match (&from, from.value()) {
            (Dim::Known(a), _) => Dim::Known(a - 1),
            (_, value) => Dim::sym(&start_name, value.map(|a| a - 1)),
        };
        let size = match (from.value(), to.value()) {
            (Some(a), Some(b)) if b < a => {
                self.error(
                    Diagnostic::new("vi::plate::empty", format!("the plate {a}..{b} has no members"))
                        .primary(f.from.span.to(f.to.span), "empty")
                        .help("a plate runs from its first member to its last, inclusive: the first must not come after the last"),
                );
                return None;
            }
            (Some(a), Some(b)) if matches!((&from, &to), (Dim::Known(_), Dim::Known(_))) => {
                Dim::Known(b + 1 - a)
            }
            (a, b) => Dim::sym(
                &format!("{to_name} - {start_name}", to_name = dim_name(&to)),
                a.zip(b).map(|(a, b)| b + 1 - a),
            ),
        };
        Some((start, size))
    }

    /// Whether `e` is a plate's variable, perhaps shifted (see [`PlateIndex`]).
    pub(super) fn plate_index<'e>(&self, e: &'e ast::Expr, scope: &Scope) -> Option<PlateIndex<'e>> {
        let var = |x: &ast::Expr| match &x.kind {
            ExprKind::Name(v) => scope.plate_var(v),
            _ => None,
        };
        let (plate, shift) = match &e.kind {
            ExprKind::Name(_) => (var(e)?, None),
            ExprKind::Binary(BinOp::Add, a, b) => match (var(a), var(b)) {
                (Some(p), None) => (p, Some((false, &**b))),
                (None, Some(p)) => (p, Some((false, &**a))),
                _ => return None,
            },
            ExprKind::Binary(BinOp::Sub, a, b) => (var(a)?, Some((true, &**b))),
            _ => return None,
        };
        Some(PlateIndex {
            plate,
            shift,
            span: e.span,
        })
    }

    /// Whether indexing along `plate` needs a shift rather than a plain plate view.
    pub(super) fn is_shifted(&self, ix: &PlateIndex) -> bool {
        ix.shift.is_some() || self.plates[ix.plate.index()].start.value() != Some(0)
    }

    /// `src[t + shift]` as one [`Op::Shift`] node.
    pub(super) fn shift(
        &mut self,
        src: NodeId,
        ix: &PlateIndex,
        span: Span,
        scope: &Scope,
    ) -> Option<NodeId> {
        let offset = match ix.shift {
            None => self.int_const(0.0, ix.span),
            Some((negate, e)) => {
                let o = self.member_number(e, scope)?;
                if negate {
                    let ty = self.ty(o).clone();
                    self.add(Op::Map(MapFn::Neg, o), ty, e.span)
                } else {
                    o
                }
            }
        };
        let ty = self.ty(src).clone();
        let plate = self.plates[ix.plate.index()].clone();
        if ty.plates.contains(&ix.plate) {
            self.error(
                Diagnostic::new(
                    "vi::plate::twice",
                    format!("this value is already indexed by `{}`", plate.var),
                )
                .primary(ix.span, "indexed again")
                .help("a value varies along a plate once; drop this index"),
            );
            return None;
        }
        if let Some((name, at)) = self.latent_drawn_in(src, ix.plate) {
            self.error(
                Diagnostic::new(
                    "vi::plate::shift_latent",
                    format!("`{name}` is drawn in plate `{}`, so it cannot be read at another member inside it", plate.var),
                )
                .primary(ix.span, "another member")
                .secondary(at, "drawn here")
                .help("a plate's members are independent; a latent whose members depend on each other (a random walk) is a `scan` over independent innovations, as in models/timeseries/stochastic_volatility.vi"),
            );
            return None;
        }
        let Some(len) = ty.shape.first().cloned() else {
            self.error(
                Diagnostic::new("vi::index::too_many", "too many indices")
                    .primary(ix.span, "no axis left to index")
                    .secondary(self.node_span(src), format!("shape {}", ShapeDisplay(&ty.shape)))
                    .help("index at most one position per axis"),
            );
            return None;
        };
        let (lo, hi) = self.value_range(offset);
        // The first member's row needs only the plate's start; the last's needs every length.
        let start = plate.start.value().map(|a| a as f64);
        let first = start.map(|a| a + lo);
        let last = match (start, plate.size.value(), len.value()) {
            (Some(a), Some(size), Some(_)) => Some(a + size as f64 - 1.0 + hi),
            _ => None,
        };
        let n = len.value().map(|n| n as f64);
        let below = first.filter(|f| *f < 0.0 || !f.is_finite());
        let above = last.filter(|l| n.is_some_and(|n| *l > n - 1.0) || !l.is_finite());
        if let Some((t, row)) = below
            .map(|f| (start.unwrap_or(0.0) + 1.0, f))
            .or_else(|| above.map(|l| (start.unwrap_or(0.0) + plate.size.value().unwrap_or(0) as f64, l)))
        {
            self.error(
                Diagnostic::new(
                    "vi::plate::shift_range",
                    format!(
                        "at {} = {t}, this reads member {} of an array with members 1..{len}",
                        plate.var,
                        row + 1.0
                    ),
                )
                .primary(ix.span, format!("member {}", row + 1.0))
                .secondary(self.node_span(src), format!("shape {}", ShapeDisplay(&ty.shape)))
                .secondary(plate.span, "the plate")
                .help(format!(
                    "members count from 1: start the plate later (`for {v} in K+1..T` when reading `{v} - K`) or read a member that exists",
                    v = plate.var
                )),
            );
            return None;
        }
        let mut plates = ty.plates.clone();
        plates.push(ix.plate);
        plates.sort();
        let out = Ty {
            plates,
            shape: ty.shape[1..].to_vec(),
            elem: ty.elem,
        };
        Some(self.add(
            Op::Shift {
                src,
                plate: ix.plate,
                offset,
            },
            out,
            span,
        ))
    }

    /// A shift as a whole number, where a scan's step counts members from 1 as plates do.
    fn member_number(&mut self, e: &ast::Expr, scope: &Scope) -> Option<NodeId> {
        match &e.kind {
            ExprKind::Num { value, is_int: true } => Some(self.int_const(*value, e.span)),
            ExprKind::Name(n) if scope.scan_frame(n).is_some_and(|sf| sf.var.0 == *n) => {
                let index = scope.scan_frame(n).expect("found").index;
                let one = self.int_const(1.0, e.span);
                self.zip(ZipFn::Add, index, one, e.span)
            }
            ExprKind::Name(n) if scope.plate_var(n).is_none() && scope.local(n).is_none() => {
                let d = self.dim(e)?;
                Some(self.add(Op::DimValue(d), int_ty(), e.span))
            }
            ExprKind::Neg(a) => {
                let a = self.member_number(a, scope)?;
                Some(self.add(Op::Map(MapFn::Neg, a), int_ty(), e.span))
            }
            ExprKind::Binary(op @ (BinOp::Add | BinOp::Sub | BinOp::Mul), a, b) => {
                let (a, b) = (self.member_number(a, scope)?, self.member_number(b, scope)?);
                let f = match op {
                    BinOp::Add => ZipFn::Add,
                    BinOp::Sub => ZipFn::Sub,
                    _ => ZipFn::Mul,
                };
                self.zip(f, a, b, e.span)
            }
            _ => {
                self.error(
                    Diagnostic::new("vi::plate::shift", "a plate index is shifted by a whole number")
                        .primary(e.span, "not a whole number of members")
                        .help("shift by numbers, consts, dimensions or a scan's step: `x[t - 1]`, `x[t + K]`, `x[t - k]`"),
                );
                None
            }
        }
    }

    fn int_const(&mut self, v: f64, span: Span) -> NodeId {
        self.add(Op::Const(v), int_ty(), span)
    }

    /// A latent drawn in `plate` that `src` reads, with its declaration's span.
    fn latent_drawn_in(&self, src: NodeId, plate: PlateId) -> Option<(String, Span)> {
        self.ancestors(&[src])
            .iter()
            .find_map(|n| match self.nodes[n.index()].op {
                Op::Latent(l) if self.latents[l.index()].plates.contains(&plate) => {
                    let latent = &self.latents[l.index()];
                    Some((latent.name.clone(), latent.span))
                }
                _ => None,
            })
    }
}

fn int_ty() -> Ty {
    Ty {
        plates: vec![],
        shape: vec![],
        elem: Elem::Int,
    }
}

fn dim_name(d: &Dim) -> String {
    match d {
        Dim::Known(n) => n.to_string(),
        Dim::Sym { name, .. } => name.to_string(),
    }
}
