//! The lowered model: a typed computation graph (IR) that the engines run.
//!
//! The checker builds it; nothing downstream looks at the AST again. Every node keeps the span
//! of the expression it came from, so the engines can still point at the source (a value that
//! went non-finite, a statement that breaks conjugacy).
//!
//! Values are arrays. A node's [`Ty`] splits its axes in two: `plates`, the conditionally
//! independent axes of the `for` loops it varies over, and `shape`, the axes of one plate
//! member's value. Engines lay a value out as `[samples?, plates..., shape...]`; a node that
//! does not vary over a plate is broadcast along it.

mod print;

use std::fmt;
use std::sync::Arc;

use crate::diag::Source;
use crate::dist::{Domain, Family, Parameterization};
use crate::settings::Settings;
use crate::syntax::Span;

pub use print::{to_dot, to_text};

macro_rules! id_type {
    ($($name:ident),*) => {$(
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub u32);
        impl $name {
            pub fn index(self) -> usize { self.0 as usize }
        }
    )*};
}
id_type!(NodeId, PlateId, LatentId, DataId, ParamId, NetId, TermId);

/// One axis length: a number, or a name bound from the data (and its value once bound).
#[derive(Clone, Debug)]
pub enum Dim {
    Known(usize),
    Sym { name: Arc<str>, value: Option<usize> },
}

impl Dim {
    pub fn sym(name: &str, value: Option<usize>) -> Dim {
        Dim::Sym {
            name: name.into(),
            value,
        }
    }

    /// The length, once known.
    pub fn value(&self) -> Option<usize> {
        match self {
            Dim::Known(n) => Some(*n),
            Dim::Sym { value, .. } => *value,
        }
    }

    /// Two dims are the same length: equal values once bound, else the same name. Arithmetic
    /// of unbound dimensions (`2*D - D`) cannot be decided before the data are bound, and is
    /// taken to agree until then.
    pub fn same(&self, other: &Dim) -> bool {
        match (self.value(), other.value()) {
            (Some(a), Some(b)) => a == b,
            _ => match (self, other) {
                (Dim::Sym { name: a, .. }, Dim::Sym { name: b, .. }) => {
                    a == b || !is_plain_name(a) || !is_plain_name(b)
                }
                _ => false,
            },
        }
    }

    pub fn is_one(&self) -> bool {
        self.value() == Some(1)
    }
}

impl PartialEq for Dim {
    fn eq(&self, other: &Dim) -> bool {
        self.same(other)
    }
}

fn is_plain_name(s: &str) -> bool {
    s.chars().all(|c| c.is_alphanumeric() || c == '_')
}

impl fmt::Display for Dim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dim::Known(n) => write!(f, "{n}"),
            Dim::Sym { name, value: None } => f.write_str(name),
            Dim::Sym { name, value: Some(v) } => write!(f, "{name}={v}"),
        }
    }
}

/// Display a shape as `[N, 3]` (`[]` for a scalar).
pub struct ShapeDisplay<'a>(pub &'a [Dim]);

impl fmt::Display for ShapeDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{d}")?;
        }
        f.write_str("]")
    }
}

/// What the elements of a value are.
#[derive(Clone, Debug, PartialEq)]
pub enum Elem {
    Real,
    Int,
    /// An integer in `0..bound` (a categorical draw); indexing with it is checked against the
    /// bound.
    Index(Dim),
}

impl Elem {
    pub fn is_int(&self) -> bool {
        !matches!(self, Elem::Real)
    }
}

/// The type of a node: which plates it varies over, the shape per plate member, and its
/// elements.
#[derive(Clone, Debug, PartialEq)]
pub struct Ty {
    pub plates: Vec<PlateId>,
    pub shape: Vec<Dim>,
    pub elem: Elem,
}

impl Ty {
    pub fn scalar() -> Ty {
        Ty {
            plates: Vec::new(),
            shape: Vec::new(),
            elem: Elem::Real,
        }
    }

    pub fn real(plates: Vec<PlateId>, shape: Vec<Dim>) -> Ty {
        Ty {
            plates,
            shape,
            elem: Elem::Real,
        }
    }
}

/// Elementwise functions of one argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MapFn {
    Neg,
    Exp,
    Log,
    Log1p,
    Expm1,
    Sqrt,
    Square,
    Abs,
    Sigmoid,
    Logit,
    Tanh,
    Relu,
    Softplus,
    LGamma,
    Digamma,
    /// `log(1 - x)`, stable near 0.
    Log1m,
}

impl MapFn {
    pub fn name(self) -> &'static str {
        match self {
            MapFn::Neg => "neg",
            MapFn::Exp => "exp",
            MapFn::Log => "log",
            MapFn::Log1p => "log1p",
            MapFn::Expm1 => "expm1",
            MapFn::Sqrt => "sqrt",
            MapFn::Square => "square",
            MapFn::Abs => "abs",
            MapFn::Sigmoid => "sigmoid",
            MapFn::Logit => "logit",
            MapFn::Tanh => "tanh",
            MapFn::Relu => "relu",
            MapFn::Softplus => "softplus",
            MapFn::LGamma => "lgamma",
            MapFn::Digamma => "digamma",
            MapFn::Log1m => "log1m",
        }
    }

    pub const ALL: [MapFn; 16] = [
        MapFn::Neg,
        MapFn::Exp,
        MapFn::Log,
        MapFn::Log1p,
        MapFn::Expm1,
        MapFn::Sqrt,
        MapFn::Square,
        MapFn::Abs,
        MapFn::Sigmoid,
        MapFn::Logit,
        MapFn::Tanh,
        MapFn::Relu,
        MapFn::Softplus,
        MapFn::LGamma,
        MapFn::Digamma,
        MapFn::Log1m,
    ];

    /// Apply to a number (constant folding, reference values).
    pub fn apply(self, x: f64) -> f64 {
        match self {
            MapFn::Neg => -x,
            MapFn::Exp => x.exp(),
            MapFn::Log => x.ln(),
            MapFn::Log1p => x.ln_1p(),
            MapFn::Expm1 => x.exp_m1(),
            MapFn::Sqrt => x.sqrt(),
            MapFn::Square => x * x,
            MapFn::Abs => x.abs(),
            MapFn::Sigmoid => 1.0 / (1.0 + (-x).exp()),
            MapFn::Logit => (x / (1.0 - x)).ln(),
            MapFn::Tanh => x.tanh(),
            MapFn::Relu => x.max(0.0),
            MapFn::Softplus => x.max(0.0) + (-x.abs()).exp().ln_1p(),
            MapFn::LGamma => crate::special::lgamma(x),
            MapFn::Digamma => crate::special::digamma(x),
            MapFn::Log1m => (-x).ln_1p(),
        }
    }
}

/// Elementwise functions of two arguments, broadcasting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ZipFn {
    Add,
    Sub,
    Mul,
    Div,
    Pow,
    Min,
    Max,
}

impl ZipFn {
    pub fn symbol(self) -> &'static str {
        match self {
            ZipFn::Add => "+",
            ZipFn::Sub => "-",
            ZipFn::Mul => "*",
            ZipFn::Div => "/",
            ZipFn::Pow => "^",
            ZipFn::Min => "min",
            ZipFn::Max => "max",
        }
    }

    pub fn apply(self, a: f64, b: f64) -> f64 {
        match self {
            ZipFn::Add => a + b,
            ZipFn::Sub => a - b,
            ZipFn::Mul => a * b,
            ZipFn::Div => a / b,
            ZipFn::Pow => a.powf(b),
            ZipFn::Min => a.min(b),
            ZipFn::Max => a.max(b),
        }
    }
}

/// Elementwise comparisons: 1 where they hold, else 0 (an indicator, with no gradient).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CmpFn {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpFn {
    pub fn symbol(self) -> &'static str {
        match self {
            CmpFn::Eq => "==",
            CmpFn::Ne => "!=",
            CmpFn::Lt => "<",
            CmpFn::Le => "<=",
            CmpFn::Gt => ">",
            CmpFn::Ge => ">=",
        }
    }

    pub fn holds(self, a: f64, b: f64) -> bool {
        match self {
            CmpFn::Eq => a == b,
            CmpFn::Ne => a != b,
            CmpFn::Lt => a < b,
            CmpFn::Le => a <= b,
            CmpFn::Gt => a > b,
            CmpFn::Ge => a >= b,
        }
    }
}

/// Reductions over all axes of a value's shape (never over plates).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReduceFn {
    Sum,
    Mean,
    LogSumExp,
}

impl ReduceFn {
    pub fn name(self) -> &'static str {
        match self {
            ReduceFn::Sum => "sum",
            ReduceFn::Mean => "mean",
            ReduceFn::LogSumExp => "logsumexp",
        }
    }
}

/// The objective's building blocks, summed over plates with minibatch scaling.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Quantity {
    /// The evidence lower bound.
    Elbo,
    /// The expected log-likelihood of the observations (minus the distortion).
    LogLik,
    /// KL(q || prior) over the latents (the rate).
    Kl,
    Term(TermId),
}

#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    Const(f64),
    /// A constant array (row-major, the node's shape).
    Literal(Vec<f64>),
    /// `[a, b, c]`: equal-shaped values stacked along a new leading axis.
    Stack(Vec<NodeId>),
    /// A data array, whole.
    Data(DataId),
    /// The length of a dimension, as a number.
    DimValue(Dim),
    /// A latent variable: plate-varying along the plates it was drawn in.
    Latent(LatentId),
    Param(ParamId),
    /// A fresh random draw each evaluation (`draw Normal(0, 1) [Z]`).
    Draw(Box<DistApp>),
    /// The leading axes of `src` taken as the given plates: `x[i]`.
    PlateView {
        src: NodeId,
        plates: Vec<PlateId>,
    },
    /// The plates of `src` turned back into its leading axes: a whole plate-drawn latent.
    Unplate {
        src: NodeId,
    },
    /// `src` indexed along `axis` by an integer-valued node (a constant, data or a categorical
    /// latent); the axis disappears.
    Select {
        src: NodeId,
        axis: usize,
        index: NodeId,
    },
    /// `src[start:end]` along `axis` (bounds may name data dimensions, known once bound).
    Slice {
        src: NodeId,
        axis: usize,
        start: Dim,
        end: Dim,
    },
    Map(MapFn, NodeId),
    Zip(ZipFn, NodeId, NodeId),
    /// Matrix product over the last one or two axes (`@`, `dot`, `matmul`).
    MatMul(NodeId, NodeId),
    Reduce(ReduceFn, NodeId),
    /// Softmax along the last axis (`log` when `log` is set).
    Softmax {
        src: NodeId,
        log: bool,
    },
    /// A scalar repeated to a shape (`fill`, `zeros`, `ones`).
    Fill {
        value: NodeId,
        shape: Vec<Dim>,
    },
    /// Swap the last two axes.
    Transpose(NodeId),
    /// A declared network applied to `input` (its last axis); `layer` stops after that many
    /// layers, for feature matching.
    Net {
        net: NetId,
        input: NodeId,
        layer: Option<usize>,
    },
    /// A value that moves linearly from `from` to `to` over the first `steps` training steps.
    Anneal {
        from: f64,
        to: f64,
        steps: f64,
    },
    Quantity(Quantity),
    /// `scan`: a recurrence's members stacked along a new leading axis of length `len`.
    /// The body is evaluated once per step from position `first - 1` (zero-based), with
    /// `index` holding the step's position and `prev` the member before; `inner` lists the
    /// body's nodes that read either (forgotten between steps). Member 0 is `init` when
    /// `first` is 2; from 1, `init` is only the state before the first step.
    Scan {
        init: NodeId,
        body: NodeId,
        index: NodeId,
        prev: NodeId,
        first: usize,
        len: Dim,
        inner: Vec<NodeId>,
    },
    /// `src[t + offset]` for plate `t`: the rows `start + member + offset` of src's first
    /// value axis become the plate (the offset an integer scalar: constants, dimensions,
    /// scan steps).
    Shift {
        src: NodeId,
        plate: PlateId,
        offset: NodeId,
    },
    /// `a == b`, `a < b`, ...: an indicator, broadcasting.
    Compare(CmpFn, NodeId, NodeId),
    /// `where(cond, a, b)`: a where cond is non-zero, else b, broadcasting; the branch not
    /// taken gets no gradient (and its non-finite values do not leak).
    Where {
        cond: NodeId,
        then: NodeId,
        other: NodeId,
    },
    /// `sum(x, axis)`, `mean(x, axis)`: one value axis reduced (zero-based, after the plates).
    ReduceAxis {
        f: ReduceFn,
        src: NodeId,
        axis: usize,
    },
    /// Running sums along the last axis.
    CumSum(NodeId),
    /// Inside scan `.0`'s body: the step's zero-based position, set by the scan.
    ScanIndex(u32),
    /// Inside scan `.0`'s body: the member before this step's, set by the scan.
    ScanPrev(u32),
}

#[derive(Clone, Debug)]
pub struct Node {
    pub op: Op,
    pub ty: Ty,
    pub span: Span,
}

/// A distribution applied to argument nodes.
#[derive(Clone, Debug, PartialEq)]
pub struct DistApp {
    pub family: Family,
    pub pz: Parameterization,
    /// One node per parameter of the parameterisation, in its order.
    pub args: Vec<NodeId>,
    /// The iid shape written after the call (`[K]`).
    pub iid: Vec<Dim>,
    /// The shape the parameters broadcast to.
    pub batch: Vec<Dim>,
    /// The shape of one draw (`[K]` for a Dirichlet over K categories).
    pub event: Vec<Dim>,
    /// `T[lo, hi]`: the density renormalised to the bounds.
    pub trunc: Option<Truncation>,
    pub span: Span,
}

/// The bounds of a truncated density (Stan's `T[lo, hi]`): scalars, or shaped like the draws.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Truncation {
    pub lo: Option<NodeId>,
    pub hi: Option<NodeId>,
}

impl DistApp {
    /// The shape of one draw per plate member: iid, then batch, then event axes.
    pub fn value_shape(&self) -> Vec<Dim> {
        let mut s = self.iid.clone();
        s.extend(self.batch.iter().cloned());
        s.extend(self.event.iter().cloned());
        s
    }

    /// The values a draw takes: a mixture's are its components'.
    pub fn support(&self) -> Domain {
        self.value_family().support()
    }

    /// The family whose values a draw takes: a mixture's component family, else its own.
    pub fn value_family(&self) -> Family {
        match self.pz {
            Parameterization::MixtureOf(c) => c,
            _ => self.family,
        }
    }

    pub fn param_names(&self) -> impl Iterator<Item = &'static str> {
        self.family.params(self.pz).iter().map(|p| p.name)
    }
}

/// What a `~` statement draws or observes.
#[derive(Clone, Debug, PartialEq)]
pub enum Target {
    Latent(LatentId),
    /// Observed data; `value` is the data viewed along the enclosing plates.
    Data {
        data: DataId,
        value: NodeId,
    },
    /// An observed function of data and parameters (e.g. a discriminator's features).
    Derived {
        value: NodeId,
    },
}

/// A derived quantity: a `let` of the model whose value is a function of latents (and consts,
/// params) but of no data, like Stan's transformed parameters (`let theta = mu + tau * z`).
/// Its plates and shape are its node's type.
#[derive(Clone, Debug)]
pub struct Derived {
    pub name: String,
    pub value: NodeId,
    pub span: Span,
}

/// One `~` statement.
#[derive(Clone, Debug)]
pub struct Site {
    pub target: Target,
    pub dist: DistApp,
    /// The enclosing plates, outermost first.
    pub plates: Vec<PlateId>,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub struct Plate {
    pub var: String,
    pub size: Dim,
    /// The zero-based row of member 1 on the arrays the plate indexes: 0 for `1..N`, K for
    /// `K+1..T` (Stan's 1-based range; `x[t]` there is row t - 1 of x).
    pub start: Dim,
    /// The minibatch size, when the plate is subsampled.
    pub batch: Option<usize>,
    pub parent: Option<PlateId>,
    pub span: Span,
}

impl Plate {
    /// Its range as written: `1..N`, `6..200`, `K + 1..T`.
    pub fn range_text(&self) -> String {
        let first = match self.start.value() {
            Some(k) => (k + 1).to_string(),
            None => format!("{} + 1", self.start),
        };
        let last = match (self.start.value(), self.size.value()) {
            (Some(0), _) => self.size.to_string(),
            (Some(a), Some(n)) => (a + n).to_string(),
            _ => format!("{} + {}", self.start, self.size),
        };
        format!("{first}..{last}")
    }
}

#[derive(Clone, Debug)]
pub struct Latent {
    pub name: String,
    pub plates: Vec<PlateId>,
    /// Shape per plate member.
    pub shape: Vec<Dim>,
    pub support: Domain,
    /// The index of its prior site in [`Model::sites`].
    pub site: usize,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub struct DataDecl {
    pub name: String,
    pub domain: Domain,
    pub shape: Vec<Dim>,
    /// The default file, relative to the model file.
    pub from: Option<(String, Span)>,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub struct ConstDecl {
    pub name: String,
    pub shape: Vec<usize>,
    pub values: Vec<f64>,
    pub is_int: bool,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub struct ParamDecl {
    pub name: String,
    pub domain: Domain,
    pub shape: Vec<Dim>,
    /// A constant initial value (broadcast); `None` for the engine's default.
    pub init: Option<f64>,
    pub span: Span,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Activation {
    Identity,
    Tanh,
    Relu,
    LeakyRelu,
    Sigmoid,
    Softplus,
}

impl Activation {
    pub const ALL: [Activation; 6] = [
        Activation::Identity,
        Activation::Tanh,
        Activation::Relu,
        Activation::LeakyRelu,
        Activation::Sigmoid,
        Activation::Softplus,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Activation::Identity => "identity",
            Activation::Tanh => "tanh",
            Activation::Relu => "relu",
            Activation::LeakyRelu => "leaky_relu",
            Activation::Sigmoid => "sigmoid",
            Activation::Softplus => "softplus",
        }
    }
}

/// A declared network: a chain of layers from a flat input vector to a flat output vector
/// (an MLP is all dense layers; a `cnn` may hold images in between).
#[derive(Clone, Debug)]
pub struct NetDecl {
    pub name: String,
    /// The flat width of the input, then of each weighted layer's output (an image counts as
    /// channels × height × width): what `layer = k` and the net's callers see.
    pub widths: Vec<Dim>,
    /// Every layer in order; an MLP's are all dense.
    pub layers: Vec<Layer>,
    pub hidden: Activation,
    pub out: Activation,
    pub init: Init,
    pub span: Span,
}

/// One layer of a network. Weighted layers (dense, convolutions) end in the net's hidden
/// activation, the last of them in its output activation; reshapes and flattens only relabel.
#[derive(Clone, Debug, PartialEq)]
pub enum Layer {
    /// A fully connected layer to `width` units, on a flat input.
    Dense { width: Dim, norm: bool },
    /// A 2-D convolution (or, `transposed`, a transposed convolution) of an image to
    /// `channels` channels; square kernels, the same stride and zero padding on both axes.
    Conv {
        channels: usize,
        kernel: usize,
        stride: usize,
        padding: usize,
        transposed: bool,
        norm: bool,
    },
    /// A flat input read as an image of (channels, height, width), row-major.
    Reshape { image: [usize; 3] },
    /// An image read as a flat vector.
    Flatten,
}

impl Layer {
    /// Whether the layer has weights (and so an activation after it).
    pub fn weighted(&self) -> bool {
        matches!(self, Layer::Dense { .. } | Layer::Conv { .. })
    }

    /// The shape after this layer, given the shape before; `None` for a convolution whose
    /// kernel does not fit its padded image, or of a flat vector.
    pub fn output(&self, before: &LayerShape) -> Option<LayerShape> {
        Some(match (self, before) {
            (Layer::Dense { width, .. }, _) => LayerShape::Flat(width.clone()),
            (Layer::Reshape { image }, _) => LayerShape::Image(*image),
            (Layer::Flatten, s) => LayerShape::Flat(s.width()),
            (
                Layer::Conv {
                    channels,
                    kernel,
                    stride,
                    padding,
                    transposed,
                    ..
                },
                LayerShape::Image([_, h, w]),
            ) => {
                let side = |n| conv_out(n, *kernel, *stride, *padding, *transposed).filter(|&m| m > 0);
                LayerShape::Image([*channels, side(*h)?, side(*w)?])
            }
            (Layer::Conv { .. }, LayerShape::Flat(_)) => return None,
        })
    }

    /// Whether layer normalisation runs before the activation.
    pub fn norm(&self) -> bool {
        matches!(
            self,
            Layer::Dense { norm: true, .. } | Layer::Conv { norm: true, .. }
        )
    }
}

/// What flows between layers: a flat vector or an image.
#[derive(Clone, Debug, PartialEq)]
pub enum LayerShape {
    Flat(Dim),
    Image([usize; 3]),
}

impl LayerShape {
    /// The flat width: channels × height × width for an image.
    pub fn width(&self) -> Dim {
        match self {
            LayerShape::Flat(d) => d.clone(),
            LayerShape::Image([c, h, w]) => Dim::Known(c * h * w),
        }
    }
}

impl fmt::Display for LayerShape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LayerShape::Flat(d) => write!(f, "{d}"),
            LayerShape::Image([c, h, w]) => write!(f, "{c}×{h}×{w}"),
        }
    }
}

/// The output side of a convolution of `n` pixels (`None` when the kernel does not fit).
pub fn conv_out(n: usize, kernel: usize, stride: usize, padding: usize, transposed: bool) -> Option<usize> {
    if transposed {
        ((n.checked_sub(1)?) * stride + kernel)
            .checked_sub(2 * padding)
            .filter(|&m| m > 0)
    } else {
        (n + 2 * padding).checked_sub(kernel).map(|m| m / stride + 1)
    }
}

impl NetDecl {
    /// The shape after each layer, starting from the input's (one more entry than `layers`).
    pub fn shapes(&self) -> Vec<LayerShape> {
        let mut at = LayerShape::Flat(self.widths[0].clone());
        let mut out = vec![at.clone()];
        for layer in &self.layers {
            at = layer.output(&at).expect("checked: every layer fits");
            out.push(at.clone());
        }
        out
    }

    /// Every layer's learnables, in the order the forward pass reads them (a width the data
    /// have not bound counts as 0).
    pub fn params(&self) -> Vec<LayerParams> {
        let shapes = self.shapes();
        let mut out = Vec::new();
        let mut j = 0;
        for (k, layer) in self.layers.iter().enumerate() {
            let (before, after) = (&shapes[k], &shapes[k + 1]);
            let (shape, units, fans) = match (layer, before) {
                (Layer::Dense { .. }, _) => {
                    let (i, o) = (width(before), width(after));
                    (vec![i, o], o, (i, o))
                }
                (
                    Layer::Conv {
                        channels,
                        kernel,
                        transposed,
                        ..
                    },
                    LayerShape::Image([c, ..]),
                ) => {
                    let (taps_in, taps_out) = (c * kernel * kernel, channels * kernel * kernel);
                    // PyTorch counts a transposed convolution's fans the other way round.
                    let (shape, fans) = if *transposed {
                        (vec![*c, *channels, *kernel, *kernel], (taps_out, taps_in))
                    } else {
                        (vec![*channels, *c, *kernel, *kernel], (taps_in, taps_out))
                    };
                    (shape, *channels, fans)
                }
                _ => continue,
            };
            j += 1;
            out.push(LayerParams {
                name: format!("{}.{j}", self.name),
                shape,
                units,
                fans: Some(fans),
            });
            if layer.norm() {
                out.push(LayerParams {
                    name: format!("{}.{j}.norm", self.name),
                    shape: vec![units],
                    units,
                    fans: None,
                });
            }
        }
        out
    }

    /// How many weights and biases the net learns.
    pub fn weight_count(&self) -> usize {
        self.params()
            .iter()
            .map(|p| p.shape.iter().product::<usize>() + p.units)
            .sum()
    }

    /// The layers with the shape after each: `D -> 400 -> 2 * Z` for an MLP,
    /// `784 -> 1×28×28 -> conv k4 s2 p1 32×14×14 -> … -> 40` for a `cnn`.
    pub fn describe(&self) -> String {
        if self.kind() == NetKind::Mlp {
            let widths: Vec<String> = self.widths.iter().map(ToString::to_string).collect();
            return widths.join(" -> ");
        }
        let shapes = self.shapes();
        let mut parts = vec![shapes[0].to_string()];
        for (layer, after) in self.layers.iter().zip(&shapes[1..]) {
            let norm = if layer.norm() { " +norm" } else { "" };
            parts.push(match layer {
                Layer::Conv {
                    kernel,
                    stride,
                    padding,
                    transposed,
                    ..
                } => {
                    let what = if *transposed { "deconv" } else { "conv" };
                    format!("{what} k{kernel} s{stride} p{padding}{norm} {after}")
                }
                _ => format!("{after}{norm}"),
            });
        }
        parts.join(" -> ")
    }

    /// Per convolution, the values its patches hold for one row: output positions × taps.
    pub fn patch_counts(&self) -> Vec<usize> {
        let shapes = self.shapes();
        self.layers
            .iter()
            .enumerate()
            .filter_map(|(k, layer)| match (layer, &shapes[k], &shapes[k + 1]) {
                (Layer::Conv { kernel, .. }, LayerShape::Image([c, ..]), LayerShape::Image([_, h, w])) => {
                    Some(h * w * kernel * kernel * c)
                }
                _ => None,
            })
            .collect()
    }

    /// A `cnn` when any layer works on images or normalises, else an MLP.
    pub fn kind(&self) -> NetKind {
        if self
            .layers
            .iter()
            .all(|l| matches!(l, Layer::Dense { norm: false, .. }))
        {
            NetKind::Mlp
        } else {
            NetKind::Cnn
        }
    }
}

/// Which forward pass a net takes: plain dense layers, or the general layer chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetKind {
    Mlp,
    Cnn,
}

impl NetKind {
    /// The declaration's keyword.
    pub fn name(self) -> &'static str {
        match self {
            NetKind::Mlp => "mlp",
            NetKind::Cnn => "cnn",
        }
    }
}

/// The learnables of one weighted layer, or of its normalisation, in the order the forward
/// pass (`interpret::net`) reads them.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerParams {
    /// `NET.J` for the J-th weighted layer, `NET.J.norm` for its normalisation.
    pub name: String,
    /// The first array's shape: a dense weight `[in, out]`, a convolution's `[out, in, k, k]`,
    /// a transposed convolution's `[in, out, k, k]` (PyTorch's layouts), or a gain `[units]`.
    /// The second array (bias or shift) is `[units]`.
    pub shape: Vec<usize>,
    pub units: usize,
    /// (fan-in, fan-out) of the weights; `None` for a normalisation (gain 1, shift 0).
    pub fans: Option<(usize, usize)>,
}

/// A flat width as a count (0 while the data have not bound it).
fn width(s: &LayerShape) -> usize {
    s.width().value().unwrap_or(0)
}

/// How a network's weights start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Init {
    /// Glorot (Xavier) uniform: weights ~ U(±√(6 / (fan_in + fan_out))), biases 0.
    Glorot,
    /// PyTorch's `nn.Linear` default: weights and biases ~ U(±1/√fan_in).
    Torch,
}

impl Init {
    pub const ALL: [Init; 2] = [Init::Glorot, Init::Torch];

    pub fn name(self) -> &'static str {
        match self {
            Init::Glorot => "glorot",
            Init::Torch => "torch",
        }
    }
}

/// `term NAME = expr`: a named quantity for objectives.
#[derive(Clone, Debug)]
pub struct Term {
    pub name: String,
    pub value: NodeId,
    pub plates: Vec<PlateId>,
    pub span: Span,
}

/// Which learnable parameters an objective updates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Group {
    Net(NetId),
    Param(ParamId),
    /// The variational parameters of the automatic guide.
    Guide,
}

#[derive(Clone, Debug)]
pub struct Objective {
    /// Empty: every learnable parameter not claimed by another objective.
    pub groups: Vec<Group>,
    pub maximise: bool,
    pub expr: NodeId,
    pub span: Span,
}

/// A checked, lowered model: everything an engine needs, nothing of the syntax.
#[derive(Clone, Debug)]
pub struct Model {
    pub name: String,
    pub source: Source,
    pub data: Vec<DataDecl>,
    pub consts: Vec<ConstDecl>,
    pub params: Vec<ParamDecl>,
    pub nets: Vec<NetDecl>,
    pub plates: Vec<Plate>,
    pub latents: Vec<Latent>,
    pub nodes: Vec<Node>,
    /// The model's `~` statements in program order.
    pub sites: Vec<Site>,
    /// The guide block's `~` statements, if the model has one.
    pub guide: Option<Vec<Site>>,
    pub terms: Vec<Term>,
    /// The model's derived quantities, reported like latents from draws of q.
    pub derived: Vec<Derived>,
    pub objectives: Vec<Objective>,
    pub settings: Settings,
    /// What the checker could not prove but did not refuse (an argument's support, a power of
    /// a value that may be negative); `vinf check` and `vinf fit` print them.
    pub warnings: Vec<crate::diag::Diagnostic>,
}

impl Model {
    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id.index()]
    }

    pub fn plate(&self, id: PlateId) -> &Plate {
        &self.plates[id.index()]
    }

    pub fn latent(&self, id: LatentId) -> &Latent {
        &self.latents[id.index()]
    }

    /// The lengths of a value over `plates` with per-member `shape` (1 where still unbound).
    pub fn full_shape(&self, plates: &[PlateId], shape: &[Dim]) -> Vec<usize> {
        plates
            .iter()
            .map(|p| &self.plate(*p).size)
            .chain(shape)
            .map(|d| d.value().unwrap_or(1))
            .collect()
    }

    /// The guide site for a latent, if the guide block draws it.
    pub fn guide_site(&self, id: LatentId) -> Option<&Site> {
        self.guide
            .as_ref()?
            .iter()
            .find(|s| s.target == Target::Latent(id))
    }

    /// The value of a node if it is a compile-time scalar constant.
    pub fn constant(&self, id: NodeId) -> Option<f64> {
        crate::limits::deep(|| self.constant_at_depth(id))
    }

    fn constant_at_depth(&self, id: NodeId) -> Option<f64> {
        let node = self.node(id);
        if !node.ty.shape.is_empty() || !node.ty.plates.is_empty() {
            return None;
        }
        match &node.op {
            Op::Const(v) => Some(*v),
            Op::Map(f, a) => Some(f.apply(self.constant(*a)?)),
            Op::Zip(f, a, b) => Some(f.apply(self.constant(*a)?, self.constant(*b)?)),
            Op::DimValue(d) => d.value().map(|v| v as f64),
            _ => None,
        }
    }

    /// Every node `id` depends on, itself included.
    pub fn ancestors(&self, id: NodeId) -> Vec<NodeId> {
        let mut seen = vec![false; self.nodes.len()];
        let mut stack = vec![id];
        let mut out = Vec::new();
        while let Some(n) = stack.pop() {
            if std::mem::replace(&mut seen[n.index()], true) {
                continue;
            }
            out.push(n);
            stack.extend(self.inputs(n));
        }
        out.sort();
        out
    }

    /// The direct inputs of a node.
    pub fn inputs(&self, id: NodeId) -> Vec<NodeId> {
        op_inputs(&self.node(id).op)
    }

    /// Whether a node reads any data (directly or through its inputs).
    pub fn reads_data(&self, id: NodeId) -> bool {
        self.ancestors(id)
            .into_iter()
            .any(|n| matches!(self.node(n).op, Op::Data(_)))
    }

    /// The latents a node depends on.
    pub fn latents_of(&self, id: NodeId) -> Vec<LatentId> {
        let mut out: Vec<LatentId> = self
            .ancestors(id)
            .into_iter()
            .filter_map(|n| match self.node(n).op {
                Op::Latent(l) => Some(l),
                _ => None,
            })
            .collect();
        out.dedup();
        out
    }
}

/// The nodes an op reads.
pub fn op_inputs(op: &Op) -> Vec<NodeId> {
    match op {
        Op::Const(_)
        | Op::Literal(_)
        | Op::Data(_)
        | Op::DimValue(_)
        | Op::Latent(_)
        | Op::Param(_)
        | Op::Anneal { .. }
        | Op::ScanIndex(_)
        | Op::ScanPrev(_)
        | Op::Quantity(_) => Vec::new(),
        Op::Scan { init, body, .. } => vec![*init, *body],
        Op::Shift { src, offset, .. } => vec![*src, *offset],
        Op::Compare(_, a, b) => vec![*a, *b],
        Op::Where { cond, then, other } => vec![*cond, *then, *other],
        Op::ReduceAxis { src, .. } => vec![*src],
        Op::CumSum(a) => vec![*a],
        Op::Stack(items) => items.clone(),
        Op::Draw(d) => d.args.clone(),
        Op::PlateView { src, .. } | Op::Unplate { src } | Op::Slice { src, .. } | Op::Softmax { src, .. } => {
            vec![*src]
        }
        Op::Select { src, index, .. } => vec![*src, *index],
        Op::Map(_, a) | Op::Reduce(_, a) | Op::Transpose(a) => vec![*a],
        Op::Zip(_, a, b) | Op::MatMul(a, b) => vec![*a, *b],
        Op::Fill { value, .. } => vec![*value],
        Op::Net { input, .. } => vec![*input],
    }
}
