//! Evaluating graph nodes on arrays, vectorised over plates and Monte-Carlo samples.
//!
//! A [`Value`] is an array with a [`Layout`]: an optional leading sample axis, then one axis per
//! plate it varies over (outermost first; a batched plate has the batch's length), then the
//! node's own shape. Elementwise operations align two layouts by inserting the axes one side
//! lacks; plate views of data gather the minibatch's rows. No operation loops over data points
//! in Rust: index maps are built once per layout and handed to a gather.
//!
//! The graph interpreter sits on the backend (it only calls [`Session`]'s operations and names
//! no dfdx type) and below everything that evaluates a model: densities, bijections, the
//! engines and the after-fit tools. It must never import `dist`, `transform` or `infer`.

use std::collections::HashMap;

pub mod net;

use crate::backend::{Array, Session};
use crate::graph::{Activation, Dim, MapFn, Model, NodeId, Op, PlateId, ReduceFn, ZipFn};

/// Where a value's axes come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    /// The number of Monte-Carlo samples, if the value varies over them.
    pub samples: Option<usize>,
    /// The plates it varies over, outermost first, with their current lengths.
    pub plates: Vec<(PlateId, usize)>,
    /// The shape of one plate member's value.
    pub shape: Vec<usize>,
}

impl Layout {
    pub fn scalar() -> Layout {
        Layout {
            samples: None,
            plates: Vec::new(),
            shape: Vec::new(),
        }
    }

    pub fn of_shape(shape: Vec<usize>) -> Layout {
        Layout {
            samples: None,
            plates: Vec::new(),
            shape,
        }
    }

    /// The number of leading (sample and plate) axes.
    pub fn lead(&self) -> usize {
        usize::from(self.samples.is_some()) + self.plates.len()
    }

    /// The physical shape: samples, plates, then the value's shape.
    pub fn dims(&self) -> Vec<usize> {
        let mut d = Vec::with_capacity(self.lead() + self.shape.len());
        d.extend(self.samples);
        d.extend(self.plates.iter().map(|p| p.1));
        d.extend(self.shape.iter().copied());
        d
    }

    /// The product of the leading axes.
    pub fn lead_len(&self) -> usize {
        self.dims()[..self.lead()].iter().product()
    }
}

/// A node's value: an array laid out as [`Layout`] says.
#[derive(Clone, Debug)]
pub struct Value {
    pub arr: Array,
    pub lay: Layout,
}

impl Value {
    pub fn new(arr: Array, lay: Layout) -> Value {
        debug_assert_eq!(arr.shape(), lay.dims().as_slice());
        Value { arr, lay }
    }
}

/// One axis of a target layout, for alignment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Axis {
    Samples,
    Plate(PlateId),
    /// The k-th value axis, counted from the right.
    Shape(usize),
}

fn axes_of(lay: &Layout) -> Vec<(Axis, usize)> {
    let mut out = Vec::new();
    if let Some(s) = lay.samples {
        out.push((Axis::Samples, s));
    }
    out.extend(lay.plates.iter().map(|(p, n)| (Axis::Plate(*p), *n)));
    let r = lay.shape.len();
    out.extend(
        lay.shape
            .iter()
            .enumerate()
            .map(|(i, n)| (Axis::Shape(r - 1 - i), *n)),
    );
    out
}

/// The layout both of two layouts broadcast to (numpy rules on the value shapes).
pub fn joint_layout(a: &Layout, b: &Layout) -> Layout {
    let samples = a.samples.or(b.samples);
    let mut plates = a.plates.clone();
    for p in &b.plates {
        if !plates.iter().any(|q| q.0 == p.0) {
            plates.push(*p);
        }
    }
    plates.sort_by_key(|p| p.0);
    let n = a.shape.len().max(b.shape.len());
    let mut shape = Vec::with_capacity(n);
    for k in 0..n {
        let da = (k + a.shape.len()).checked_sub(n).map(|i| a.shape[i]);
        let db = (k + b.shape.len()).checked_sub(n).map(|i| b.shape[i]);
        shape.push(match (da, db) {
            (Some(x), Some(y)) => x.max(y),
            (Some(x), None) | (None, Some(x)) => x,
            (None, None) => unreachable!(),
        });
    }
    Layout {
        samples,
        plates,
        shape,
    }
}

/// Broadcast `v` to the layout `to`, which must contain all of its axes.
pub fn expand(s: &mut Session, v: &Value, to: &Layout) -> Value {
    if v.lay == *to {
        return v.clone();
    }
    let src_all = axes_of(&v.lay);
    let dst = axes_of(to);
    // Drop the source's length-1 value axes that the target stretches, then insert every
    // target axis the source lacks, merging neighbours into one insertion.
    let kept: Vec<(Axis, usize)> = src_all
        .iter()
        .filter(|(ax, n)| {
            !(matches!(ax, Axis::Shape(_)) && *n == 1 && dst.iter().any(|(d, m)| d == ax && *m != 1))
        })
        .copied()
        .collect();
    let mut arr = v.arr.reshaped(&kept.iter().map(|a| a.1).collect::<Vec<_>>());
    let mut cur: Vec<(Axis, usize)> = kept;
    let mut k = 0;
    while k < dst.len() {
        if cur.get(k).is_some_and(|c| c.0 == dst[k].0) {
            k += 1;
            continue;
        }
        // A run of missing target axes starting at k.
        let mut end = k;
        while end < dst.len() && !cur.iter().any(|c| c.0 == dst[end].0) {
            end += 1;
        }
        let len: usize = dst[k..end].iter().map(|d| d.1).product();
        arr = s.insert_axis(&arr, k, len);
        // Split the merged axis back into the target's axes in the bookkeeping.
        let mut dims: Vec<usize> = arr.shape().to_vec();
        dims.splice(k..k + 1, dst[k..end].iter().map(|d| d.1));
        arr = arr.reshaped(&dims);
        for (i, d) in dst[k..end].iter().enumerate() {
            cur.insert(k + i, *d);
        }
        k = end;
    }
    debug_assert_eq!(
        cur.iter().map(|c| c.0).collect::<Vec<_>>(),
        dst.iter().map(|d| d.0).collect::<Vec<_>>()
    );
    Value::new(arr.reshaped(&to.dims()), to.clone())
}

/// Align two values to their joint layout.
pub fn align(s: &mut Session, a: &Value, b: &Value) -> (Array, Array, Layout) {
    let lay = joint_layout(&a.lay, &b.lay);
    let x = expand(s, a, &lay).arr;
    let y = expand(s, b, &lay).arr;
    (x, y, lay)
}

/// `a (op) b`, broadcasting.
/// `a` where `take`, else `b`, elementwise over `lay` (which `take` is laid out in and both
/// broadcast to): a gather from both, so the branch not taken gets no gradient, even where it
/// is not finite.
pub fn select(s: &mut Session, take: &[bool], a: &Value, b: &Value, lay: &Layout) -> Value {
    let (a, b) = (expand(s, a, lay), expand(s, b, lay));
    let n = take.len();
    assert_eq!(n, a.arr.len(), "one choice per element");
    let both = s.concat(&[a.arr, b.arr], &[2 * n]);
    let idx: Vec<usize> = (0..n).map(|i| if take[i] { i } else { n + i }).collect();
    Value::new(s.gather(&both, &idx, &lay.dims()), lay.clone())
}

pub fn zip(s: &mut Session, f: ZipFn, a: &Value, b: &Value) -> Value {
    let (x, y, lay) = align(s, a, b);
    Value::new(s.zip(f, &x, &y), lay)
}

pub fn map(s: &mut Session, f: MapFn, a: &Value) -> Value {
    Value::new(s.map(f, &a.arr), a.lay.clone())
}

/// Sum a value's own axes, leaving one number per sample and plate member.
pub fn sum_shape(s: &mut Session, v: &Value) -> Value {
    if v.lay.shape.is_empty() {
        return v.clone();
    }
    let lead = v.lay.lead();
    let arr = s.sum_axes(&v.arr, lead, v.arr.shape().len());
    Value::new(
        arr,
        Layout {
            shape: Vec::new(),
            ..v.lay.clone()
        },
    )
}

/// How the current step sees each plate: its length and, when subsampled, which members.
#[derive(Clone, Debug)]
pub struct PlateState {
    pub len: usize,
    pub batch: Option<Vec<usize>>,
}

impl PlateState {
    /// Every plate of a bound model whole.
    pub fn whole(model: &Model) -> Vec<PlateState> {
        model
            .plates
            .iter()
            .map(|p| PlateState {
                len: p.size.value().expect("bound"),
                batch: None,
            })
            .collect()
    }

    /// Every plate whole except `plate`, which takes just `rows`.
    pub fn rows_of(model: &Model, plate: PlateId, rows: &[usize]) -> Vec<PlateState> {
        let mut plates = PlateState::whole(model);
        plates[plate.index()] = PlateState {
            len: rows.len(),
            batch: Some(rows.to_vec()),
        };
        plates
    }
}

/// Evaluates nodes for one step, caching each node's value.
pub struct Evaluator<'m> {
    pub model: &'m Model,
    /// Data arrays by data id, uploaded once.
    pub data: &'m [Option<Array>],
    /// Host copies of data, for integer indexing.
    pub data_host: &'m [Option<Vec<f64>>],
    pub plates: Vec<PlateState>,
    pub samples: Option<usize>,
    /// Current latent values (laid out along their plates, with samples).
    pub latents: Vec<Option<Value>>,
    /// Current param values.
    pub params: Vec<Option<Value>>,
    /// Each net's learnables for this step, in the order `net::forward` reads them.
    pub nets: Vec<Vec<(Array, Array)>>,
    /// The training step, for `anneal`.
    pub step: usize,
    /// Noise for `draw` nodes: called with the shape to fill with standard normals.
    pub noise: &'m mut dyn FnMut(&[usize]) -> Vec<f64>,
    cache: HashMap<NodeId, Value>,
}

impl<'m> Evaluator<'m> {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        model: &'m Model,
        data: &'m [Option<Array>],
        data_host: &'m [Option<Vec<f64>>],
        plates: Vec<PlateState>,
        samples: Option<usize>,
        noise: &'m mut dyn FnMut(&[usize]) -> Vec<f64>,
    ) -> Self {
        Evaluator {
            model,
            data,
            data_host,
            plates,
            samples,
            latents: vec![None; model.latents.len()],
            params: vec![None; model.params.len()],
            nets: vec![Vec::new(); model.nets.len()],
            step: 0,
            noise,
            cache: HashMap::new(),
        }
    }

    /// Forget cached values (before a new step or after latents change).
    pub fn clear(&mut self) {
        self.cache.clear();
    }

    pub fn plate_len(&self, p: PlateId) -> usize {
        self.plates[p.index()].len
    }

    pub fn dim(&self, d: &Dim) -> usize {
        d.value().expect("dimensions are bound before evaluation")
    }

    /// The layout a node's type implies in this step (samples as given).
    pub fn layout_of(&self, plates: &[PlateId], shape: &[Dim], samples: Option<usize>) -> Layout {
        Layout {
            samples,
            plates: plates.iter().map(|p| (*p, self.plate_len(*p))).collect(),
            shape: shape.iter().map(|d| self.dim(d)).collect(),
        }
    }

    pub fn eval(&mut self, s: &mut Session, id: NodeId) -> Value {
        crate::limits::deep(|| self.eval_at_depth(s, id))
    }

    fn eval_at_depth(&mut self, s: &mut Session, id: NodeId) -> Value {
        if let Some(v) = self.cache.get(&id) {
            return v.clone();
        }
        let v = self.compute(s, id);
        self.cache.insert(id, v.clone());
        v
    }

    fn compute(&mut self, s: &mut Session, id: NodeId) -> Value {
        let node = self.model.node(id);
        let ty_shape: Vec<usize> = node.ty.shape.iter().map(|d| self.dim(d)).collect();
        match &node.op {
            Op::Const(c) => Value::new(s.scalar(*c), Layout::scalar()),
            Op::Literal(vs) => Value::new(s.array(vs, &ty_shape), Layout::of_shape(ty_shape)),
            Op::Data(d) => {
                let a = self.data[d.index()].clone().expect("bound data");
                Value::new(a, Layout::of_shape(ty_shape))
            }
            Op::DimValue(d) => Value::new(s.scalar(self.dim(d) as f64), Layout::scalar()),
            Op::Latent(l) => self.latents[l.index()]
                .clone()
                .expect("latent values are set before evaluation"),
            Op::Param(p) => self.params[p.index()]
                .clone()
                .expect("param values are set before evaluation"),
            Op::Draw(app) => {
                // Reparameterised: loc + scale * eps for the Normal family; other families are
                // refused by the engine before it runs.
                let loc = self.eval(s, app.args[0]);
                let scale = self.eval(s, app.args[1]);
                let lay = self.layout_of(&node.ty.plates, &node.ty.shape, self.samples);
                let eps = (self.noise)(&lay.dims());
                let eps = Value::new(s.array(&eps, &lay.dims()), lay.clone());
                let scaled = zip(s, ZipFn::Mul, &scale, &eps);
                zip(s, ZipFn::Add, &loc, &scaled)
            }
            Op::PlateView { src, plates } => self.plate_view(s, *src, plates),
            Op::Unplate { src } => {
                let v = self.eval(s, *src);
                let mut shape: Vec<usize> = v.lay.plates.iter().map(|p| p.1).collect();
                shape.extend(v.lay.shape.iter().copied());
                let lay = Layout {
                    samples: v.lay.samples,
                    plates: Vec::new(),
                    shape,
                };
                Value::new(v.arr, lay)
            }
            Op::Select { src, axis, index } => self.select(s, *src, *axis, *index),
            Op::Slice {
                src,
                axis,
                start,
                end,
            } => {
                let v = self.eval(s, *src);
                let dims = v.lay.dims();
                let ax = v.lay.lead() + axis;
                let (outer, n, inner): (usize, usize, usize) = (
                    dims[..ax].iter().product(),
                    dims[ax],
                    dims[ax + 1..].iter().product(),
                );
                let (start, end) = (start.value().expect("bound"), end.value().expect("bound"));
                let w = end - start;
                let mut idx = Vec::with_capacity(outer * w * inner);
                for o in 0..outer {
                    for k in start..end {
                        let base = (o * n + k) * inner;
                        idx.extend(base..base + inner);
                    }
                }
                let mut lay = v.lay.clone();
                lay.shape[*axis] = w;
                Value::new(s.gather(&v.arr, &idx, &lay.dims()), lay)
            }
            Op::Map(f, a) => {
                let a = self.eval(s, *a);
                map(s, *f, &a)
            }
            Op::Zip(f, a, b) => {
                // A constant exponent: whole numbers by repeated multiplication (right for
                // negative bases), fractional ones above 1 with the right derivative at 0.
                let power = (*f == ZipFn::Pow)
                    .then(|| self.model.constant(*b))
                    .flatten()
                    .filter(|k| k.is_finite() && (k.fract() == 0.0 && k.abs() <= 1024.0 || *k > 1.0));
                if let Some(k) = power {
                    let v = self.eval(s, *a);
                    let arr = if k.fract() == 0.0 {
                        s.powi(&v.arr, k as i64)
                    } else {
                        s.powf_above_one(&v.arr, k)
                    };
                    Value::new(arr, v.lay)
                } else {
                    let a = self.eval(s, *a);
                    let b = self.eval(s, *b);
                    zip(s, *f, &a, &b)
                }
            }
            Op::MatMul(a, b) => {
                let a = self.eval(s, *a);
                let b = self.eval(s, *b);
                matmul(s, &a, &b)
            }
            Op::Reduce(f, a) => {
                let v = self.eval(s, *a);
                reduce(s, *f, &v)
            }
            Op::Softmax { src, log } => {
                let v = self.eval(s, *src);
                Value::new(s.softmax(&v.arr, *log), v.lay)
            }
            Op::Fill { value, .. } => {
                let v = self.eval(s, *value);
                let mut lay = v.lay.clone();
                lay.shape = ty_shape;
                expand(s, &v, &lay)
            }
            Op::Transpose(a) => {
                let v = self.eval(s, *a);
                let dims = v.lay.dims();
                let r = dims.len();
                let (m, n) = (dims[r - 2], dims[r - 1]);
                let outer: usize = dims[..r - 2].iter().product();
                let mut idx = Vec::with_capacity(v.arr.len());
                for o in 0..outer {
                    for j in 0..n {
                        for i in 0..m {
                            idx.push(o * m * n + i * n + j);
                        }
                    }
                }
                let mut lay = v.lay.clone();
                let k = lay.shape.len();
                lay.shape.swap(k - 1, k - 2);
                Value::new(s.gather(&v.arr, &idx, &lay.dims()), lay)
            }
            Op::Stack(items) => self.stack(s, items, &ty_shape),
            Op::Net { net, input, layer } => {
                let x = self.eval(s, *input);
                self.apply_net(s, net.index(), &x, *layer)
            }
            Op::Anneal { from, to, steps } => {
                let t = (self.step as f64 / steps).min(1.0);
                Value::new(s.scalar(from + (to - from) * t), Layout::scalar())
            }
            Op::Scan {
                init,
                body,
                index,
                prev,
                first,
                len,
                inner,
            } => {
                let n = self.dim(len);
                let mut state = self.eval(s, *init);
                let mut members = Vec::with_capacity(n);
                if *first == 2 {
                    members.push(state.clone());
                }
                for pos in first - 1..n {
                    for id in inner {
                        self.cache.remove(id);
                    }
                    self.cache
                        .insert(*index, Value::new(s.scalar(pos as f64), Layout::scalar()));
                    self.cache.insert(*prev, state);
                    state = self.eval(s, *body);
                    members.push(state.clone());
                }
                for id in inner.iter().chain([index, prev]) {
                    self.cache.remove(id);
                }
                stack(s, &members, &ty_shape)
            }
            Op::Shift { src, plate, offset } => {
                let v = self.eval(s, *src);
                let o = self.eval(s, *offset);
                let o = s.value(&o.arr).round() as i64;
                let start = self.dim(&self.model.plate(*plate).start) as i64;
                let ax = v.lay.lead();
                let dims = v.lay.dims();
                let last = dims[ax] as i64 - 1;
                let state = &self.plates[plate.index()];
                let rows: Vec<usize> = match &state.batch {
                    Some(members) => members.clone(),
                    None => (0..state.len).collect(),
                }
                .into_iter()
                // The checker proved every row on the axis; clamping only guards the gather.
                .map(|m| (start + m as i64 + o).clamp(0, last) as usize)
                .collect();
                let (idx, nd) = rows_along(&dims, ax, &rows);
                let arr = s.gather(&v.arr, &idx, &nd);
                self.as_plates(s, &v.lay, arr, &[*plate])
            }
            Op::Compare(f, a, b) => {
                let (a, b) = (self.eval(s, *a), self.eval(s, *b));
                let (x, y, lay) = align(s, &a, &b);
                let (xs, ys) = (s.values(&x), s.values(&y));
                let holds: Vec<f64> = xs
                    .iter()
                    .zip(&ys)
                    .map(|(p, q)| f64::from(u8::from(f.holds(*p, *q))))
                    .collect();
                Value::new(s.array(&holds, &lay.dims()), lay)
            }
            Op::Where { cond, then, other } => {
                let (c, a, b) = (self.eval(s, *cond), self.eval(s, *then), self.eval(s, *other));
                let lay = joint_layout(&joint_layout(&c.lay, &a.lay), &b.lay);
                let c = expand(s, &c, &lay);
                let take: Vec<bool> = s.values(&c.arr).iter().map(|c| *c != 0.0).collect();
                select(s, &take, &a, &b, &lay)
            }
            Op::ReduceAxis {
                f: ReduceFn::LogSumExp,
                src,
                axis,
            } => {
                // The axis moved last by a gather, then the backend's last-axis logsumexp.
                let v = self.eval(s, *src);
                let dims = v.lay.dims();
                let ax = v.lay.lead() + axis;
                let mut perm: Vec<usize> = (0..dims.len()).filter(|d| *d != ax).collect();
                perm.push(ax);
                let moved: Vec<usize> = perm.iter().map(|d| dims[*d]).collect();
                let idx = permutation_index(&dims, &perm);
                let arr = s.gather(&v.arr, &idx, &moved);
                let mut lay = v.lay.clone();
                lay.shape.remove(*axis);
                Value::new(s.logsumexp(&arr), lay)
            }
            Op::ReduceAxis { f, src, axis } => {
                let v = self.eval(s, *src);
                let ax = v.lay.lead() + axis;
                let n = v.lay.shape[*axis];
                let mut arr = s.sum_axes(&v.arr, ax, ax + 1);
                if *f == ReduceFn::Mean {
                    arr = s.scale(&arr, 1.0 / n as f64);
                }
                let mut lay = v.lay.clone();
                lay.shape.remove(*axis);
                Value::new(arr, lay)
            }
            Op::CumSum(src) => {
                let v = self.eval(s, *src);
                cumsum(s, &v)
            }
            Op::ScanIndex(_) | Op::ScanPrev(_) => {
                unreachable!("set by its scan before the body is evaluated")
            }
            Op::Quantity(_) => unreachable!("objective quantities are computed by the engine"),
        }
    }

    fn plate_view(&mut self, s: &mut Session, src: NodeId, plates: &[PlateId]) -> Value {
        let v = self.eval(s, src);
        let lead = v.lay.lead();
        let mut arr = v.arr.clone();
        // Subsample batched plates along their axes (the first k value axes).
        for (j, p) in plates.iter().enumerate() {
            if let Some(rows) = &self.plates[p.index()].batch {
                let dims = arr.shape().to_vec();
                let ax = lead + j;
                let outer: usize = dims[..ax].iter().product();
                if outer == 1 {
                    let rest: usize = dims[ax + 1..].iter().product();
                    let m = arr.reshaped(&[dims[ax], rest]);
                    let g = s.gather_rows(&m, rows);
                    let mut nd = dims.clone();
                    nd[ax] = rows.len();
                    arr = g.reshaped(&nd);
                } else {
                    let (idx, nd) = rows_along(&dims, ax, rows);
                    arr = s.gather(&arr, &idx, &nd);
                }
            }
        }
        self.as_plates(s, &v.lay, arr, plates)
    }

    /// `arr` laid out as `src`'s leading axes, then one axis per plate of `plates`, then the
    /// rest of `src`'s value axes: the new axes become plates, all in nesting order.
    fn as_plates(&self, s: &mut Session, src: &Layout, arr: Array, plates: &[PlateId]) -> Value {
        let k = plates.len();
        let v_lay = src;
        // The viewed axes become plates; put all plates in nesting order.
        let mut order: Vec<(PlateId, usize)> = v_lay.plates.clone();
        for p in plates {
            order.push((*p, self.plate_len(*p)));
        }
        let physical: Vec<PlateId> = order.iter().map(|p| p.0).collect();
        let mut sorted = order.clone();
        sorted.sort_by_key(|p| p.0);
        let lay = Layout {
            samples: v_lay.samples,
            plates: sorted.clone(),
            shape: v_lay.shape[k..].to_vec(),
        };
        if physical == sorted.iter().map(|p| p.0).collect::<Vec<_>>() {
            return Value::new(arr.reshaped(&lay.dims()), lay);
        }
        // Permute the plate axes into nesting order.
        let s_len = usize::from(v_lay.samples.is_some());
        let dims = arr.shape().to_vec();
        let perm: Vec<usize> = (0..dims.len())
            .map(|i| {
                if i < s_len || i >= s_len + order.len() {
                    i
                } else {
                    let want = sorted[i - s_len].0;
                    s_len + physical.iter().position(|p| *p == want).expect("same plates")
                }
            })
            .collect();
        let idx = permutation_index(&dims, &perm);
        Value::new(s.gather(&arr, &idx, &lay.dims()), lay)
    }

    fn select(&mut self, s: &mut Session, src: NodeId, axis: usize, index: NodeId) -> Value {
        let v = self.eval(s, src);
        let iv = self.eval(s, index);
        let ivals = s.values(&iv.arr);
        // The result: the joint leading layout, then src's axes with `axis` replaced by the
        // index's shape.
        let lead = joint_layout(
            &Layout {
                shape: vec![],
                ..v.lay.clone()
            },
            &Layout {
                shape: vec![],
                ..iv.lay.clone()
            },
        );
        let mut shape = v.lay.shape[..axis].to_vec();
        shape.extend(iv.lay.shape.iter().copied());
        shape.extend(v.lay.shape[axis + 1..].iter().copied());
        let out = Layout {
            shape: shape.clone(),
            ..lead.clone()
        };
        let odims = out.dims();
        let total: usize = odims.iter().product();
        let src_dims = v.lay.dims();
        let src_strides = strides(&src_dims);
        let idx_dims = iv.lay.dims();
        let idx_strides = strides(&idx_dims);
        let lead_axes = axes_of(&Layout {
            shape: vec![],
            ..lead.clone()
        });
        let src_lead = axes_of(&Layout {
            shape: vec![],
            ..v.lay.clone()
        });
        let idx_lead = axes_of(&Layout {
            shape: vec![],
            ..iv.lay.clone()
        });
        let nl = lead_axes.len();
        let (a_pre, a_idx) = (axis, iv.lay.shape.len());
        let (sl, il) = (src_lead.len(), idx_lead.len());
        // Each output lead axis's stride in the source and in the index (0 where it lacks it).
        let lead_strides = |own: &[(Axis, usize)], st: &[usize]| -> Vec<usize> {
            lead_axes
                .iter()
                .map(|(ax, _)| own.iter().position(|(a, _)| a == ax).map_or(0, |p| st[p]))
                .collect()
        };
        let lead_src = lead_strides(&src_lead, &src_strides);
        let lead_idx = lead_strides(&idx_lead, &idx_strides);
        // The source's axes after `axis` are the output's last ones, contiguous in both: each
        // chosen row is one run of `inner` values.
        let inner: usize = v.lay.shape[axis + 1..].iter().product();
        let outer_dims = &odims[..odims.len() - (v.lay.shape.len() - axis - 1)];
        let n_axis = v.lay.shape[axis];
        let mut index_map = Vec::with_capacity(total);
        let mut mi = vec![0usize; outer_dims.len()];
        for _ in 0..total / inner.max(1) {
            // Split the output multi-index: lead, src-before-axis, index shape.
            let mut so = 0;
            let mut io = 0;
            for j in 0..nl {
                so += mi[j] * lead_src[j];
                io += mi[j] * lead_idx[j];
            }
            for k in 0..a_pre {
                so += mi[nl + k] * src_strides[sl + k];
            }
            for k in 0..a_idx {
                io += mi[nl + a_pre + k] * idx_strides[il + k];
            }
            let at = (ivals[io].round().max(0.0) as usize).min(n_axis.saturating_sub(1));
            so += at * src_strides[sl + axis];
            index_map.extend(so..so + inner);
            // Next multi-index.
            for d in (0..outer_dims.len()).rev() {
                mi[d] += 1;
                if mi[d] < outer_dims[d] {
                    break;
                }
                mi[d] = 0;
            }
        }
        Value::new(s.gather(&v.arr, &index_map, &odims), out)
    }

    fn stack(&mut self, s: &mut Session, items: &[NodeId], ty_shape: &[usize]) -> Value {
        let vals: Vec<Value> = items.iter().map(|i| self.eval(s, *i)).collect();
        stack(s, &vals, ty_shape)
    }

    fn apply_net(&mut self, s: &mut Session, net: usize, x: &Value, layer: Option<usize>) -> Value {
        let decl = &self.model.nets[net];
        let width_in = *x.lay.shape.last().expect("net inputs have a last axis");
        let rows = x.arr.len() / width_in;
        let h = net::forward(
            s,
            decl,
            &self.nets[net],
            &x.arr.reshaped(&[rows, width_in]),
            layer,
        );
        let width_out = h.shape()[1];
        let mut lay = x.lay.clone();
        *lay.shape.last_mut().expect("checked") = width_out;
        Value::new(h.reshaped(&lay.dims()), lay)
    }
}

/// Equal-shaped values (their leading layouts may differ) stacked along a new leading value
/// axis; `ty_shape` is the result's value shape.
fn stack(s: &mut Session, vals: &[Value], ty_shape: &[usize]) -> Value {
    let mut lead = Layout::scalar();
    for v in vals {
        lead = joint_layout(
            &lead,
            &Layout {
                shape: vec![],
                ..v.lay.clone()
            },
        );
    }
    let item_shape = ty_shape[1..].to_vec();
    let parts: Vec<Array> = vals
        .iter()
        .map(|v| {
            expand(
                s,
                v,
                &Layout {
                    shape: item_shape.clone(),
                    ..lead.clone()
                },
            )
            .arr
        })
        .collect();
    let out = Layout {
        shape: ty_shape.to_vec(),
        ..lead.clone()
    };
    let k = vals.len();
    let l = lead.lead_len();
    let w: usize = item_shape.iter().product();
    let cat = s.concat(&parts, &[k, l, w]);
    if l == 1 {
        return Value::new(cat.reshaped(&out.dims()), out);
    }
    let idx = permutation_index(&[k, l, w], &[1, 0, 2]);
    Value::new(s.gather(&cat, &idx, &out.dims()), out)
}

/// Running sums along the last axis: x @ U with U upper-triangular ones, one differentiable
/// matrix product.
pub fn cumsum(s: &mut Session, v: &Value) -> Value {
    let n = *v.lay.shape.last().expect("cumsum needs an axis");
    let mut u = vec![0.0; n * n];
    for i in 0..n {
        for j in i..n {
            u[i * n + j] = 1.0;
        }
    }
    let u = Value::new(s.array(&u, &[n, n]), Layout::of_shape(vec![n, n]));
    matmul(s, v, &u)
}

pub fn activate(s: &mut Session, act: Activation, z: &Array) -> Array {
    match act {
        Activation::Identity => z.clone(),
        Activation::Tanh => s.map(MapFn::Tanh, z),
        Activation::Relu => s.map(MapFn::Relu, z),
        Activation::Sigmoid => s.map(MapFn::Sigmoid, z),
        Activation::Softplus => s.map(MapFn::Softplus, z),
        Activation::LeakyRelu => {
            // max(x, 0.01 x)
            let small = s.scale(z, 0.01);
            s.zip(ZipFn::Max, z, &small)
        }
    }
}

/// Matrix products under layouts: a vector or matrix on the right, or a data matrix on the
/// left of a sample- or plate-varying vector.
pub fn matmul(s: &mut Session, a: &Value, b: &Value) -> Value {
    let (ka, kb) = (&a.lay.shape, &b.lay.shape);
    let b_global = b.lay.lead() == 0;
    let a_global = a.lay.lead() == 0;
    if b_global {
        // Rows of a against a fixed vector or matrix.
        let k = *ka.last().expect("rank >= 1");
        let rows = a.arr.len() / k;
        let bm = if kb.len() == 1 {
            b.arr.reshaped(&[k, 1])
        } else {
            b.arr.clone()
        };
        let n = bm.shape()[1];
        let r = s.matmul(&a.arr.reshaped(&[rows, k]), &bm);
        let mut lay = a.lay.clone();
        lay.shape.pop();
        if kb.len() == 2 {
            lay.shape.push(n);
        }
        return Value::new(r.reshaped(&lay.dims()), lay);
    }
    if a_global && kb.len() == 1 && ka.len() == 2 {
        // X @ w with w varying: (lead_b, k) @ Xᵀ → (lead_b, m).
        let (m, k) = (ka[0], ka[1]);
        let l = b.lay.lead_len();
        let r = s.matmul_t(&b.arr.reshaped(&[l, k]), &a.arr.reshaped(&[m, k]));
        let lay = Layout {
            shape: vec![m],
            ..b.lay.clone()
        };
        return Value::new(r.reshaped(&lay.dims()), lay);
    }
    if ka.len() == 1 && kb.len() == 1 {
        // dot products. When one side varies only over samples and the other only over
        // plates, one matrix product does them all.
        let k = ka[0];
        let (sa, sb) = (
            a.lay.samples.is_some() && a.lay.plates.is_empty(),
            b.lay.samples.is_some() && b.lay.plates.is_empty(),
        );
        let (pa, pb) = (
            a.lay.samples.is_none() && !a.lay.plates.is_empty(),
            b.lay.samples.is_none() && !b.lay.plates.is_empty(),
        );
        if (sa && pb) || (sb && pa) {
            let (smp, plt) = if sa { (a, b) } else { (b, a) };
            let ls = smp.lay.lead_len();
            let lp = plt.lay.lead_len();
            let r = s.matmul_t(&smp.arr.reshaped(&[ls, k]), &plt.arr.reshaped(&[lp, k]));
            let lay = Layout {
                samples: smp.lay.samples,
                plates: plt.lay.plates.clone(),
                shape: vec![],
            };
            return Value::new(r.reshaped(&lay.dims()), lay);
        }
        let prod = zip(s, ZipFn::Mul, a, b);
        return sum_shape(s, &prod);
    }
    // General case: align the leading axes and multiply batch by batch.
    let lead = joint_layout(
        &Layout {
            shape: vec![],
            ..a.lay.clone()
        },
        &Layout {
            shape: vec![],
            ..b.lay.clone()
        },
    );
    let a2 = expand(
        s,
        a,
        &Layout {
            shape: ka.clone(),
            ..lead.clone()
        },
    );
    let b2 = expand(
        s,
        b,
        &Layout {
            shape: kb.clone(),
            ..lead.clone()
        },
    );
    let l = lead.lead_len();
    let (m, k) = if ka.len() == 1 {
        (1, ka[0])
    } else {
        (ka[ka.len() - 2], ka[ka.len() - 1])
    };
    let n = if kb.len() == 1 { 1 } else { kb[1] };
    let r = s.matmul(&a2.arr.reshaped(&[l, m, k]), &b2.arr.reshaped(&[l, k, n]));
    let mut shape = ka[..ka.len() - 1].to_vec();
    if kb.len() == 2 {
        shape.push(n);
    }
    let lay = Layout { shape, ..lead };
    Value::new(r.reshaped(&lay.dims()), lay)
}

pub fn reduce(s: &mut Session, f: ReduceFn, v: &Value) -> Value {
    let n: usize = v.lay.shape.iter().product();
    match f {
        ReduceFn::Sum => sum_shape(s, v),
        ReduceFn::Mean => {
            let t = sum_shape(s, v);
            Value::new(s.scale(&t.arr, 1.0 / n.max(1) as f64), t.lay)
        }
        ReduceFn::LogSumExp => {
            let l = v.lay.lead_len();
            let r = s.logsumexp(&v.arr.reshaped(&[l, n]));
            let lay = Layout {
                shape: vec![],
                ..v.lay.clone()
            };
            Value::new(r.reshaped(&lay.dims()), lay)
        }
    }
}

fn strides(dims: &[usize]) -> Vec<usize> {
    let mut st = vec![1; dims.len()];
    for k in (0..dims.len().saturating_sub(1)).rev() {
        st[k] = st[k + 1] * dims[k + 1];
    }
    st
}

/// For `out` with axes `perm` of `dims` (out axis i is source axis perm[i]), the source flat
/// index of each output element.
fn permutation_index(dims: &[usize], perm: &[usize]) -> Vec<usize> {
    let st = strides(dims);
    let odims: Vec<usize> = perm.iter().map(|&p| dims[p]).collect();
    let total: usize = dims.iter().product();
    let mut out = Vec::with_capacity(total);
    let mut mi = vec![0usize; dims.len()];
    for _ in 0..total {
        out.push(mi.iter().zip(perm).map(|(i, &p)| i * st[p]).sum());
        for d in (0..odims.len()).rev() {
            mi[d] += 1;
            if mi[d] < odims[d] {
                break;
            }
            mi[d] = 0;
        }
    }
    out
}

/// The gather that keeps `rows` along axis `ax` of an array shaped `dims` (row-major): the
/// flat source index of every kept element, and the new shape.
pub fn rows_along(dims: &[usize], ax: usize, rows: &[usize]) -> (Vec<usize>, Vec<usize>) {
    let outer: usize = dims[..ax].iter().product();
    let n = dims[ax];
    let inner: usize = dims[ax + 1..].iter().product();
    let mut idx = Vec::with_capacity(outer * rows.len() * inner);
    for o in 0..outer {
        for &r in rows {
            let base = (o * n + r) * inner;
            idx.extend(base..base + inner);
        }
    }
    let mut nd = dims.to_vec();
    nd[ax] = rows.len();
    (idx, nd)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Precision;

    fn v(s: &Session, vals: &[f64], lay: Layout) -> Value {
        Value::new(s.array(vals, &lay.dims()), lay)
    }

    #[test]
    fn expand_inserts_missing_axes_anywhere() {
        let mut s = Session::new(Precision::F64);
        // [K=2] broadcast to samples 3 × plate 2 × [2]
        let a = v(&s, &[1.0, 2.0], Layout::of_shape(vec![2]));
        let to = Layout {
            samples: Some(3),
            plates: vec![(PlateId(0), 2)],
            shape: vec![2],
        };
        let e = expand(&mut s, &a, &to);
        assert_eq!(e.arr.shape(), &[3, 2, 2]);
        assert_eq!(
            s.values(&e.arr),
            vec![1.0, 2.0, 1.0, 2.0, 1.0, 2.0, 1.0, 2.0, 1.0, 2.0, 1.0, 2.0]
        );
        // a plate-varying scalar [2] broadcast over samples and a shape [3]
        let b = v(
            &s,
            &[5.0, 7.0],
            Layout {
                samples: None,
                plates: vec![(PlateId(0), 2)],
                shape: vec![],
            },
        );
        let to = Layout {
            samples: Some(2),
            plates: vec![(PlateId(0), 2)],
            shape: vec![3],
        };
        let e = expand(&mut s, &b, &to);
        assert_eq!(
            s.values(&e.arr),
            vec![5., 5., 5., 7., 7., 7., 5., 5., 5., 7., 7., 7.]
        );
    }

    #[test]
    fn numpy_ones_stretch() {
        let mut s = Session::new(Precision::F64);
        let a = v(&s, &[1.0, 2.0], Layout::of_shape(vec![2, 1]));
        let b = v(&s, &[10.0, 20.0, 30.0], Layout::of_shape(vec![3]));
        let c = zip(&mut s, ZipFn::Add, &a, &b);
        assert_eq!(c.lay.shape, vec![2, 3]);
        assert_eq!(s.values(&c.arr), vec![11., 21., 31., 12., 22., 32.]);
    }

    #[test]
    fn dot_of_sample_vectors_with_plate_rows_is_one_matmul() {
        let mut s = Session::new(Precision::F64);
        // X rows over a plate of 3, w over 2 samples, k = 2
        let x = v(
            &s,
            &[1., 0., 0., 1., 1., 1.],
            Layout {
                samples: None,
                plates: vec![(PlateId(0), 3)],
                shape: vec![2],
            },
        );
        let w = v(
            &s,
            &[1., 2., 3., 4.],
            Layout {
                samples: Some(2),
                plates: vec![],
                shape: vec![2],
            },
        );
        let r = matmul(&mut s, &x, &w);
        assert_eq!(r.lay.dims(), vec![2, 3]);
        assert_eq!(s.values(&r.arr), vec![1., 2., 3., 3., 4., 7.]);
    }

    #[test]
    fn permutations_index_correctly() {
        // [2, 3] transposed
        assert_eq!(permutation_index(&[2, 3], &[1, 0]), vec![0, 3, 1, 4, 2, 5]);
    }
}
