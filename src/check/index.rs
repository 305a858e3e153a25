//! Integer data used as indices: once data are bound, every value an index expression takes
//! from the data is checked against the length of the axis it indexes, so that no engine ever
//! reads outside an array.
//!
//! The values are followed from the data array through the operations an index expression is
//! made of (plate views, constant selections and slices, gathers, arithmetic with constants),
//! each with the element of the data array it came from, so that a bad value is reported by its
//! row and its line in the file.

use super::Checker;
use crate::diag::Diagnostic;
use crate::graph::{DataId, Dim, NodeId, Op, ShapeDisplay, ZipFn};
use crate::syntax::Span;

/// Data arrays larger than this are not followed element by element.
const MAX_ELEMENTS: usize = 50_000_000;

/// The values an index node takes from one data array: each with the flat position of the
/// element it came from and, while they are known, its coordinates along the node's shape.
/// The list may hold more values than the node takes (after a gather), never fewer.
pub(super) struct Taken {
    pub(super) data: DataId,
    pub(super) entries: Vec<Entry>,
    /// False once the coordinates no longer follow the node's shape (after a gather).
    pub(super) placed: bool,
    /// The values are of an expression of this data and other data, not the data's own.
    pub(super) combined: bool,
}

/// Two data-derived operands are combined value by value only up to this many pairs.
const MAX_PAIRS: usize = 10_000_000;

impl Taken {
    /// Whether `self` and `other` hold the same members in the same places, one value each
    /// (`g[i]` beside `h[i]`), so that they can be read pairwise.
    pub(super) fn aligned_with(&self, other: &Taken) -> bool {
        self.placed
            && other.placed
            && self.entries.len() == other.entries.len()
            && self
                .entries
                .iter()
                .zip(&other.entries)
                .all(|(x, y)| x.coords == y.coords)
    }
}

pub(super) struct Entry {
    pub(super) source: usize,
    pub(super) coords: Vec<usize>,
    pub(super) value: f64,
}

impl Checker<'_> {
    /// The first value `index` takes from bound data that falls outside `0..len`, as a
    /// diagnostic labelled at `ispan`; `src` is the indexed value.
    pub(super) fn check_data_index(
        &self,
        index: NodeId,
        len: &Dim,
        src: NodeId,
        ispan: Span,
    ) -> Option<Diagnostic> {
        let n = len.value()?;
        let taken = self.taken(index)?;
        let bad = taken
            .entries
            .iter()
            .find(|e| e.value < 0.0 || e.value >= n as f64 || e.value.fract() != 0.0)?;
        let decl = &self.data[taken.data.index()];
        let (at, place) = self.data_place(taken.data, bad.source)?;
        let range = if n == 0 {
            format!("the axis is empty (length {len}): nothing can index it")
        } else {
            format!(
                "indices start at 0, so the valid values are 0 to {} (0..{len})",
                n - 1
            )
        };
        let values = || taken.entries.iter().map(|e| e.value);
        let one_based = values().all(|v| v >= 1.0 && v <= n as f64) && values().any(|v| v == n as f64);
        let hint = if one_based && taken.placed && !taken.combined {
            format!(
                "; the values run from 1 to {n}, as if counted from 1: index with `{}[…] - 1`",
                decl.name
            )
        } else {
            String::new()
        };
        let sty = &self.nodes[src.index()].ty;
        Some(
            Diagnostic::new(
                "vi::index::data_out_of_range",
                if taken.combined {
                    format!(
                        "this index is {} at {at} of `{}`, out of range for an axis of length {len}",
                        bad.value, decl.name
                    )
                } else {
                    format!(
                        "`{}` at {at} is {}, out of range for an axis of length {len}",
                        decl.name, bad.value
                    )
                },
            )
            .primary(ispan, format!("{} at {at}: outside 0..{len}", bad.value))
            .secondary(
                self.nodes[src.index()].span,
                format!("shape {}", ShapeDisplay(&sty.shape)),
            )
            .secondary(decl.span, "declared here")
            .help(format!("{place}; {range}{hint}")),
        )
    }

    /// Where element `source` (flat) of bound data `data` sits, in words: `row 3` or `row 3,
    /// column 2`, and that with its line in the file (`row 3 is line 4 of y.csv`), so that an
    /// editor can jump to it.
    pub(super) fn data_place(&self, data: DataId, source: usize) -> Option<(String, String)> {
        let decl = &self.data[data.index()];
        let array = self.dataset.get(&decl.name)?;
        let dims: Vec<usize> = decl.shape.iter().map(|d| d.value().unwrap_or(1)).collect();
        let width: usize = dims.iter().skip(1).product::<usize>().max(1);
        let row = source / width;
        let at = if dims.len() >= 2 {
            format!("row {}, column {}", row + 1, source % width + 1)
        } else if dims.is_empty() {
            "its only value".to_string()
        } else {
            format!("row {}", row + 1)
        };
        let place = match array.lines.get(row) {
            Some(line) => format!("{at} is line {line} of {}", array.origin),
            None => format!("the value comes from {}", array.origin),
        };
        Some((at, place))
    }

    /// The values an index node takes from one bound data array, if it is built from exactly
    /// one such array and constants.
    pub(super) fn taken(&self, id: NodeId) -> Option<Taken> {
        crate::limits::deep(|| self.taken_at_depth(id))
    }

    fn taken_at_depth(&self, id: NodeId) -> Option<Taken> {
        let node = &self.nodes[id.index()];
        match &node.op {
            Op::Data(d) => {
                let decl = &self.data[d.index()];
                let array = self.dataset.get(&decl.name)?;
                if array.values.len() > MAX_ELEMENTS {
                    return None;
                }
                let dims: Vec<usize> = decl.shape.iter().map(|x| x.value().unwrap_or(1)).collect();
                if dims.iter().product::<usize>() != array.values.len() {
                    return None;
                }
                // The values as the model reads them (an image's bytes as grey levels).
                let factor = array.unit_factor(decl.domain);
                let entries = array
                    .values
                    .iter()
                    .enumerate()
                    .map(|(k, &value)| Entry {
                        source: k,
                        coords: unravel(&dims, k),
                        value: value * factor,
                    })
                    .collect();
                Some(Taken {
                    data: *d,
                    entries,
                    placed: true,
                    combined: false,
                })
            }
            Op::PlateView { src, plates } => {
                let mut t = self.taken(*src)?;
                for e in &mut t.entries {
                    let k = plates.len().min(e.coords.len());
                    e.coords.drain(..k);
                }
                Some(t)
            }
            Op::Select { src, axis, index } => {
                let mut t = self.taken(*src)?;
                if let Some(c) = self.constant(*index) {
                    if t.placed {
                        t.entries
                            .retain(|e| e.coords.get(*axis).is_some_and(|&x| x as f64 == c));
                        for e in &mut t.entries {
                            e.coords.remove(*axis);
                        }
                    }
                } else {
                    // A gather: the values are among the selected array's; where each lands is
                    // not followed.
                    t.placed = false;
                }
                Some(t)
            }
            Op::Slice {
                src,
                axis,
                start,
                end,
            } => {
                let mut t = self.taken(*src)?;
                if let (true, Some(a), Some(b)) = (t.placed, start.value(), end.value()) {
                    t.entries
                        .retain(|e| e.coords.get(*axis).is_some_and(|&x| x >= a && x < b));
                    for e in &mut t.entries {
                        e.coords[*axis] -= a;
                    }
                }
                Some(t)
            }
            Op::Map(f, a) => {
                let mut t = self.taken(*a)?;
                for e in &mut t.entries {
                    e.value = f.apply(e.value);
                }
                Some(t)
            }
            Op::Zip(f, a, b)
                if matches!(f, ZipFn::Add | ZipFn::Sub | ZipFn::Mul | ZipFn::Min | ZipFn::Max) =>
            {
                let (ca, cb) = (self.constant(*a), self.constant(*b));
                let (mut t, c, data_left) = match (ca, cb) {
                    (None, Some(c)) => (self.taken(*a)?, c, true),
                    (Some(c), None) => (self.taken(*b)?, c, false),
                    (None, None) => return self.taken_pairs(*f, *a, *b),
                    _ => return None,
                };
                for e in &mut t.entries {
                    e.value = if data_left {
                        f.apply(e.value, c)
                    } else {
                        f.apply(c, e.value)
                    };
                }
                Some(t)
            }
            _ => None,
        }
    }
}

impl Checker<'_> {
    /// `f(a, b)` of two data-derived index values: member by member when both vary over the
    /// same plates with the same layout (`g[i] + h[i]`), every pair when they share no plate
    /// (`g[i] + h[j]`), or one against all when either is a single value.
    fn taken_pairs(&self, f: ZipFn, a: NodeId, b: NodeId) -> Option<Taken> {
        let (ta, tb) = (self.taken(a)?, self.taken(b)?);
        let (pa, pb) = (&self.nodes[a.index()].ty.plates, &self.nodes[b.index()].ty.plates);
        let aligned = pa == pb
            && ta.aligned_with(&tb)
            && self.nodes[a.index()].ty.shape.len() == self.nodes[b.index()].ty.shape.len();
        let entries: Vec<Entry> = if aligned {
            ta.entries
                .iter()
                .zip(&tb.entries)
                .map(|(x, y)| Entry {
                    source: x.source,
                    coords: x.coords.clone(),
                    value: f.apply(x.value, y.value),
                })
                .collect()
        } else if tb.entries.len() == 1 || ta.entries.len() == 1 || !pa.iter().any(|p| pb.contains(p)) {
            if ta.entries.len().saturating_mul(tb.entries.len()) > MAX_PAIRS {
                return None;
            }
            ta.entries
                .iter()
                .flat_map(|x| {
                    tb.entries.iter().map(move |y| Entry {
                        source: x.source,
                        coords: Vec::new(),
                        value: f.apply(x.value, y.value),
                    })
                })
                .collect()
        } else {
            return None;
        };
        Some(Taken {
            data: ta.data,
            entries,
            placed: aligned && ta.placed,
            combined: true,
        })
    }
}

fn unravel(dims: &[usize], mut k: usize) -> Vec<usize> {
    let mut out = vec![0; dims.len()];
    for (a, &n) in dims.iter().enumerate().rev() {
        out[a] = k % n.max(1);
        k /= n.max(1);
    }
    out
}
