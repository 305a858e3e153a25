//! A compiled plan: a recorded pass ([`super::record`]) replayed on plain host buffers.
//!
//! The plan keeps the ops that change between steps (those that depend on a param or on
//! noise) in the order they ran, each with its output buffer allocated once; ops on constants
//! alone are computed once, when the plan is built, and ops no output needs are dropped. Each
//! step fills the params and the noise, runs the schedule forward, and (from a scalar output)
//! backward through per-op vector–Jacobian rules into gradient buffers kept for the nodes that
//! depend on a param; constants and noise get none. The arithmetic follows the session's dfdx
//! path formula for formula (the same stable forms of `log1p`, `softplus`, …, the same
//! derivatives at kinks and ties), so that a plan reproduces the eager pass to rounding.
//! Precision is the session's: f32 plans compute in f32.

use num_traits::{Float, FromPrimitive};

use super::record::{Kind, Leaf, Op, Recording};
use super::Precision;
use crate::graph::{MapFn, ZipFn};

/// A recorded pass, ready to run step after step.
pub struct Plan {
    exec: Exec,
    /// The params' identities ([`super::Param::id`]), in the plan's order.
    params: Vec<u64>,
    noise_lens: Vec<usize>,
}

enum Exec {
    F32(Machine<f32>),
    F64(Machine<f64>),
}

#[derive(Clone, Debug)]
struct Step {
    op: Op,
    ins: Vec<usize>,
    out: usize,
}

struct Machine<T> {
    vals: Vec<Vec<T>>,
    grads: Vec<Vec<T>>,
    needs_grad: Vec<bool>,
    schedule: Vec<Step>,
    /// The param leaves' nodes, in the plan's order.
    params: Vec<usize>,
    /// The noise leaves' nodes (None where no output needs that noise).
    noise: Vec<Option<usize>>,
    outputs: Vec<usize>,
}

macro_rules! on_exec {
    ($self:expr, |$m:ident| $body:expr) => {
        match &mut $self.exec {
            Exec::F32($m) => $body,
            Exec::F64($m) => $body,
        }
    };
}

impl Plan {
    /// The plan of `rec` computing its nodes `outputs`, in `precision`.
    pub fn new(rec: &Recording, outputs: &[usize], precision: Precision) -> Plan {
        let params: Vec<u64> = rec
            .nodes
            .iter()
            .filter_map(|n| match n.kind {
                Kind::Leaf(Leaf::Param(id)) => Some(id),
                _ => None,
            })
            .collect();
        let exec = match precision {
            Precision::F32 => Exec::F32(Machine::new(rec, outputs)),
            Precision::F64 => Exec::F64(Machine::new(rec, outputs)),
        };
        Plan {
            exec,
            params,
            noise_lens: rec.noise_lens(),
        }
    }

    /// The params the plan reads, by identity, in the order [`Plan::set_param`] and
    /// [`Plan::grad`] index them.
    pub fn params(&self) -> &[u64] {
        &self.params
    }

    /// The lengths of the noise arrays, in the order the pass draws them.
    pub fn noise_lens(&self) -> &[usize] {
        &self.noise_lens
    }

    /// How many ops run each step.
    pub fn len(&self) -> usize {
        match &self.exec {
            Exec::F32(m) => m.schedule.len(),
            Exec::F64(m) => m.schedule.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn set_param(&mut self, k: usize, values: &[f64]) {
        on_exec!(self, |m| {
            let node = m.params[k];
            fill(&mut m.vals[node], values)
        })
    }

    pub fn set_noise(&mut self, k: usize, values: &[f64]) {
        on_exec!(self, |m| {
            if let Some(node) = m.noise[k] {
                fill(&mut m.vals[node], values)
            }
        })
    }

    /// Run the schedule forward.
    pub fn forward(&mut self) {
        on_exec!(self, |m| m.forward())
    }

    /// The values of output `k` after [`Plan::forward`].
    pub fn output(&self, k: usize) -> Vec<f64> {
        match &self.exec {
            Exec::F32(m) => m.vals[m.outputs[k]].iter().map(|&v| f64::from(v)).collect(),
            Exec::F64(m) => m.vals[m.outputs[k]].clone(),
        }
    }

    /// Differentiate the scalar output `k` (after [`Plan::forward`]).
    pub fn backward(&mut self, k: usize) {
        on_exec!(self, |m| m.backward(k))
    }

    /// The gradient of the last backward pass with respect to the plan's `k`-th param.
    pub fn grad(&self, k: usize) -> Vec<f64> {
        match &self.exec {
            Exec::F32(m) => m.grads[m.params[k]].iter().map(|&v| f64::from(v)).collect(),
            Exec::F64(m) => m.grads[m.params[k]].clone(),
        }
    }
}

fn fill<T: FromPrimitive>(buf: &mut [T], values: &[f64]) {
    assert_eq!(buf.len(), values.len(), "values fill the buffer");
    for (b, &v) in buf.iter_mut().zip(values) {
        *b = num(v);
    }
}

fn num<T: FromPrimitive>(x: f64) -> T {
    T::from_f64(x).expect("every f64 converts to f32 or f64")
}

trait Real: Float + FromPrimitive + Default + std::fmt::Debug {}
impl Real for f32 {}
impl Real for f64 {}

impl<T: Real> Machine<T> {
    fn new(rec: &Recording, outputs: &[usize]) -> Machine<T> {
        let nodes = &rec.nodes;
        let n = nodes.len();
        // Only what an output needs.
        let mut live = vec![false; n];
        for &o in outputs {
            live[o] = true;
        }
        for i in (0..n).rev() {
            if let (true, Kind::Op(_, ins)) = (live[i], &nodes[i].kind) {
                for &j in ins {
                    live[j] = true;
                }
            }
        }
        let mut needs_grad = vec![false; n];
        for (i, node) in nodes.iter().enumerate() {
            needs_grad[i] = match &node.kind {
                Kind::Leaf(Leaf::Param(_)) => true,
                Kind::Leaf(_) => false,
                Kind::Op(_, ins) => ins.iter().any(|&j| needs_grad[j]),
            };
        }
        let mut m = Machine {
            vals: nodes
                .iter()
                .zip(&live)
                .map(|(node, &l)| if l { vec![T::zero(); node.len] } else { Vec::new() })
                .collect(),
            grads: nodes
                .iter()
                .zip(&live)
                .zip(&needs_grad)
                .map(|((node, &l), &g)| {
                    if l && g {
                        vec![T::zero(); node.len]
                    } else {
                        Vec::new()
                    }
                })
                .collect(),
            needs_grad,
            schedule: Vec::new(),
            params: Vec::new(),
            noise: vec![None; rec.noise.len()],
            outputs: outputs.to_vec(),
        };
        for (i, node) in nodes.iter().enumerate() {
            match &node.kind {
                Kind::Leaf(Leaf::Param(_)) => m.params.push(i),
                Kind::Leaf(Leaf::Noise(k)) if live[i] => m.noise[*k] = Some(i),
                Kind::Leaf(Leaf::Const(v)) if live[i] => fill(&mut m.vals[i], v),
                Kind::Op(op, ins) if live[i] => {
                    let step = Step {
                        op: *op,
                        ins: ins.clone(),
                        out: i,
                    };
                    if node.varying {
                        m.schedule.push(step);
                    } else {
                        // Constants alone: computed once, here.
                        m.run(&step);
                    }
                }
                _ => {}
            }
        }
        m
    }

    fn forward(&mut self) {
        for k in 0..self.schedule.len() {
            self.with_step(k, Self::run);
        }
    }

    /// Run `f` on step `k`, lent out of the schedule so that `f` may borrow the buffers.
    fn with_step(&mut self, k: usize, f: fn(&mut Self, &Step)) {
        let placeholder = Step {
            op: Op::Scale(1.0),
            ins: Vec::new(),
            out: 0,
        };
        let step = std::mem::replace(&mut self.schedule[k], placeholder);
        f(self, &step);
        self.schedule[k] = step;
    }

    /// One op forward into its output buffer.
    fn run(&mut self, step: &Step) {
        let mut out = std::mem::take(&mut self.vals[step.out]);
        let a = &self.vals[step.ins[0]];
        match step.op {
            Op::Map(f) => {
                for (o, &x) in out.iter_mut().zip(a) {
                    *o = map_f(f, x);
                }
            }
            Op::Zip(f) => {
                let b = &self.vals[step.ins[1]];
                match f {
                    ZipFn::Add => zip_into(&mut out, a, b, |x, y| x + y),
                    ZipFn::Sub => zip_into(&mut out, a, b, |x, y| x - y),
                    ZipFn::Mul => zip_into(&mut out, a, b, |x, y| x * y),
                    ZipFn::Div => zip_into(&mut out, a, b, |x, y| x / y),
                    ZipFn::Max => zip_into(&mut out, a, b, |x, y| x.max(y)),
                    ZipFn::Pow | ZipFn::Min => unreachable!("composed by the session"),
                }
            }
            Op::Scale(c) => {
                let c: T = num(c);
                for (o, &x) in out.iter_mut().zip(a) {
                    *o = x * c;
                }
            }
            Op::Shift(c) => {
                let c: T = num(c);
                for (o, &x) in out.iter_mut().zip(a) {
                    *o = x + c;
                }
            }
            Op::Clamp(lo, hi) => {
                let (lo, hi): (T, T) = (num(lo), num(hi));
                for (o, &x) in out.iter_mut().zip(a) {
                    *o = if x < lo {
                        lo
                    } else if x > hi {
                        hi
                    } else {
                        x
                    };
                }
            }
            Op::InsertAxis { before, n, after } => {
                for b in 0..before {
                    let src = &a[b * after..(b + 1) * after];
                    for j in 0..n {
                        let at = (b * n + j) * after;
                        out[at..at + after].copy_from_slice(src);
                    }
                }
            }
            Op::SumAxes { before, mid, after } => {
                for b in 0..before {
                    let o = &mut out[b * after..(b + 1) * after];
                    o.fill(T::zero());
                    for j in 0..mid {
                        let at = (b * mid + j) * after;
                        for (o, &x) in o.iter_mut().zip(&a[at..at + after]) {
                            *o = *o + x;
                        }
                    }
                }
            }
            Op::LogSumExp { rows, k } => {
                for r in 0..rows {
                    out[r] = logsumexp(&a[r * k..(r + 1) * k]);
                }
            }
            Op::Softmax { rows, k, log } => {
                for r in 0..rows {
                    let x = &a[r * k..(r + 1) * k];
                    let l = logsumexp(x);
                    for (o, &x) in out[r * k..(r + 1) * k].iter_mut().zip(x) {
                        *o = if log { x - l } else { (x - l).exp() };
                    }
                }
            }
        }
        self.vals[step.out] = out;
    }

    fn backward(&mut self, output: usize) {
        for (g, &needed) in self.grads.iter_mut().zip(&self.needs_grad) {
            if needed {
                g.fill(T::zero());
            }
        }
        let o = self.outputs[output];
        if !self.needs_grad[o] {
            return;
        }
        assert_eq!(self.grads[o].len(), 1, "backward needs a scalar");
        self.grads[o][0] = T::one();
        for k in (0..self.schedule.len()).rev() {
            if !self.needs_grad[self.schedule[k].out] {
                continue;
            }
            self.with_step(k, Self::vjp);
        }
    }

    /// Add the step's vector–Jacobian product into its inputs' gradients.
    fn vjp(&mut self, step: &Step) {
        let g = std::mem::take(&mut self.grads[step.out]);
        let i0 = step.ins[0];
        match step.op {
            Op::Map(f) => {
                let mut ga = std::mem::take(&mut self.grads[i0]);
                let (x, y) = (&self.vals[i0], &self.vals[step.out]);
                for (((ga, &g), &x), &y) in ga.iter_mut().zip(&g).zip(x).zip(y) {
                    *ga = *ga + g * map_df(f, x, y);
                }
                self.grads[i0] = ga;
            }
            Op::Zip(f) => {
                let i1 = step.ins[1];
                let (a, b) = (&self.vals[i0], &self.vals[i1]);
                let half: T = num(0.5);
                // d out/da and d out/db at one element.
                let d = |x: T, y: T| -> (T, T) {
                    match f {
                        ZipFn::Add => (T::one(), T::one()),
                        ZipFn::Sub => (T::one(), -T::one()),
                        ZipFn::Mul => (y, x),
                        ZipFn::Div => (T::one() / y, -x / (y * y)),
                        ZipFn::Max => {
                            if x > y {
                                (T::one(), T::zero())
                            } else if x < y {
                                (T::zero(), T::one())
                            } else {
                                (half, half)
                            }
                        }
                        ZipFn::Pow | ZipFn::Min => unreachable!("composed by the session"),
                    }
                };
                let (na, nb) = (self.needs_grad[i0], self.needs_grad[i1]);
                let mut ga = if na {
                    std::mem::take(&mut self.grads[i0])
                } else {
                    Vec::new()
                };
                let mut gb = if nb {
                    std::mem::take(&mut self.grads[i1])
                } else {
                    Vec::new()
                };
                for e in 0..g.len() {
                    let (da, db) = d(a[e], b[e]);
                    if na {
                        ga[e] = ga[e] + g[e] * da;
                    }
                    if nb {
                        gb[e] = gb[e] + g[e] * db;
                    }
                }
                if na {
                    self.grads[i0] = ga;
                }
                if nb {
                    self.grads[i1] = gb;
                }
            }
            Op::Scale(c) => {
                let c: T = num(c);
                for (ga, &g) in self.grads[i0].iter_mut().zip(&g) {
                    *ga = *ga + g * c;
                }
            }
            Op::Shift(_) => {
                for (ga, &g) in self.grads[i0].iter_mut().zip(&g) {
                    *ga = *ga + g;
                }
            }
            Op::Clamp(lo, hi) => {
                let (lo, hi): (T, T) = (num(lo), num(hi));
                let mut ga = std::mem::take(&mut self.grads[i0]);
                for ((ga, &g), &x) in ga.iter_mut().zip(&g).zip(&self.vals[i0]) {
                    if lo <= x && x <= hi {
                        *ga = *ga + g;
                    }
                }
                self.grads[i0] = ga;
            }
            Op::InsertAxis { before, n, after } => {
                let ga = &mut self.grads[i0];
                for b in 0..before {
                    for j in 0..n {
                        let at = (b * n + j) * after;
                        for (ga, &g) in ga[b * after..(b + 1) * after].iter_mut().zip(&g[at..at + after]) {
                            *ga = *ga + g;
                        }
                    }
                }
            }
            Op::SumAxes { before, mid, after } => {
                let ga = &mut self.grads[i0];
                for b in 0..before {
                    let src = &g[b * after..(b + 1) * after];
                    for j in 0..mid {
                        let at = (b * mid + j) * after;
                        for (ga, &g) in ga[at..at + after].iter_mut().zip(src) {
                            *ga = *ga + g;
                        }
                    }
                }
            }
            Op::LogSumExp { rows, k } => {
                let mut ga = std::mem::take(&mut self.grads[i0]);
                let (x, y) = (&self.vals[i0], &self.vals[step.out]);
                for r in 0..rows {
                    for j in r * k..(r + 1) * k {
                        ga[j] = ga[j] + g[r] * (x[j] - y[r]).exp();
                    }
                }
                self.grads[i0] = ga;
            }
            Op::Softmax { rows, k, log } => {
                let mut ga = std::mem::take(&mut self.grads[i0]);
                let y = &self.vals[step.out];
                for r in 0..rows {
                    let span = r * k..(r + 1) * k;
                    if log {
                        // g − softmax · Σ g
                        let total = g[span.clone()].iter().fold(T::zero(), |s, &v| s + v);
                        for j in span {
                            ga[j] = ga[j] + g[j] - y[j].exp() * total;
                        }
                    } else {
                        // y · (g − Σ g y)
                        let dot = span.clone().fold(T::zero(), |s, j| s + g[j] * y[j]);
                        for j in span {
                            ga[j] = ga[j] + y[j] * (g[j] - dot);
                        }
                    }
                }
                self.grads[i0] = ga;
            }
        }
        self.grads[step.out] = g;
    }
}

fn zip_into<T: Copy>(out: &mut [T], a: &[T], b: &[T], f: impl Fn(T, T) -> T) {
    for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
        *o = f(x, y);
    }
}

fn logsumexp<T: Real>(x: &[T]) -> T {
    let m = x.iter().fold(T::neg_infinity(), |m, &v| m.max(v));
    let m = if m.is_finite() { m } else { T::zero() };
    let s = x.iter().fold(T::zero(), |s, &v| s + (v - m).exp());
    s.ln() + m
}

/// The largest finite f32, where the session's stable forms clamp.
fn f32_max<T: Real>() -> T {
    num(f64::from(f32::MAX))
}

/// `f(x)`, as the session computes it.
fn map_f<T: Real>(f: MapFn, x: T) -> T {
    let one = T::one();
    match f {
        MapFn::Neg => -x,
        MapFn::Exp => x.exp(),
        MapFn::Log => x.ln(),
        MapFn::Log1p => {
            let u = x + one;
            let finite = x.max(-f32_max::<T>()).min(f32_max());
            let uc = finite + one;
            let err = (uc - one) - finite;
            u.ln() - err / uc.max(num(1e-30)).min(f32_max())
        }
        MapFn::Log1m => {
            let u = -x + one;
            let finite = x.max(-f32_max::<T>()).min(f32_max());
            let uc = -finite + one;
            let err = (uc - one) + finite;
            u.ln() - err / uc.max(num(1e-30)).min(f32_max())
        }
        MapFn::Expm1 => x.exp() - one,
        MapFn::Sqrt => x.sqrt(),
        MapFn::Square => x * x,
        MapFn::Abs => x.abs(),
        MapFn::Sigmoid => one / (one + (-x).exp()),
        MapFn::Tanh => x.tanh(),
        MapFn::Relu => x.max(T::zero()),
        MapFn::Softplus => {
            let (_, rounded, series, r) = softplus_parts(x);
            rounded.max(series) + r
        }
        MapFn::Logit => -(-x + one).ln() + x.ln(),
        MapFn::LGamma | MapFn::Digamma => unreachable!("composed by the session"),
    }
}

/// softplus(x) = r + max(ln(1 + y), y − y²/2) with r = relu(x), y = exp(x − 2r): (y, the two
/// candidates, r).
fn softplus_parts<T: Real>(x: T) -> (T, T, T, T) {
    let r = x.max(T::zero());
    let y = ((x - r) - r).exp();
    let series = y * y * num(-0.5) + y;
    let rounded = (y + T::one()).ln();
    (y, rounded, series, r)
}

/// `f'(x)`, given `y = f(x)`: the derivative the session's dfdx composition gives.
fn map_df<T: Real>(f: MapFn, x: T, y: T) -> T {
    let one = T::one();
    let zero = T::zero();
    match f {
        MapFn::Neg => -one,
        MapFn::Exp => y,
        MapFn::Log => one / x,
        MapFn::Log1p => one / (x + one),
        MapFn::Log1m => -(one / (-x + one)),
        MapFn::Expm1 => x.exp(),
        MapFn::Sqrt => one / (y + y),
        MapFn::Square => x + x,
        MapFn::Abs => {
            if x == zero {
                zero
            } else {
                x.signum()
            }
        }
        MapFn::Sigmoid => y * (one - y),
        MapFn::Tanh => one - y * y,
        MapFn::Relu => {
            if x > zero {
                one
            } else {
                zero
            }
        }
        MapFn::Softplus => {
            let (ye, rounded, series, _) = softplus_parts(x);
            let half: T = num(0.5);
            let (wr, ws) = if rounded > series {
                (one, zero)
            } else if rounded < series {
                (zero, one)
            } else {
                (half, half)
            };
            let dy = wr / (ye + one) + ws * (one - ye);
            let dr = if x > zero { one } else { zero };
            dy * ye * (one - dr - dr) + dr
        }
        MapFn::Logit => one / (-x + one) + one / x,
        MapFn::LGamma | MapFn::Digamma => unreachable!("composed by the session"),
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Array, Session};
    use super::*;

    type Build = dyn Fn(&mut Session, &[Array]) -> Array;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol * a.abs().max(b.abs()).max(1e-12) || (a.is_nan() && b.is_nan())
    }

    /// `build` on params holding `inputs`, recorded and eager: the plan's value and gradient
    /// (of Σ w·out for fixed weights w) against dfdx's to 1e-10 relative, and the plan's
    /// gradient against central finite differences of its own forward pass.
    fn check(name: &str, inputs: &[Vec<f64>], build: &Build) {
        let mut s = Session::new(Precision::F64);
        let params: Vec<_> = inputs.iter().map(|v| s.param(v, &[v.len()])).collect();
        s.begin();
        s.start_recording();
        let leaves: Vec<Array> = params.iter().map(|p| s.leaf(p)).collect();
        let out = build(&mut s, &leaves);
        let w: Vec<f64> = (0..out.len()).map(|k| 0.5 + 0.37 * k as f64).collect();
        let w = s.array(&w, out.shape());
        let weighted = s.zip(ZipFn::Mul, &out, &w);
        let loss = s.sum(&weighted);
        let (rec, outs) = s.finish_recording(&[&loss, &out]).expect("recordable");
        let eager_out = s.values(&out);
        let mut g = s.backward(&loss);
        let eager_grads: Vec<Vec<f64>> = params.iter().map(|p| s.grad(&mut g, p)).collect();

        let mut plan = Plan::new(&rec, &outs, Precision::F64);
        let ids: Vec<u64> = params.iter().map(|p| p.id()).collect();
        let slot = |k: usize| plan.params().iter().position(|&id| id == ids[k]);
        let slots: Vec<Option<usize>> = (0..params.len()).map(slot).collect();
        for (k, v) in inputs.iter().enumerate() {
            if let Some(j) = slots[k] {
                plan.set_param(j, v);
            }
        }
        plan.forward();
        let planned = plan.output(1);
        for (a, b) in planned.iter().zip(&eager_out) {
            assert!(close(*a, *b, 1e-10), "{name}: plan {a} vs dfdx {b}");
        }
        plan.backward(0);
        for (k, eager) in eager_grads.iter().enumerate() {
            let Some(j) = slots[k] else {
                assert!(
                    eager.iter().all(|g| *g == 0.0),
                    "{name}: an unused param has a gradient"
                );
                continue;
            };
            let grad = plan.grad(j);
            for (a, b) in grad.iter().zip(eager) {
                assert!(close(*a, *b, 1e-10), "{name}: plan gradient {a} vs dfdx {b}");
            }
            // Finite differences of the plan itself.
            let h = 1e-6;
            for e in 0..inputs[k].len() {
                let mut at = |d: f64| {
                    let mut v = inputs[k].clone();
                    v[e] += d;
                    plan.set_param(j, &v);
                    plan.forward();
                    plan.output(0)[0]
                };
                let fd = (at(h) - at(-h)) / (2.0 * h);
                plan.set_param(j, &inputs[k]);
                assert!(
                    (fd - grad[e]).abs() <= 1e-5 * grad[e].abs().max(1.0),
                    "{name}: gradient {} vs finite difference {fd}",
                    grad[e]
                );
            }
        }
    }

    const MIXED: [f64; 6] = [-1.3, -0.2, 0.4, 1.7, 3.1, -2.6];
    const POSITIVE: [f64; 6] = [0.3, 0.7, 1.9, 2.5, 0.05, 1.2];
    const UNIT: [f64; 6] = [0.3, 0.7, 0.05, 0.9, 0.5, 0.12];

    #[test]
    fn every_map_matches_dfdx_and_finite_differences() {
        let cases = [
            (MapFn::Neg, MIXED),
            (MapFn::Exp, MIXED),
            (MapFn::Log, POSITIVE),
            (MapFn::Log1p, POSITIVE),
            (MapFn::Log1p, [1e-12, -0.5, 0.3, 5.0, 1e-5, -1e-9]),
            (MapFn::Expm1, MIXED),
            (MapFn::Sqrt, POSITIVE),
            (MapFn::Square, MIXED),
            (MapFn::Abs, MIXED),
            (MapFn::Sigmoid, MIXED),
            (MapFn::Tanh, MIXED),
            (MapFn::Relu, MIXED),
            (MapFn::Softplus, MIXED),
            (MapFn::Softplus, [-40.0, -20.0, 30.0, 0.0, 1e-3, -1e-3]),
            (MapFn::Logit, UNIT),
            (MapFn::Log1m, UNIT),
            (MapFn::LGamma, POSITIVE),
            (MapFn::Digamma, POSITIVE),
        ];
        for (f, x) in cases {
            check(f.name(), &[x.to_vec()], &move |s, a| s.map(f, &a[0]));
        }
    }

    #[test]
    fn every_zip_matches_dfdx_and_finite_differences() {
        let b = [0.9, -1.1, 2.2, 0.35, -0.6, 1.4];
        for f in [
            ZipFn::Add,
            ZipFn::Sub,
            ZipFn::Mul,
            ZipFn::Div,
            ZipFn::Max,
            ZipFn::Min,
        ] {
            check(f.symbol(), &[MIXED.to_vec(), b.to_vec()], &move |s, a| {
                s.zip(f, &a[0], &a[1])
            });
        }
        check("pow", &[POSITIVE.to_vec(), b.to_vec()], &|s, a| {
            s.zip(ZipFn::Pow, &a[0], &a[1])
        });
        // One operand a constant: no gradient flows to it, the other's is right.
        check("mul by data", &[MIXED.to_vec()], &|s, a| {
            let c = s.array(&[1.0, 2.0, 3.0, -1.0, 0.5, 0.25], &[6]);
            s.zip(ZipFn::Mul, &c, &a[0])
        });
        // Both operands one tensor.
        check("square by mul", &[MIXED.to_vec()], &|s, a| {
            s.zip(ZipFn::Mul, &a[0], &a[0])
        });
    }

    #[test]
    fn scalar_ops_match_dfdx_and_finite_differences() {
        check("scale", &[MIXED.to_vec()], &|s, a| s.scale(&a[0], -2.5));
        check("shift", &[MIXED.to_vec()], &|s, a| s.shift(&a[0], 0.75));
        check("clamp", &[MIXED.to_vec()], &|s, a| s.clamp(&a[0], -1.0, 2.0));
        check("powi 3", &[MIXED.to_vec()], &|s, a| s.powi(&a[0], 3));
        check("powi -2", &[MIXED.to_vec()], &|s, a| s.powi(&a[0], -2));
        check("powi 0", &[MIXED.to_vec()], &|s, a| s.powi(&a[0], 0));
    }

    #[test]
    fn shape_ops_and_reductions_match_dfdx_and_finite_differences() {
        let x: Vec<f64> = (0..24).map(|k| ((k * 7) % 11) as f64 * 0.3 - 1.4).collect();
        check("insert_axis", &[MIXED.to_vec()], &|s, a| {
            let m = a[0].reshaped(&[2, 3]);
            s.insert_axis(&m, 1, 4)
        });
        check("insert_axis front", &[MIXED.to_vec()], &|s, a| {
            s.insert_axis(&a[0], 0, 3)
        });
        check("insert_axis back", &[MIXED.to_vec()], &|s, a| {
            let m = a[0].reshaped(&[6, 1]);
            s.insert_axis(&m, 2, 2)
        });
        check("sum_axes middle", std::slice::from_ref(&x), &|s, a| {
            let m = a[0].reshaped(&[2, 3, 4]);
            s.sum_axes(&m, 1, 2)
        });
        check("sum_axes leading", std::slice::from_ref(&x), &|s, a| {
            let m = a[0].reshaped(&[2, 3, 4]);
            s.sum_axes(&m, 0, 2)
        });
        check("sum", std::slice::from_ref(&x), &|s, a| s.sum(&a[0]));
        check("logsumexp", std::slice::from_ref(&x), &|s, a| {
            let m = a[0].reshaped(&[4, 6]);
            s.logsumexp(&m)
        });
        check("softmax", std::slice::from_ref(&x), &|s, a| {
            let m = a[0].reshaped(&[4, 6]);
            s.softmax(&m, false)
        });
        check("log_softmax", std::slice::from_ref(&x), &|s, a| {
            let m = a[0].reshaped(&[3, 8]);
            s.softmax(&m, true)
        });
        // A chain over params and a constant, with a broadcast and a reduction.
        check("chain", &[MIXED.to_vec(), POSITIVE.to_vec()], &|s, a| {
            let sd = s.map(MapFn::Softplus, &a[1]);
            let c = s.array(&[0.1, -0.2, 0.3, 0.0, 1.0, 2.0], &[6]);
            let z = s.zip(ZipFn::Mul, &sd, &c);
            let z = s.zip(ZipFn::Add, &a[0], &z);
            let z = s.insert_axis(&z, 0, 3);
            let l = s.map(MapFn::Log, &sd);
            let l = s.insert_axis(&l, 0, 3);
            let t = s.zip(ZipFn::Sub, &z, &l);
            let t = s.map(MapFn::Square, &t);
            s.sum_axes(&t, 1, 2)
        });
    }

    #[test]
    fn a_recording_classifies_its_leaves_and_refuses_what_it_cannot_replay() {
        let mut s = Session::new(Precision::F64);
        let p = s.param(&[0.5, 1.5], &[2]);
        s.start_recording();
        let x = s.leaf(&p);
        let eps = s.noise(&[0.1, -0.2], &[2]);
        let data = s.array(&[3.0, 4.0], &[2]);
        let y = s.zip(ZipFn::Mul, &x, &eps);
        let y = s.zip(ZipFn::Add, &y, &data);
        let d2 = s.map(MapFn::Exp, &data);
        // Host reads of data are fine.
        assert_eq!(s.values(&d2).len(), 2);
        let t = s.sum(&y);
        let (rec, outs) = s.finish_recording(&[&t]).expect("replayable");
        assert_eq!(rec.noise_lens(), vec![2]);
        let mut plan = Plan::new(&rec, &outs, Precision::F64);
        assert_eq!(plan.params(), &[p.id()]);
        // The constant exp is folded away; mul, add and sum run each step.
        assert_eq!(plan.len(), 3);
        plan.set_param(0, &[1.0, 2.0]);
        plan.set_noise(0, &[1.0, 1.0]);
        plan.forward();
        assert_eq!(plan.output(0), vec![10.0]);

        s.start_recording();
        let x = s.leaf(&p);
        let e = s.map(MapFn::Exp, &x);
        let _ = s.values(&e);
        let why = s
            .finish_recording(&[&e])
            .expect_err("a host read of a param's value");
        assert!(why.contains("back to the host"), "{why}");

        s.start_recording();
        let x = s.leaf(&p);
        let g = s.gather(&x, &[1, 0], &[2]);
        let why = s
            .finish_recording(&[&g])
            .expect_err("gathers are not covered yet");
        assert!(why.contains("gather"), "{why}");
    }

    #[test]
    fn an_f32_plan_matches_the_f32_session() {
        let mut s = Session::new(Precision::F32);
        let p = s.param(&MIXED, &[6]);
        s.begin();
        s.start_recording();
        let x = s.leaf(&p);
        let y = s.map(MapFn::Softplus, &x);
        let y = s.map(MapFn::Log, &y);
        let z = s.insert_axis(&y, 0, 2);
        let t = s.sum(&z);
        let (rec, outs) = s.finish_recording(&[&t]).expect("replayable");
        let eager = s.value(&t);
        let mut g = s.backward(&t);
        let eager_grad = s.grad(&mut g, &p);
        let mut plan = Plan::new(&rec, &outs, Precision::F32);
        plan.set_param(0, &MIXED);
        plan.forward();
        assert!(close(plan.output(0)[0], eager, 1e-6));
        plan.backward(0);
        for (a, b) in plan.grad(0).iter().zip(&eager_grad) {
            assert!(close(*a, *b, 1e-6), "{a} vs {b}");
        }
    }
}
