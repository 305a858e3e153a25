//! Supports of expressions: interval and sign reasoning over the graph, so that a latent (or an
//! expression of latents) in a slot that needs positive, unit-interval or simplex values is
//! caught before a fit dies at its first step.
//!
//! Every node gets a [`Bound`]: an interval that holds all its values, whether that interval is
//! *tight* (every value in it can occur: a latent's support, a monotone function of one, or a
//! combination of independent ones) or only an over-approximation, and whether the value is
//! known to be a simplex along its last axis. A distribution argument whose bound lies in the
//! parameter's domain is fine; one whose tight bound leaves it, and that depends on a latent, is
//! an error; anything else the checker cannot prove is a warning.

use std::fmt;

use super::Checker;
use crate::diag::Diagnostic;
use crate::dist::{Domain, Family, ParamSpec};
use crate::graph::{Activation, Dim, LatentId, MapFn, NodeId, Op, ReduceFn, ZipFn};
use crate::syntax::Span;

/// More free sources than this are not followed (tightness is then given up).
const MAX_SOURCES: usize = 32;

/// One end of an interval: its value and whether it is excluded.
#[derive(Clone, Copy, Debug, PartialEq)]
struct End {
    v: f64,
    open: bool,
}

impl End {
    fn closed(v: f64) -> End {
        End {
            v,
            open: v.is_infinite(),
        }
    }
    fn open(v: f64) -> End {
        End { v, open: true }
    }
}

#[derive(Clone, Debug)]
pub(super) struct Bound {
    lo: End,
    hi: End,
    /// Every value in the interval can occur.
    tight: bool,
    /// Each row along the last axis is non-negative and sums to one.
    simplex: bool,
    /// The free values it depends on (latents, draws, params, data, nets); `None`: too many.
    sources: Option<Vec<Source>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Source {
    Latent(u32),
    Draw(u32),
    Other(u32, u32),
}

impl Bound {
    fn new(lo: End, hi: End) -> Bound {
        Bound {
            lo,
            hi,
            tight: true,
            simplex: false,
            sources: Some(Vec::new()),
        }
    }

    fn real() -> Bound {
        Bound::new(End::open(f64::NEG_INFINITY), End::open(f64::INFINITY))
    }

    fn point(v: f64) -> Bound {
        if v.is_nan() {
            return Bound::real().loose();
        }
        Bound::new(End::closed(v), End::closed(v))
    }

    fn loose(mut self) -> Bound {
        self.tight = false;
        self
    }

    fn of_domain(d: Domain) -> Bound {
        let inf = f64::INFINITY;
        let mut b = match d {
            Domain::Real | Domain::Int | Domain::Ordered => Bound::real(),
            Domain::Positive | Domain::PositiveOrdered => Bound::new(End::open(0.0), End::open(inf)),
            Domain::Unit | Domain::Binary => Bound::new(End::closed(0.0), End::closed(1.0)),
            Domain::Simplex => Bound::new(End::closed(0.0), End::closed(1.0)),
            Domain::Interval(a, b) => Bound::new(End::open(a), End::open(b)),
            Domain::Count | Domain::Category => Bound::new(End::closed(0.0), End::open(inf)),
            Domain::PosDef => Bound::real().loose(),
            Domain::CorrCholesky => Bound::new(End::closed(-1.0), End::closed(1.0)),
        };
        b.simplex = d == Domain::Simplex;
        b
    }

    fn with_source(mut self, s: Source) -> Bound {
        self.sources = Some(vec![s]);
        self
    }

    fn is_constant(&self) -> bool {
        self.sources.as_ref().is_some_and(Vec::is_empty)
    }

    fn has_latent(&self) -> Option<bool> {
        self.sources
            .as_ref()
            .map(|s| s.iter().any(|x| matches!(x, Source::Latent(_) | Source::Draw(_))))
    }

    /// The convex hull of both (a value is one or the other).
    fn hull(&self, o: &Bound) -> Bound {
        let lo = if self.lo.v < o.lo.v || (self.lo.v == o.lo.v && !self.lo.open) {
            self.lo
        } else {
            o.lo
        };
        let hi = if self.hi.v > o.hi.v || (self.hi.v == o.hi.v && !self.hi.open) {
            self.hi
        } else {
            o.hi
        };
        Bound {
            lo,
            hi,
            tight: self.tight && o.tight,
            simplex: self.simplex && o.simplex,
            sources: merge(&self.sources, &o.sources),
        }
    }

    /// Whether every value of `o` lies in this interval.
    fn covers(&self, o: &Bound) -> bool {
        let lo = self.lo.v < o.lo.v || (self.lo.v == o.lo.v && (!self.lo.open || o.lo.open));
        let hi = self.hi.v > o.hi.v || (self.hi.v == o.hi.v && (!self.hi.open || o.hi.open));
        lo && hi
    }

    /// Only the sign kept: `[0, inf)` or `(0, inf)` for a value known non-negative or
    /// positive, else the whole line (a scan's state that keeps growing).
    fn sign_only(&self) -> Bound {
        let lo = if self.lo.v > 0.0 {
            End::open(0.0)
        } else if self.lo.v == 0.0 {
            self.lo
        } else {
            End::open(f64::NEG_INFINITY)
        };
        Bound {
            lo,
            hi: End::open(f64::INFINITY),
            tight: false,
            simplex: false,
            sources: self.sources.clone(),
        }
    }

    /// Whether every value lies in `d`.
    fn within(&self, d: Domain) -> bool {
        let (lo, hi) = (self.lo, self.hi);
        match d {
            Domain::Positive => lo.v > 0.0 || (lo.v == 0.0 && lo.open),
            Domain::Unit => lo.v >= 0.0 && hi.v <= 1.0,
            Domain::Simplex => self.simplex,
            Domain::Interval(a, b) => {
                (lo.v > a || (lo.v == a && lo.open)) && (hi.v < b || (hi.v == b && hi.open))
            }
            Domain::Count | Domain::Binary | Domain::Int | Domain::Category => true,
            // No argument slot asks for an ordered vector.
            Domain::Real
            | Domain::PosDef
            | Domain::Ordered
            | Domain::PositiveOrdered
            | Domain::CorrCholesky => true,
        }
    }

    /// Whether some values lie outside `[0, 1]`, for a simplex slot.
    fn leaves_unit(&self) -> bool {
        !self.within(Domain::Unit)
    }

    fn can_be_negative(&self) -> bool {
        self.lo.v < 0.0
    }
}

impl fmt::Display for Bound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let num = |v: f64| {
            if v == f64::INFINITY {
                "∞".to_string()
            } else if v == f64::NEG_INFINITY {
                "-∞".to_string()
            } else {
                format!("{v}")
            }
        };
        write!(
            f,
            "{}{}, {}{}",
            if self.lo.open { "(" } else { "[" },
            num(self.lo.v),
            num(self.hi.v),
            if self.hi.open { ")" } else { "]" }
        )
    }
}

fn merge(a: &Option<Vec<Source>>, b: &Option<Vec<Source>>) -> Option<Vec<Source>> {
    let (a, b) = (a.as_ref()?, b.as_ref()?);
    let mut out: Vec<Source> = a.iter().chain(b).copied().collect();
    out.sort();
    out.dedup();
    (out.len() <= MAX_SOURCES).then_some(out)
}

fn disjoint(a: &Option<Vec<Source>>, b: &Option<Vec<Source>>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => !a.iter().any(|x| b.contains(x)),
        _ => false,
    }
}

/// Combine two bounds' bookkeeping for a value computed from both.
fn joined(a: &Bound, b: &Bound, lo: End, hi: End) -> Bound {
    let tight =
        a.tight && b.tight && (a.is_constant() || b.is_constant() || disjoint(&a.sources, &b.sources));
    Bound {
        lo,
        hi,
        tight,
        simplex: false,
        sources: merge(&a.sources, &b.sources),
    }
}

fn add(a: &Bound, b: &Bound) -> Bound {
    let lo = End {
        v: a.lo.v + b.lo.v,
        open: a.lo.open || b.lo.open,
    };
    let hi = End {
        v: a.hi.v + b.hi.v,
        open: a.hi.open || b.hi.open,
    };
    if lo.v.is_nan() || hi.v.is_nan() {
        return joined(a, b, End::open(f64::NEG_INFINITY), End::open(f64::INFINITY));
    }
    joined(a, b, lo, hi)
}

fn neg(a: &Bound) -> Bound {
    Bound {
        lo: End {
            v: -a.hi.v,
            open: a.hi.open,
        },
        hi: End {
            v: -a.lo.v,
            open: a.lo.open,
        },
        simplex: false,
        ..a.clone()
    }
}

fn mul_end(x: End, y: End) -> End {
    let zero = |e: End| e.v == 0.0 && !e.open;
    if zero(x) || zero(y) {
        return End::closed(0.0);
    }
    let v = x.v * y.v;
    End {
        v: if v.is_nan() { 0.0 } else { v },
        open: x.open || y.open || v.is_infinite(),
    }
}

fn extremes(cands: [End; 4]) -> (End, End) {
    let mut lo = cands[0];
    let mut hi = cands[0];
    for c in &cands[1..] {
        if c.v < lo.v || (c.v == lo.v && !c.open) {
            lo = *c;
        }
        if c.v > hi.v || (c.v == hi.v && !c.open) {
            hi = *c;
        }
    }
    (lo, hi)
}

fn mul(a: &Bound, b: &Bound) -> Bound {
    let (lo, hi) = extremes([
        mul_end(a.lo, b.lo),
        mul_end(a.lo, b.hi),
        mul_end(a.hi, b.lo),
        mul_end(a.hi, b.hi),
    ]);
    joined(a, b, lo, hi)
}

fn recip(b: &Bound) -> Bound {
    let inf = f64::INFINITY;
    let r = |e: End| -> End {
        if e.v == 0.0 {
            End::open(if e.open { inf } else { f64::NAN })
        } else {
            End {
                v: 1.0 / e.v,
                open: e.open || e.v.is_infinite(),
            }
        }
    };
    let positive = b.lo.v > 0.0 || (b.lo.v == 0.0 && b.lo.open);
    let negative = b.hi.v < 0.0 || (b.hi.v == 0.0 && b.hi.open);
    if positive || negative {
        let (lo, hi) = (r(b.hi), r(b.lo));
        let hi = if hi.v.is_nan() { End::open(inf) } else { hi };
        let lo = if lo.v.is_nan() { End::open(-inf) } else { lo };
        // 1/x for x in (0, hi]: [1/hi, ∞); for x in [lo, 0): (-∞, 1/lo].
        let (lo, hi) = if negative && b.hi.v == 0.0 {
            (End::open(-inf), r(b.lo))
        } else {
            (lo, hi)
        };
        return Bound {
            lo,
            hi,
            simplex: false,
            ..b.clone()
        };
    }
    Bound {
        lo: End::open(-inf),
        hi: End::open(inf),
        simplex: false,
        ..b.clone()
    }
}

/// `x^k` for a whole number `k`.
fn powi(a: &Bound, k: i32) -> Bound {
    if k == 0 {
        return Bound::point(1.0).with_sources(a);
    }
    if k < 0 {
        return recip(&powi(a, -k));
    }
    let p = |e: End| End {
        v: e.v.powi(k),
        open: e.open,
    };
    if k % 2 == 1 {
        return Bound {
            lo: p(a.lo),
            hi: p(a.hi),
            simplex: false,
            ..a.clone()
        };
    }
    even(a, p)
}

/// An even function increasing in |x| (`x^2`, `abs`).
fn even(a: &Bound, f: impl Fn(End) -> End) -> Bound {
    let abs = |e: End| End {
        v: e.v.abs(),
        open: e.open,
    };
    let (lo, hi) = if a.lo.v >= 0.0 {
        (f(a.lo), f(a.hi))
    } else if a.hi.v <= 0.0 {
        (f(abs(a.hi)), f(abs(a.lo)))
    } else {
        let top = if a.lo.v.abs() > a.hi.v.abs() || (a.lo.v.abs() == a.hi.v.abs() && !a.lo.open) {
            abs(a.lo)
        } else {
            a.hi
        };
        (End::closed(0.0), f(top))
    };
    Bound {
        lo,
        hi,
        simplex: false,
        ..a.clone()
    }
}

impl Bound {
    fn with_sources(mut self, a: &Bound) -> Bound {
        self.sources = a.sources.clone();
        self
    }

    /// An increasing function applied to both ends (`lo_min` clamps its domain).
    fn increasing(&self, f: impl Fn(f64) -> f64, lo_min: Option<f64>) -> Bound {
        let mut b = self.clone();
        b.simplex = false;
        if let Some(m) = lo_min {
            if b.hi.v < m {
                return Bound::real().loose().with_sources(self);
            }
            if b.lo.v < m {
                b.lo = End::closed(m);
                b.tight = false;
            }
        }
        let g = |e: End| {
            let v = f(e.v);
            End {
                v,
                open: e.open || (v.is_infinite() && !e.v.is_infinite()),
            }
        };
        b.lo = g(b.lo);
        b.hi = g(b.hi);
        if b.lo.v.is_nan() || b.hi.v.is_nan() {
            return Bound::real().loose().with_sources(self);
        }
        b
    }
}

fn map(f: MapFn, a: &Bound) -> Bound {
    match f {
        MapFn::Neg => neg(a),
        MapFn::Exp => a.increasing(f64::exp, None),
        MapFn::Log => a.increasing(f64::ln, Some(0.0)),
        MapFn::Log1p => a.increasing(f64::ln_1p, Some(-1.0)),
        MapFn::Expm1 => a.increasing(f64::exp_m1, None),
        MapFn::Sqrt => a.increasing(f64::sqrt, Some(0.0)),
        MapFn::Sigmoid => a.increasing(|x| f.apply(x), None),
        MapFn::Logit => {
            let mut b = a.clone();
            if b.lo.v < 0.0 || b.hi.v > 1.0 {
                b.tight = false;
            }
            b.lo = End::closed(b.lo.v.max(0.0));
            b.hi = End::closed(b.hi.v.min(1.0));
            b.increasing(|x| f.apply(x), None)
        }
        MapFn::Tanh => a.increasing(f64::tanh, None),
        MapFn::Relu => a.increasing(|x| x.max(0.0), None),
        MapFn::Softplus => {
            // Positive everywhere, even where exp underflows.
            let mut b = a.increasing(|x| f.apply(x), None);
            if b.lo.v == 0.0 {
                b.lo.open = true;
            }
            b
        }
        MapFn::Square => even(a, |e| End {
            v: e.v * e.v,
            open: e.open,
        }),
        MapFn::Abs => even(a, |e| e),
        MapFn::Log1m => neg(&a.increasing(|x| x, None)).increasing(f64::ln_1p, Some(-1.0)),
        MapFn::LGamma | MapFn::Digamma => Bound::real().loose().with_sources(a),
    }
}

fn activation(act: Activation) -> Bound {
    match act {
        Activation::Identity | Activation::LeakyRelu => Bound::real(),
        Activation::Tanh => Bound::new(End::open(-1.0), End::open(1.0)),
        Activation::Relu => Bound::new(End::closed(0.0), End::open(f64::INFINITY)),
        Activation::Sigmoid => Bound::new(End::open(0.0), End::open(1.0)),
        Activation::Softplus => Bound::new(End::open(0.0), End::open(f64::INFINITY)),
    }
}

/// A sum of one or more values in `a`.
fn sum_of(a: &Bound) -> Bound {
    let inf = f64::INFINITY;
    let lo = if a.lo.v >= 0.0 { a.lo } else { End::open(-inf) };
    let hi = if a.hi.v <= 0.0 { a.hi } else { End::open(inf) };
    Bound {
        lo,
        hi,
        simplex: false,
        ..a.clone()
    }
}

impl Checker<'_> {
    /// A scan's step runs over the positions `first - 1 ..= len - 1`.
    pub(super) fn set_scan_index_bound(&mut self, index: NodeId, first: usize, len: &Dim) {
        let hi = len
            .value()
            .map_or(End::open(f64::INFINITY), |n| End::closed(n as f64 - 1.0));
        self.bounds
            .insert(index, Bound::new(End::closed(first as f64 - 1.0), hi).loose());
    }

    /// A scan's bound: the smallest of the start's bound, its hull with one step, and their
    /// sign, that one more step from it stays inside (else the whole line). The body's nodes
    /// are bounded again under each assumption about the member before.
    pub(super) fn settle_scan_bound(
        &mut self,
        scan: NodeId,
        init: NodeId,
        body: NodeId,
        prev: NodeId,
        inner: &[NodeId],
    ) {
        let mut assumed = self.bound(init);
        for round in 0..3 {
            for id in inner {
                self.bounds.remove(id);
            }
            self.bounds.insert(prev, assumed.clone());
            let step = self.bound(body);
            if assumed.covers(&step) {
                let mut b = assumed.hull(&step);
                b.tight &= round == 0;
                self.bounds.insert(scan, b);
                return;
            }
            assumed = match round {
                0 => assumed.hull(&step).loose(),
                _ => assumed.hull(&step).sign_only(),
            };
        }
        self.bounds.insert(scan, Bound::real().loose());
    }

    /// The support of a Uniform latent whose bounds read other latents: the hull of every
    /// (low, high) they can take, as a domain (the fit follows the bounds themselves, see
    /// `infer::svi::reparam`). `None`, with an error, when high can fall below low.
    pub(super) fn moving_uniform_support(&mut self, low: NodeId, high: NodeId, span: Span) -> Option<Domain> {
        let width = self.zip(ZipFn::Sub, high, low, span)?;
        let w = self.bound(width);
        // A width of exactly 0 needs a continuous latent at one point: probability zero.
        if w.lo.v < 0.0 {
            let d = Diagnostic::new(
                "vi::support::uniform_bounds",
                "this Uniform's high bound may fall below its low one",
            )
            .primary(span, format!("high - low can reach {}", w.lo.v))
            .help("bounds that move with other latents must keep low < high for every value of them: e.g. `Uniform(0, 1 - alpha1)` with alpha1 in (0, 1)");
            if w.tight {
                self.error(d);
                return None;
            }
            self.warn(d);
        }
        let (l, h) = (self.bound(low), self.bound(high));
        Some(match (l.lo.v, h.hi.v) {
            (a, b) if a.is_finite() && b.is_finite() && a < b => Domain::Interval(a, b),
            (a, b) if a == 0.0 && b == f64::INFINITY => Domain::Positive,
            _ => Domain::Real,
        })
    }

    /// The lowest and highest values a node can take (infinite where unbounded).
    pub(super) fn value_range(&mut self, id: NodeId) -> (f64, f64) {
        let b = self.bound(id);
        (b.lo.v, b.hi.v)
    }

    /// The bound of a node's values (memoised).
    pub(super) fn bound(&mut self, id: NodeId) -> Bound {
        if let Some(b) = self.bounds.get(&id) {
            return b.clone();
        }
        let b = crate::limits::deep(|| self.bound_at_depth(id));
        self.bounds.insert(id, b.clone());
        b
    }

    fn bound_at_depth(&mut self, id: NodeId) -> Bound {
        let node = self.nodes[id.index()].clone();
        let other = |k: u32| Source::Other(k, id.0);
        match &node.op {
            Op::Const(v) => Bound::point(*v),
            Op::Literal(vs) => {
                let mut b = vs.iter().fold(None::<Bound>, |acc, v| {
                    let p = Bound::point(*v);
                    Some(match acc {
                        None => p,
                        Some(a) => a.hull(&p),
                    })
                });
                let width = node.ty.shape.last().and_then(Dim::value).unwrap_or(0);
                let rows_sum_to_one = width > 0
                    && vs
                        .chunks(width)
                        .all(|r| r.iter().all(|x| *x >= 0.0) && (r.iter().sum::<f64>() - 1.0).abs() < 1e-9);
                if let Some(b) = b.as_mut() {
                    b.simplex = rows_sum_to_one;
                }
                b.unwrap_or_else(Bound::real)
            }
            Op::DimValue(d) => match d.value() {
                Some(v) => Bound::point(v as f64),
                None => Bound::new(End::closed(1.0), End::open(f64::INFINITY)).loose(),
            },
            Op::Data(d) => {
                let decl = &self.data[d.index()];
                let mut b = Bound::of_domain(decl.domain);
                if let Some(a) = self.dataset.get(&decl.name) {
                    let (lo, hi) = a
                        .values
                        .iter()
                        .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| {
                            (l.min(*v), h.max(*v))
                        });
                    if lo <= hi {
                        b.lo = End::closed(lo);
                        b.hi = End::closed(hi);
                    }
                }
                b.with_source(Source::Other(1, d.0))
            }
            Op::Param(p) => {
                Bound::of_domain(self.params[p.index()].domain).with_source(Source::Other(2, p.0))
            }
            Op::Latent(l) => {
                let support = self.latents[l.index()].support;
                Bound::of_domain(support).with_source(Source::Latent(l.0))
            }
            Op::Draw(app) => Bound::of_domain(app.support()).with_source(Source::Draw(id.0)),
            Op::Quantity(_) => Bound::real().loose().with_source(other(3)),
            Op::Anneal { from, to, .. } => Bound::point(*from).hull(&Bound::point(*to)),
            // A scan's bounds are settled when it is built (`settle_scan_bound`); these are
            // only reached for nodes of a body checked again with a wider state.
            Op::Compare(..) => Bound::new(End::closed(0.0), End::closed(1.0)).loose(),
            Op::Where { then, other, .. } => {
                let (a, b) = (self.bound(*then), self.bound(*other));
                a.hull(&b).loose()
            }
            Op::ReduceAxis { f, src, .. } => {
                let b = self.bound(*src);
                match f {
                    ReduceFn::Mean => Bound { simplex: false, ..b }.loose(),
                    ReduceFn::Sum => sum_of(&b),
                    // At least the largest term: bounded below by b's low end.
                    ReduceFn::LogSumExp => Bound {
                        lo: b.lo,
                        hi: End::open(f64::INFINITY),
                        tight: false,
                        simplex: false,
                        sources: b.sources,
                    },
                }
            }
            Op::CumSum(src) => {
                let b = self.bound(*src);
                sum_of(&b).hull(&b).loose()
            }
            // Some rows of src: within its bound.
            Op::Shift { src, .. } => self.bound(*src),
            Op::Scan { .. } | Op::ScanPrev(_) => Bound::real().loose().with_source(other(5)),
            Op::ScanIndex(_) => Bound::new(End::closed(0.0), End::open(f64::INFINITY)).loose(),
            Op::Net { net, input, layer } => {
                let n = &self.nets[net.index()];
                let act = if layer.is_some_and(|k| k < n.widths.len() - 1) {
                    n.hidden
                } else {
                    n.out
                };
                let inp = self.bound(*input);
                let mut b = activation(act);
                b.sources = merge(&inp.sources, &Some(vec![Source::Other(4, net.0)]));
                b
            }
            Op::PlateView { src, .. } | Op::Unplate { src } => self.bound(*src),
            Op::Select { src, axis, .. } => {
                let mut b = self.bound(*src);
                let rank = self.nodes[src.index()].ty.shape.len();
                b.simplex &= axis + 1 < rank;
                b
            }
            Op::Slice { src, axis, .. } => {
                let mut b = self.bound(*src);
                let rank = self.nodes[src.index()].ty.shape.len();
                b.simplex &= axis + 1 < rank;
                b
            }
            Op::Transpose(a) => {
                let mut b = self.bound(*a);
                b.simplex = false;
                b
            }
            Op::Fill { value, shape } => {
                let mut b = self.bound(*value);
                let v = self.constant(*value);
                b.simplex = matches!((v, shape.last().and_then(Dim::value)), (Some(v), Some(n)) if v >= 0.0 && (v * n as f64 - 1.0).abs() < 1e-9);
                b
            }
            Op::Stack(items) => {
                let rank = node.ty.shape.len();
                let mut out: Option<Bound> = None;
                for it in items {
                    let b = self.bound(*it);
                    out = Some(match out {
                        None => b,
                        Some(a) => a.hull(&b),
                    });
                }
                let mut b = out.unwrap_or_else(Bound::real);
                b.simplex &= rank >= 2;
                b
            }
            Op::Map(f, a) => {
                let a = self.bound(*a);
                map(*f, &a)
            }
            Op::Zip(f, a, b) => {
                let (ka, kb) = (*a, *b);
                let (a, b) = (self.bound(ka), self.bound(kb));
                match f {
                    ZipFn::Add => add(&a, &b),
                    ZipFn::Sub => add(&a, &neg(&b)),
                    ZipFn::Mul => mul(&a, &b),
                    ZipFn::Div => mul(&a, &recip(&b)),
                    ZipFn::Min | ZipFn::Max => {
                        let pick = |x: End, y: End, lower: bool| {
                            if (x.v < y.v) == lower || (x.v == y.v && !x.open) {
                                x
                            } else {
                                y
                            }
                        };
                        let lower = *f == ZipFn::Min;
                        joined(&a, &b, pick(a.lo, b.lo, lower), pick(a.hi, b.hi, lower))
                    }
                    ZipFn::Pow => match self.constant(kb) {
                        Some(k) if k.fract() == 0.0 && k.abs() <= 64.0 => powi(&a, k as i32),
                        _ => {
                            let positive = a.within(Domain::Positive);
                            let mut out = if positive {
                                Bound::new(End::open(0.0), End::open(f64::INFINITY))
                            } else if a.lo.v >= 0.0 {
                                Bound::new(End::closed(0.0), End::open(f64::INFINITY))
                            } else {
                                Bound::real()
                            };
                            out = joined(&a, &b, out.lo, out.hi);
                            out.tight = false;
                            out
                        }
                    },
                }
            }
            Op::MatMul(a, b) => {
                let (a, b) = (self.bound(*a), self.bound(*b));
                sum_of(&mul(&a, &b))
            }
            Op::Reduce(f, a) => {
                let a = self.bound(*a);
                match f {
                    ReduceFn::Sum => sum_of(&a),
                    ReduceFn::Mean => Bound { simplex: false, ..a },
                    ReduceFn::LogSumExp => Bound {
                        lo: a.lo,
                        hi: End::open(f64::INFINITY),
                        tight: false,
                        simplex: false,
                        sources: a.sources,
                    },
                }
            }
            Op::Softmax { src, log } => {
                let a = self.bound(*src);
                let mut b = if *log {
                    Bound::new(End::open(f64::NEG_INFINITY), End::closed(0.0))
                } else {
                    Bound::new(End::open(0.0), End::closed(1.0))
                };
                b.simplex = !*log;
                b.sources = a.sources;
                b
            }
        }
    }

    /// Check a distribution argument that is not a constant against its parameter's domain:
    /// an error when a latent makes it leave the domain, a warning when it cannot be proven.
    pub(super) fn check_argument_support(
        &mut self,
        family: Family,
        spec: &ParamSpec,
        arg: NodeId,
        span: Span,
    ) -> bool {
        let domain = spec.domain;
        if !matches!(
            domain,
            Domain::Positive | Domain::Unit | Domain::Simplex | Domain::Interval(..)
        ) {
            return true;
        }
        let b = self.bound(arg);
        if b.within(domain) {
            return true;
        }
        let phrase = match domain {
            Domain::Simplex => "a simplex (non-negative, summing to 1)".to_string(),
            d => super::dist::domain_phrase(d),
        };
        // Values on the boundary alone (`abs(x)` is 0 only at 0) are left to a warning.
        let definite = match domain {
            Domain::Simplex => b.leaves_unit(),
            Domain::Positive => b.lo.v < 0.0,
            Domain::Interval(lo, hi) => b.lo.v < lo || b.hi.v > hi,
            _ => true,
        };
        if b.tight && definite && b.has_latent() == Some(true) {
            let culprit = self.culprit(arg, domain);
            let mut d = Diagnostic::new(
                "vi::support::latent_argument",
                format!(
                    "`{}` of {family} must be {phrase}, but its values range over {b}",
                    spec.name
                ),
            )
            .primary(span, format!("can be outside {}", domain_words(domain)));
            let mut who = "the latent".to_string();
            if let Some(l) = culprit {
                let lat = &self.latents[l.index()];
                who = format!("`{}`", lat.name);
                // A declared latent whose prior statement is still to come (or never comes)
                // has only its declaration to show.
                let origin = match self.sites.get(lat.site) {
                    Some(site) => format!("is drawn from {}", site.dist.family),
                    None => format!("is declared `{}`", lat.support.keyword()),
                };
                d = d.secondary(
                    lat.span,
                    format!("`{}` {origin}, over {}", lat.name, support_words(lat.support)),
                );
            }
            self.error(d.help(support_hint(domain, &who)));
            return false;
        }
        let b_text = b.to_string();
        self.warn(
            Diagnostic::new(
                "vi::support::unproven",
                format!("cannot prove that `{}` of {family} is {phrase}", spec.name),
            )
            .primary(
                span,
                format!("values in {b_text}, as far as the checker can tell"),
            )
            .help(format!(
                "if it is always {phrase}, ignore this; otherwise {}",
                support_hint(domain, "the value")
            )),
        );
        true
    }

    /// The latent behind a bad argument: the first whose support leaves the domain.
    fn culprit(&self, arg: NodeId, domain: Domain) -> Option<LatentId> {
        let mut stack = vec![arg];
        let mut seen = std::collections::HashSet::new();
        let mut first = None;
        while let Some(n) = stack.pop() {
            if !seen.insert(n) {
                continue;
            }
            if let Op::Latent(l) = &self.nodes[n.index()].op {
                first.get_or_insert(*l);
                if !Bound::of_domain(self.latents[l.index()].support).within(domain) {
                    return Some(*l);
                }
            }
            stack.extend(crate::graph::op_inputs(&self.nodes[n.index()].op));
        }
        first
    }

    /// `base ^ exponent` with a constant exponent that is not a whole number, of a base that
    /// may be negative, is NaN there: a warning.
    pub(super) fn check_pow(&mut self, base: NodeId, exponent: NodeId, span: Span) {
        let Some(k) = self.constant(exponent) else { return };
        if k.fract() == 0.0 || !k.is_finite() {
            return;
        }
        let b = self.bound(base);
        if !b.can_be_negative() {
            return;
        }
        let bspan = self.node_span(base);
        self.warn(
            Diagnostic::new(
                "vi::pow::negative_base",
                format!("`^ {k}` of a value that may be negative is not a number there"),
            )
            .primary(bspan, format!("values in {b}"))
            .secondary(span, format!("a power {k}, not a whole number"))
            .help("a fractional power is defined for non-negative bases only: use `abs(x) ^ k`, `exp(k * log(x))` of a positive x, or a whole-number exponent"),
        );
    }
}

fn domain_words(d: Domain) -> String {
    match d {
        Domain::Positive => "the positive numbers".into(),
        Domain::Unit => "[0, 1]".into(),
        Domain::Simplex => "the simplex".into(),
        other => format!("{other}"),
    }
}

fn support_words(d: Domain) -> String {
    match d {
        Domain::Real => "all real numbers".into(),
        other => domain_words(other),
    }
}

fn support_hint(d: Domain, who: &str) -> String {
    match d {
        Domain::Positive => format!(
            "give {who} a positive prior (HalfNormal, HalfCauchy, Gamma, LogNormal), or pass it through `exp(...)` or `softplus(...)`"
        ),
        Domain::Unit => format!("give {who} a prior on [0, 1] (Beta), or pass it through `sigmoid(...)`"),
        Domain::Simplex => format!("give {who} a Dirichlet prior, or pass it through `softmax(...)`"),
        other => format!("keep {who} inside {other}: give it a prior on that interval"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iv(lo: f64, lo_open: bool, hi: f64, hi_open: bool) -> Bound {
        Bound::new(End { v: lo, open: lo_open }, End { v: hi, open: hi_open })
    }

    #[test]
    fn interval_arithmetic_keeps_signs() {
        let pos = Bound::of_domain(Domain::Positive);
        let real = Bound::of_domain(Domain::Real);
        assert!(add(&pos, &pos).within(Domain::Positive));
        assert!(mul(&pos, &pos).within(Domain::Positive));
        assert!(mul(&pos, &recip(&pos)).within(Domain::Positive));
        assert!(!add(&real, &pos).within(Domain::Positive));
        assert!(map(MapFn::Exp, &real).within(Domain::Positive));
        assert!(map(MapFn::Softplus, &real).within(Domain::Positive));
        assert!(map(MapFn::Sigmoid, &real).within(Domain::Unit));
        assert!(!map(MapFn::Abs, &real).within(Domain::Positive));
        assert!(powi(&real, 2).lo.v == 0.0 && !powi(&real, 2).lo.open);
        assert!(!powi(&real, 3).within(Domain::Positive));
        let shifted = add(&powi(&real, 2), &Bound::point(0.1));
        assert!(shifted.within(Domain::Positive));
        let unit = iv(0.0, false, 1.0, false);
        assert!(mul(&unit, &unit).within(Domain::Unit));
        assert!(!add(&unit, &unit).within(Domain::Unit));
    }

    #[test]
    fn tightness_follows_independent_sources() {
        let a = Bound::of_domain(Domain::Real).with_source(Source::Latent(0));
        let b = Bound::of_domain(Domain::Positive).with_source(Source::Latent(1));
        assert!(add(&a, &b).tight);
        assert!(!add(&a, &a).tight, "a - a is 0: the interval over-approximates");
        assert!(mul(&a, &Bound::point(2.0)).tight);
    }
}
