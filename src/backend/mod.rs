//! The tensor backend: the one module that names `dfdx` types.
//!
//! Engines do arithmetic on [`Array`]s through a [`Session`], which records every operation on
//! one gradient tape, so that [`Session::backward`] can differentiate any scalar with respect to
//! the [`Param`]s used. An array is a flat `dfdx` tensor plus its logical shape; the few ops that
//! need rank (reductions, broadcasts, matrix products, softmax) view it as a rank-2 or rank-3
//! tensor for the duration of the op. This keeps dfdx's type-level ranks inside a handful of
//! functions here, while models choose their ranks at run time.
//!
//! Precision (f32 or f64) is chosen per session at run time; every op dispatches on it. Shapes
//! are the caller's promise: the checker has proven them, and the graph evaluator
//! ([`eval`]) aligns layouts before calling in, because dfdx panics on mismatches.

pub mod kernels;
mod plan;
mod record;
mod special;

pub use plan::Plan;
use record::Op;
pub use record::Recording;

use dfdx::prelude::*;

use crate::graph::{MapFn, ZipFn};

/// Floating-point precision of a session's arrays.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Precision {
    F32,
    F64,
}

/// The device arrays live on: the CPU, or the first NVIDIA GPU in builds with `--features cuda`.
#[cfg(not(feature = "cuda"))]
type Dev = Cpu;
#[cfg(feature = "cuda")]
type Dev = dfdx::tensor::Cuda;

/// Where this build computes, in words.
pub const DEVICE: &str = if cfg!(feature = "cuda") { "cuda" } else { "cpu" };

/// Whether this build's device can be used here (a CUDA build needs a GPU and its driver).
pub fn device_available() -> Result<(), String> {
    #[cfg(feature = "cuda")]
    {
        // cudarc 0.9 unwraps `cuInit` inside `try_build`: without a device it panics rather
        // than returning the error, so the panic is caught here and said as one.
        let hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let built = std::panic::catch_unwind(|| dfdx::tensor::Cuda::try_build(0, 0));
        std::panic::set_hook(hook);
        match built {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(format!("no usable CUDA device: {e:?}")),
            Err(panic) => {
                let why = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                Err(format!("no usable CUDA device: {why}"))
            }
        }
    }
    #[cfg(not(feature = "cuda"))]
    {
        Ok(())
    }
}

fn new_device() -> Dev {
    #[cfg(feature = "cuda")]
    {
        dfdx::tensor::Cuda::try_build(0, 0).expect("a CUDA device (checked by device_available)")
    }
    #[cfg(not(feature = "cuda"))]
    {
        Cpu::default()
    }
}

type Flat<E> = Tensor<(usize,), E, Dev>;
type Traced<S, E> = Tensor<S, E, Dev, OwnedTape<E, Dev>>;

#[derive(Clone, Debug)]
enum Data {
    F32(Flat<f32>),
    F64(Flat<f64>),
}

enum TapeBox {
    F32(OwnedTape<f32, Dev>),
    F64(OwnedTape<f64, Dev>),
}

/// A value: a flat tensor in row-major order and its logical shape.
#[derive(Clone, Debug)]
pub struct Array {
    data: Data,
    shape: Vec<usize>,
    /// Identifies the underlying tensor: copies of an array share it, every op makes a new one.
    key: u64,
    /// Whether gradients flow through it: params, and what ops compute from them while a tape
    /// records. Ops on untraced arrays alone (data, constants, noise) are not recorded, so the
    /// backward pass never allocates or fills gradients for them.
    traced: bool,
}

fn fresh_key() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

impl Array {
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The same data under another shape with as many elements (free: no copy).
    pub fn reshaped(&self, shape: &[usize]) -> Array {
        assert_eq!(
            shape.iter().product::<usize>(),
            self.len(),
            "reshape keeps the element count"
        );
        Array {
            data: self.data.clone(),
            shape: shape.to_vec(),
            key: self.key,
            traced: self.traced,
        }
    }

    fn same_tensor(&self, other: &Array) -> bool {
        self.key == other.key
    }
}

/// A learnable tensor that persists across steps: its gradient is read after each backward
/// pass and its values are updated in place by an optimiser.
#[derive(Clone, Debug)]
pub struct Param {
    array: Array,
}

impl Param {
    pub fn shape(&self) -> &[usize] {
        self.array.shape()
    }

    pub fn len(&self) -> usize {
        self.array.len()
    }

    pub fn is_empty(&self) -> bool {
        self.array.is_empty()
    }
}

/// Gradients from one backward pass.
pub enum Grads {
    F32(Gradients<f32, Dev>),
    F64(Gradients<f64, Dev>),
}

/// A scope of computation: the device, the precision and the gradient tape.
pub struct Session {
    dev: Dev,
    precision: Precision,
    tape: Option<TapeBox>,
    /// The recording under way, if any (see [`record`]).
    rec: std::cell::RefCell<Option<Recording>>,
}

/// A tensor holding `values`, allocated through the device's buffer cache. dfdx's
/// `tensor(Vec)` adopts the Vec and hands it to the cache when dropped, but never takes one from
/// it: tensors made that way every sweep grew the cache without bound (LDA's CAVI: 0.4 MB a
/// sweep, from its gather indices).
fn upload<E: Unit>(dev: &Dev, values: &[E]) -> Tensor<(usize,), E, Dev>
where
    Dev: ZerosTensor<E> + CopySlice<E>,
{
    let mut t = dev.zeros_like(&(values.len(),));
    t.copy_from(values);
    t
}

fn num<E: num_traits::FromPrimitive>(x: f64) -> E {
    E::from_f64(x).expect("every f64 converts to f32 or f64")
}

/// Run `$body` with `$t` bound to the flat tensor of `$a` (traced with the session's tape),
/// whichever the precision, and wrap the result back into an [`Array`] of shape `$shape`.
macro_rules! traced1 {
    ($self:ident, $a:expr, $shape:expr, |$t:ident| $body:expr) => {{
        let shape: Vec<usize> = $shape;
        let tape = if $a.traced { $self.tape.take() } else { None };
        let traced = tape.is_some();
        let data = match (&$a.data, tape) {
            (Data::F32(x), Some(TapeBox::F32(tape))) => {
                #[allow(dead_code)]
                type E = f32;
                let $t: Traced<(usize,), f32> = x.clone().put_tape(tape);
                let out: Traced<(usize,), f32> = $body;
                let (out, tape) = out.split_tape();
                $self.tape = Some(TapeBox::F32(tape));
                Data::F32(out)
            }
            (Data::F64(x), Some(TapeBox::F64(tape))) => {
                #[allow(dead_code)]
                type E = f64;
                let $t: Traced<(usize,), f64> = x.clone().put_tape(tape);
                let out: Traced<(usize,), f64> = $body;
                let (out, tape) = out.split_tape();
                $self.tape = Some(TapeBox::F64(tape));
                Data::F64(out)
            }
            (Data::F32(x), None) => {
                #[allow(dead_code)]
                type E = f32;
                let $t: Flat<f32> = x.clone();
                let out: Flat<f32> = $body;
                Data::F32(out)
            }
            (Data::F64(x), None) => {
                #[allow(dead_code)]
                type E = f64;
                let $t: Flat<f64> = x.clone();
                let out: Flat<f64> = $body;
                Data::F64(out)
            }
            _ => unreachable!("a session's arrays and tape share its precision"),
        };
        Array {
            data,
            shape,
            key: fresh_key(),
            traced,
        }
    }};
}

/// As [`traced1`] with a second operand `$u` (untraced; gradients still reach it by id).
macro_rules! traced2 {
    ($self:ident, $a:expr, $b:expr, $shape:expr, |$t:ident, $u:ident| $body:expr) => {{
        let shape: Vec<usize> = $shape;
        let tape = if $a.traced || $b.traced {
            $self.tape.take()
        } else {
            None
        };
        let traced = tape.is_some();
        let data = match (&$a.data, &$b.data, tape) {
            (Data::F32(x), Data::F32(y), Some(TapeBox::F32(tape))) => {
                #[allow(dead_code)]
                type E = f32;
                let $t: Traced<(usize,), f32> = x.clone().put_tape(tape);
                let $u: Flat<f32> = y.clone();
                let out: Traced<(usize,), f32> = $body;
                let (out, tape) = out.split_tape();
                $self.tape = Some(TapeBox::F32(tape));
                Data::F32(out)
            }
            (Data::F64(x), Data::F64(y), Some(TapeBox::F64(tape))) => {
                #[allow(dead_code)]
                type E = f64;
                let $t: Traced<(usize,), f64> = x.clone().put_tape(tape);
                let $u: Flat<f64> = y.clone();
                let out: Traced<(usize,), f64> = $body;
                let (out, tape) = out.split_tape();
                $self.tape = Some(TapeBox::F64(tape));
                Data::F64(out)
            }
            (Data::F32(x), Data::F32(y), None) => {
                #[allow(dead_code)]
                type E = f32;
                let $t: Flat<f32> = x.clone();
                let $u: Flat<f32> = y.clone();
                let out: Flat<f32> = $body;
                Data::F32(out)
            }
            (Data::F64(x), Data::F64(y), None) => {
                #[allow(dead_code)]
                type E = f64;
                let $t: Flat<f64> = x.clone();
                let $u: Flat<f64> = y.clone();
                let out: Flat<f64> = $body;
                Data::F64(out)
            }
            _ => unreachable!("a session's arrays and tape share its precision"),
        };
        Array {
            data,
            shape,
            key: fresh_key(),
            traced,
        }
    }};
}

impl Session {
    pub fn new(precision: Precision) -> Session {
        let dev = new_device();
        // Reuse freed buffers: every step allocates the same shapes again.
        dev.enable_cache();
        let mut s = Session {
            dev,
            precision,
            tape: None,
            rec: std::cell::RefCell::new(None),
        };
        s.begin();
        s
    }

    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// Stop recording: later ops compute values only (no gradients, nothing kept alive).
    pub fn no_grad(&mut self) {
        self.tape = None;
    }

    /// Start recording afresh (drops whatever was recorded).
    pub fn begin(&mut self) {
        self.tape = Some(match self.precision {
            Precision::F32 => TapeBox::F32(OwnedTape::default()),
            Precision::F64 => TapeBox::F64(OwnedTape::default()),
        });
    }

    // ---------------------------------------------------------------- creating arrays

    /// An untraced array from values (data, constants, noise).
    pub fn array(&self, values: &[f64], shape: &[usize]) -> Array {
        assert_eq!(
            values.len(),
            shape.iter().product::<usize>(),
            "values fill the shape"
        );
        let data = match self.precision {
            Precision::F32 => Data::F32(upload(
                &self.dev,
                &values.iter().map(|&v| v as f32).collect::<Vec<_>>(),
            )),
            Precision::F64 => Data::F64(upload(&self.dev, values)),
        };
        Array {
            data,
            shape: shape.to_vec(),
            key: fresh_key(),
            traced: false,
        }
    }

    pub fn scalar(&self, v: f64) -> Array {
        self.array(&[v], &[])
    }

    pub fn full(&self, v: f64, shape: &[usize]) -> Array {
        self.array(&vec![v; shape.iter().product()], shape)
    }

    /// The values of an array, as f64.
    pub fn values(&self, a: &Array) -> Vec<f64> {
        self.note_read(a);
        self.host_values(a)
    }

    /// The values of an array, as f64, unnoticed by a recording.
    fn host_values(&self, a: &Array) -> Vec<f64> {
        match &a.data {
            Data::F32(t) => t.as_vec().into_iter().map(f64::from).collect(),
            Data::F64(t) => t.as_vec(),
        }
    }

    /// The value of a one-element array.
    pub fn value(&self, a: &Array) -> f64 {
        self.values(a)[0]
    }

    /// Rows of a matrix `[m, w]` added into `n` rows by index: `out[rows[r]] += a[r]`, shaped
    /// `[n, w]`. Untraced (no gradient flows back through it): it serves closed-form updates,
    /// where a one-hot matrix product would cost `n × m` where this costs `m × w`.
    pub fn scatter_add_rows(&self, a: &Array, rows: &[usize], n: usize) -> Array {
        let m = rows.len();
        let w = a.len() / m.max(1);
        assert_eq!(a.len(), m * w, "one row per index");
        let vals = self.values(a);
        let mut out = vec![0.0; n * w];
        for (r, &i) in rows.iter().enumerate() {
            for (o, x) in out[i * w..(i + 1) * w].iter_mut().zip(&vals[r * w..(r + 1) * w]) {
                *o += x;
            }
        }
        self.array(&out, &[n, w])
    }

    // ---------------------------------------------------------------- params and gradients

    pub fn param(&self, values: &[f64], shape: &[usize]) -> Param {
        Param {
            array: Array {
                traced: true,
                ..self.array(values, shape)
            },
        }
    }

    /// A param's current value as an array whose gradient [`Session::grad`] reads.
    pub fn leaf(&self, p: &Param) -> Array {
        self.note_param(p);
        p.array.clone()
    }

    pub fn param_values(&self, p: &Param) -> Vec<f64> {
        self.values(&p.array)
    }

    /// Overwrite a param's values in place (its identity, and so its gradients, stay).
    pub fn set_param(&self, p: &mut Param, values: &[f64]) {
        assert_eq!(values.len(), p.len());
        match &mut p.array.data {
            Data::F32(t) => t.copy_from(&values.iter().map(|&v| v as f32).collect::<Vec<_>>()),
            Data::F64(t) => t.copy_from(values),
        }
    }

    /// Differentiate the scalar `loss` with respect to everything recorded since
    /// [`Session::begin`]; starts a fresh tape.
    pub fn backward(&mut self, loss: &Array) -> Grads {
        assert_eq!(loss.len(), 1, "backward needs a scalar");
        let tape = self.tape.take();
        let grads = match (&loss.data, tape) {
            (Data::F32(t), Some(TapeBox::F32(tape))) => {
                let s: Traced<(), f32> = t.clone().put_tape(tape).reshape_like(&());
                Grads::F32(s.backward())
            }
            (Data::F64(t), Some(TapeBox::F64(tape))) => {
                let s: Traced<(), f64> = t.clone().put_tape(tape).reshape_like(&());
                Grads::F64(s.backward())
            }
            _ => unreachable!("a session's arrays and tape share its precision"),
        };
        self.begin();
        grads
    }

    /// The gradient of the last backward pass with respect to a param (zeros if it did not
    /// take part).
    pub fn grad(&self, grads: &mut Grads, p: &Param) -> Vec<f64> {
        // dfdx's element iterator indexes an empty tensor's buffer (a full-rank guide over one
        // value has an empty off-diagonal).
        if p.is_empty() {
            return Vec::new();
        }
        match (grads, &p.array.data) {
            (Grads::F32(g), Data::F32(t)) => {
                g.try_alloc_for(t).expect("allocating a gradient");
                g.get(t).as_vec().into_iter().map(f64::from).collect()
            }
            (Grads::F64(g), Data::F64(t)) => {
                g.try_alloc_for(t).expect("allocating a gradient");
                g.get(t).as_vec()
            }
            _ => unreachable!("a session's arrays and gradients share its precision"),
        }
    }

    // ---------------------------------------------------------------- elementwise

    pub fn map(&mut self, f: MapFn, a: &Array) -> Array {
        let shape = a.shape.clone();
        match f {
            MapFn::LGamma => return self.lgamma(a),
            MapFn::Digamma => return self.digamma(a),
            _ => {}
        }
        let out = traced1!(self, a, shape, |t| match f {
            MapFn::Neg => -t,
            MapFn::Exp => t.exp(),
            MapFn::Log => t.ln(),
            MapFn::Log1p => {
                // ln(u) - ((u - 1) - x) / u with u = fl(1 + x): the second term is the rounding
                // error of 1 + x, so small x keep their precision (ln(1 + 1e-10) would be 0 in
                // f32); its gradient is 1/u up to that error. The correction is computed on x
                // clamped to finite values (∞ - ∞ would make it NaN) and u kept off 0.
                let (t, tape) = t.split_tape();
                let u = t.clone().put_tape(tape) + num::<E>(1.0);
                let (u, tape) = u.split_tape();
                let finite = t.clamp(-f64::from(f32::MAX), f64::from(f32::MAX));
                let uc = finite.clone() + num::<E>(1.0);
                let err = (uc.clone() - num::<E>(1.0)) - finite;
                u.put_tape(tape).ln() - err / uc.clamp(1e-30, f64::from(f32::MAX))
            }
            MapFn::Expm1 => t.exp() - num::<E>(1.0),
            MapFn::Sqrt => t.sqrt(),
            MapFn::Square => t.square(),
            MapFn::Abs => t.abs(),
            MapFn::Sigmoid => t.sigmoid(),
            MapFn::Tanh => t.tanh(),
            MapFn::Relu => t.relu(),
            MapFn::Softplus => {
                // relu(x) + log1p(y), y = exp(-|x|): no overflow for large |x|. -|x| is written
                // x - 2 relu(x), whose gradient at 0 is 1 (abs' and relu' are 0 there, which gave
                // softplus'(0) = 0 instead of 1/2). ln(1 + y) rounds to 0 for y below the
                // precision's epsilon (x < -17 in f32), which would make a softplus scale exactly
                // 0; y - y²/2 is a lower bound on log1p(y) exact to y³/3 there, so the larger of
                // the two is never worse than either. Operands without a tape still get their
                // gradients through the binary ops that read them.
                let (t, tape) = t.split_tape();
                let r = t.clone().put_tape(tape).relu();
                let (r, tape) = r.split_tape();
                let y = ((t.put_tape(tape) - r.clone()) - r.clone()).exp();
                let (y, tape) = y.split_tape();
                let squared = y.clone().put_tape(tape).square();
                let (squared, tape) = squared.split_tape();
                let series = squared.put_tape(tape) * num::<E>(-0.5) + y.clone();
                let (series, tape) = series.split_tape();
                let rounded = (y.put_tape(tape) + num::<E>(1.0)).ln();
                rounded.maximum(series) + r
            }
            MapFn::Logit => {
                let (t, tape) = t.split_tape();
                let a = t.clone().put_tape(tape).ln();
                let (a, tape) = a.split_tape();
                let b = (t.put_tape(tape).negate() + num::<E>(1.0)).ln();
                b.negate() + a
            }
            MapFn::Log1m => {
                // log1p(-x), with the same correction for the rounding of 1 - x.
                let (t, tape) = t.split_tape();
                let u = t.clone().put_tape(tape).negate() + num::<E>(1.0);
                let (u, tape) = u.split_tape();
                let finite = t.clamp(-f64::from(f32::MAX), f64::from(f32::MAX));
                let uc = finite.clone().negate() + num::<E>(1.0);
                let err = (uc.clone() - num::<E>(1.0)) + finite;
                u.put_tape(tape).ln() - err / uc.clamp(1e-30, f64::from(f32::MAX))
            }
            MapFn::LGamma | MapFn::Digamma => unreachable!("handled above"),
        });
        self.note_op(Op::Map(f), &[a], &out);
        out
    }

    /// `a (op) b` for arrays of the same shape.
    pub fn zip(&mut self, f: ZipFn, a: &Array, b: &Array) -> Array {
        assert_eq!(a.shape, b.shape, "zip needs equal shapes (broadcast first)");
        let shape = a.shape.clone();
        if a.same_tensor(b) {
            // dfdx cannot differentiate an op whose two operands are one tensor: use a copy.
            let b = self.scale(b, 1.0);
            return self.zip(f, a, &b);
        }
        match f {
            ZipFn::Pow => {
                // a^b = exp(b ln a)
                let l = self.map(MapFn::Log, a);
                let p = self.zip(ZipFn::Mul, b, &l);
                return self.map(MapFn::Exp, &p);
            }
            ZipFn::Min => {
                // min(a, b) = -max(-a, -b)
                let na = self.scale(a, -1.0);
                let nb = self.scale(b, -1.0);
                let m = self.zip(ZipFn::Max, &na, &nb);
                return self.scale(&m, -1.0);
            }
            _ => {}
        }
        let out = traced2!(self, a, b, shape, |t, u| match f {
            ZipFn::Add => t + u,
            ZipFn::Sub => t - u,
            ZipFn::Mul => t * u,
            ZipFn::Div => t / u,
            ZipFn::Max => t.maximum(u),
            ZipFn::Pow | ZipFn::Min => unreachable!("handled above"),
        });
        self.note_op(Op::Zip(f), &[a, b], &out);
        out
    }

    /// `a ^ k` for a constant whole number `k`: repeated multiplication (square and multiply),
    /// which is right for negative bases (`exp(k ln a)` is NaN there), cheaper, and has the
    /// right derivative at 0. A negative `k` is `1 / a^|k|`.
    pub fn powi(&mut self, a: &Array, k: i64) -> Array {
        if k == 0 {
            return self.full(1.0, &a.shape);
        }
        if k < 0 {
            let p = self.powi(a, k.checked_neg().unwrap_or(i64::MAX));
            let one = self.full(1.0, &a.shape);
            return self.zip(ZipFn::Div, &one, &p);
        }
        let mut result: Option<Array> = None;
        let mut base = a.clone();
        let mut e = k;
        loop {
            if e & 1 == 1 {
                result = Some(match result {
                    None => base.clone(),
                    Some(r) => self.zip(ZipFn::Mul, &r, &base),
                });
            }
            e >>= 1;
            if e == 0 {
                break;
            }
            base = self.zip(ZipFn::Mul, &base, &base);
        }
        result.expect("k >= 1 sets a bit")
    }

    /// `a ^ k` for a constant `k > 1` that is not a whole number: `exp(k ln a)` with the base
    /// kept off 0, so that the value at 0 is 0 and the derivative there is 0 rather than NaN
    /// (`0 · ∞`); negative bases stay NaN, as the power is undefined there.
    pub fn powf_above_one(&mut self, a: &Array, k: f64) -> Array {
        let tiny = self.full(1e-30, &a.shape);
        let kept = self.zip(ZipFn::Max, a, &tiny);
        let l = self.map(MapFn::Log, &kept);
        let p = self.scale(&l, k);
        let p = self.map(MapFn::Exp, &p);
        let values = self.values(a);
        if values.iter().all(|v| *v >= 0.0 || v.is_nan()) {
            return p;
        }
        let nan: Vec<f64> = values
            .iter()
            .map(|v| if *v < 0.0 { f64::NAN } else { 0.0 })
            .collect();
        let nan = self.array(&nan, &a.shape);
        self.zip(ZipFn::Add, &p, &nan)
    }

    /// `a * c`
    pub fn scale(&mut self, a: &Array, c: f64) -> Array {
        let out = traced1!(self, a, a.shape.clone(), |t| t * num::<E>(c));
        self.note_op(Op::Scale(c), &[a], &out);
        out
    }

    /// `a + c`
    pub fn shift(&mut self, a: &Array, c: f64) -> Array {
        let out = traced1!(self, a, a.shape.clone(), |t| t + num::<E>(c));
        self.note_op(Op::Shift(c), &[a], &out);
        out
    }

    /// Clamp into `[lo, hi]` (gradient zero outside).
    pub fn clamp(&mut self, a: &Array, lo: f64, hi: f64) -> Array {
        let out = traced1!(self, a, a.shape.clone(), |t| t.clamp(lo, hi));
        self.note_op(Op::Clamp(lo, hi), &[a], &out);
        out
    }

    // ---------------------------------------------------------------- shape ops

    /// Insert a new axis of length `n` at position `axis` (repeating the data along it).
    pub fn insert_axis(&mut self, a: &Array, axis: usize, n: usize) -> Array {
        if n == 1 {
            let mut shape = a.shape.clone();
            shape.insert(axis, 1);
            return a.reshaped(&shape);
        }
        let before: usize = a.shape[..axis].iter().product();
        let after: usize = a.shape[axis..].iter().product();
        let mut shape = a.shape.clone();
        shape.insert(axis, n);
        let total = before * n * after;
        let out = traced1!(self, a, shape, |t| {
            let m = t.reshape_like(&(before, after));
            let b = m.broadcast_like::<_, Axis<1>>(&(before, n, after));
            b.reshape_like(&(total,))
        });
        self.note_op(Op::InsertAxis { before, n, after }, &[a], &out);
        out
    }

    /// Sum out axes `[from, to)`.
    pub fn sum_axes(&mut self, a: &Array, from: usize, to: usize) -> Array {
        let before: usize = a.shape[..from].iter().product();
        let mid: usize = a.shape[from..to].iter().product();
        let after: usize = a.shape[to..].iter().product();
        let mut shape = a.shape[..from].to_vec();
        shape.extend_from_slice(&a.shape[to..]);
        let out = traced1!(self, a, shape, |t| {
            let m = t.reshape_like(&(before, mid, after));
            let s: Tensor<(usize, usize), _, _, _> = m.sum::<_, Axis<1>>();
            s.reshape_like(&(before * after,))
        });
        self.note_op(Op::SumAxes { before, mid, after }, &[a], &out);
        out
    }

    /// The sum of all elements, as a scalar.
    pub fn sum(&mut self, a: &Array) -> Array {
        let flat = a.reshaped(&[a.len()]);
        self.sum_axes(&flat, 0, 1)
    }

    /// `out[k] = a.flat[index[k]]`, shaped `shape`. Gradients scatter back.
    pub fn gather(&mut self, a: &Array, index: &[usize], shape: &[usize]) -> Array {
        assert_eq!(index.len(), shape.iter().product::<usize>());
        self.note_unsupported("a gather");
        let idx: Tensor<(usize,), usize, Dev> = upload(&self.dev, index);
        traced1!(self, a, shape.to_vec(), |t| t.gather(idx.clone()))
    }

    /// Rows of a matrix `[n, w]` by index: `out[r] = a[rows[r]]`, shaped `[rows.len(), w]`.
    pub fn gather_rows(&mut self, a: &Array, rows: &[usize]) -> Array {
        self.note_unsupported("a gather of rows");
        let n = a.shape[0];
        let w = a.len() / n.max(1);
        let m = rows.len();
        let idx: Tensor<(usize,), usize, Dev> = upload(&self.dev, rows);
        traced1!(self, a, vec![m, w], |t| {
            let x = t.reshape_like(&(n, w));
            let g: Tensor<(usize, usize), _, _, _> = x.gather(idx.clone());
            g.reshape_like(&(m * w,))
        })
    }

    /// `a @ bᵀ` for `a: [m, k]`, `b: [n, k]` (no copy of the transpose).
    pub fn matmul_t(&mut self, a: &Array, b: &Array) -> Array {
        self.note_unsupported("a matrix product");
        let (m, k) = (a.shape[0], a.shape[1]);
        let n = b.shape[0];
        assert_eq!(b.shape[1], k);
        traced2!(self, a, b, vec![m, n], |t, u| {
            let x = t.reshape_like(&(m, k));
            let y = u.reshape_like(&(n, k)).permute::<(usize, usize), Axes2<1, 0>>();
            let r: Tensor<(usize, usize), _, _, _> = x.matmul(y);
            r.reshape_like(&(m * n,))
        })
    }

    /// `aᵀ @ b` for `a: [r, m]`, `b: [r, n]`: sums of outer products over rows.
    pub fn matmul_tn(&mut self, a: &Array, b: &Array) -> Array {
        self.note_unsupported("a matrix product");
        let (r, m) = (a.shape[0], a.shape[1]);
        let n = b.shape[1];
        assert_eq!(b.shape[0], r);
        traced2!(self, a, b, vec![m, n], |t, u| {
            let x = t.reshape_like(&(r, m)).permute::<(usize, usize), Axes2<1, 0>>();
            let y = u.reshape_like(&(r, n));
            let out: Tensor<(usize, usize), _, _, _> = x.matmul(y);
            out.reshape_like(&(m * n,))
        })
    }

    /// The transpose of a matrix `[m, n]`: `[n, m]`, copied into row-major order.
    pub fn transpose(&mut self, a: &Array) -> Array {
        self.note_unsupported("a transpose");
        let (m, n) = (a.shape[0], a.shape[1]);
        traced1!(self, a, vec![n, m], |t| {
            let x = t.reshape_like(&(m, n)).permute::<(usize, usize), Axes2<1, 0>>();
            x.reshape_like(&(m * n,))
        })
    }

    /// Concatenate flat arrays end to end into one of shape `shape`.
    /// Pairs are joined in a balanced tree, so k parts cost O(n log k) copies rather than
    /// O(n k) (a scan stacks one part per step).
    pub fn concat(&mut self, parts: &[Array], shape: &[usize]) -> Array {
        assert!(!parts.is_empty());
        self.note_unsupported("a concatenation");
        let mut level: Vec<Array> = parts.iter().map(|p| p.reshaped(&[p.len()])).collect();
        while level.len() > 1 {
            let mut next = Vec::with_capacity(level.len().div_ceil(2));
            let mut pending = level.into_iter();
            while let Some(a) = pending.next() {
                let Some(b) = pending.next() else {
                    next.push(a);
                    break;
                };
                // dfdx cannot differentiate an op whose two operands are one tensor.
                let b = if a.same_tensor(&b) { self.scale(&b, 1.0) } else { b };
                let n = a.len() + b.len();
                next.push(traced2!(self, a, b, vec![n], |t, u| {
                    let c: Tensor<(usize,), _, _, _> = (t, u).concat_along(Axis::<0>);
                    c
                }));
            }
            level = next;
        }
        level.pop().expect("one part left").reshaped(shape)
    }

    /// `a @ b` for matrices `[m, k] @ [k, n]`, or batches `[l, m, k] @ [l, k, n]`.
    pub fn matmul(&mut self, a: &Array, b: &Array) -> Array {
        self.note_unsupported("a matrix product");
        match (a.shape.as_slice(), b.shape.as_slice()) {
            (&[m, k], &[k2, n]) => {
                assert_eq!(k, k2);
                traced2!(self, a, b, vec![m, n], |t, u| {
                    let x = t.reshape_like(&(m, k));
                    let y = u.reshape_like(&(k, n));
                    let r: Tensor<(usize, usize), _, _, _> = x.matmul(y);
                    r.reshape_like(&(m * n,))
                })
            }
            (&[l, m, k], &[l2, k2, n]) => {
                assert_eq!((l, k), (l2, k2));
                traced2!(self, a, b, vec![l, m, n], |t, u| {
                    let x = t.reshape_like(&(l, m, k));
                    let y = u.reshape_like(&(l, k, n));
                    let r: Tensor<(usize, usize, usize), _, _, _> = x.matmul(y);
                    r.reshape_like(&(l * m * n,))
                })
            }
            (sa, sb) => panic!("matmul of {sa:?} by {sb:?}"),
        }
    }

    /// Softmax (or log-softmax) along the last axis.
    pub fn softmax(&mut self, a: &Array, log: bool) -> Array {
        let k = *a.shape.last().expect("softmax needs an axis");
        let rows = a.len() / k.max(1);
        let out = traced1!(self, a, a.shape.clone(), |t| {
            let m = t.reshape_like(&(rows, k));
            let r = if log {
                m.log_softmax::<Axis<1>>()
            } else {
                m.softmax::<Axis<1>>()
            };
            r.reshape_like(&(rows * k,))
        });
        self.note_op(Op::Softmax { rows, k, log }, &[a], &out);
        out
    }

    /// Log-sum-exp along the last axis (the axis disappears).
    pub fn logsumexp(&mut self, a: &Array) -> Array {
        let k = *a.shape.last().expect("logsumexp needs an axis");
        let rows = a.len() / k.max(1);
        let shape = a.shape[..a.shape.len() - 1].to_vec();
        let out = traced1!(self, a, shape, |t| {
            let m = t.reshape_like(&(rows, k));
            let r: Tensor<(usize,), _, _, _> = m.logsumexp::<_, Axis<1>>();
            r
        });
        self.note_op(Op::LogSumExp { rows, k }, &[a], &out);
        out
    }
}
