//! `net` declarations: an MLP's widths, or a `cnn`'s layers (dense, convolutions, reshapes),
//! with every layer's shape worked out here, so that a mismatch is a located diagnostic that
//! names both shapes before anything is fitted.

use super::Checker;
use crate::diag::{did_you_mean, Diagnostic};
use crate::graph::{Activation, Dim, Init, Layer, LayerShape, NetDecl, NetId};
use crate::syntax::ast::{self, ExprKind};
use crate::syntax::Span;

const KINDS: [&str; 2] = ["mlp", "cnn"];
const LAYERS: [&str; 5] = ["conv", "deconv", "dense", "reshape", "flatten"];

/// A layer's shape error: what the layer needs, and what the layer before it (at `before`)
/// gives.
fn shape_error(
    span: Span,
    message: String,
    label: String,
    before: (Span, &LayerShape),
    help: &str,
) -> Diagnostic {
    Diagnostic::new("vi::shape::net_layer", message)
        .primary(span, label)
        .secondary(before.0, format!("gives {}", before.1))
        .help(help)
}

impl Checker<'_> {
    pub(super) fn net_decl(&mut self, n: &ast::NetDecl) {
        let free = self.claim(&n.name, None);
        if !KINDS.contains(&n.kind.name.as_str()) {
            let mut d = Diagnostic::new("vi::net::kind", format!("unknown network kind `{}`", n.kind.name))
                .primary(n.kind.span, "not a network kind");
            d = match did_you_mean(&n.kind.name, KINDS) {
                Some(s) => d.help(format!("did you mean `{s}`?")),
                None => d.help(
                    "networks are `mlp(IN -> HIDDEN -> ... -> OUT, hidden = tanh, out = sigmoid)` or \
                     `cnn(IN -> reshape(C, H, W) -> conv(32, kernel = 4, stride = 2) -> flatten -> OUT)`",
                ),
            };
            self.error(d);
            return;
        }
        let Some(input) = self.dim(&n.layers[0]) else {
            return;
        };
        let mut layers = Vec::new();
        let mut at = LayerShape::Flat(input.clone());
        for (k, e) in n.layers.iter().enumerate().skip(1) {
            let before = n.layers[k - 1].span;
            let Some(layer) = self.net_layer(e, (before, &at), n.kind.name == "cnn") else {
                return;
            };
            let Some(after) = layer.output(&at) else {
                let Layer::Conv { kernel, padding, .. } = layer else {
                    unreachable!("only a convolution can fail to fit, and net_layer gives it an image")
                };
                let LayerShape::Image([_, h, w]) = at else {
                    unreachable!("net_layer refuses a convolution of a flat vector")
                };
                self.error(shape_error(
                    e.span,
                    format!("a kernel of {kernel} does not fit an image of {h}×{w} padded by {padding}"),
                    format!("kernel {kernel} on {at}"),
                    (before, &at),
                    "use a smaller kernel or more padding",
                ));
                return;
            };
            at = after;
            layers.push(layer);
        }
        if let LayerShape::Image(_) = at {
            let last = n.layers.last().expect("a net has layers").span;
            self.error(
                Diagnostic::new(
                    "vi::shape::net_layer",
                    format!("net `{}` ends in an image of {at}", n.name.name),
                )
                .primary(last, format!("an image of {at}"))
                .help("a net's output is a flat vector: end it with `flatten` (or a dense layer after one)"),
            );
            return;
        }
        if !layers.iter().any(Layer::weighted) {
            self.error(
                Diagnostic::new(
                    "vi::net::layer",
                    format!("net `{}` has no weighted layer", n.name.name),
                )
                .primary(n.span, "only reshapes")
                .help("add a dense layer (a width) or a convolution"),
            );
            return;
        }
        let Some((hidden, out, init)) = self.net_options(&n.options) else {
            return;
        };
        let mut decl = NetDecl {
            name: n.name.name.clone(),
            widths: vec![input],
            layers,
            hidden,
            out,
            init,
            span: n.span,
        };
        let shapes = decl.shapes();
        decl.widths = std::iter::once(shapes[0].width())
            .chain(
                decl.layers
                    .iter()
                    .zip(&shapes[1..])
                    .filter(|(l, _)| l.weighted())
                    .map(|(_, s)| s.width()),
            )
            .collect();
        if free {
            self.nets.push(decl);
            let id = NetId((self.nets.len() - 1) as u32);
            self.globals
                .insert(n.name.name.clone(), (super::Symbol::Net(id), n.name.span));
        }
    }

    /// One layer after the input, given the shape the layer before gives.
    fn net_layer(&mut self, e: &ast::Expr, before: (Span, &LayerShape), cnn: bool) -> Option<Layer> {
        let at = before.1;
        let (name, args) = match &e.kind {
            ExprKind::Name(f) if f == "flatten" => ("flatten", &[][..]),
            ExprKind::Call { func, args } if LAYERS.contains(&func.name.as_str()) => {
                (func.name.as_str(), &args[..])
            }
            ExprKind::Call { func, .. } => {
                let mut d = Diagnostic::new("vi::net::layer", format!("unknown layer `{}`", func.name))
                    .primary(func.span, "not a layer");
                d = match did_you_mean(&func.name, LAYERS) {
                    Some(s) => d.help(format!("did you mean `{s}`?")),
                    None => d.help(
                        "layers are a width (dense), `dense(W, norm = layer)`, `conv(C, kernel = K, stride = S, \
                         padding = P)`, `deconv(...)` (transposed), `reshape(C, H, W)` and `flatten`",
                    ),
                };
                self.error(d);
                return None;
            }
            _ => {
                let width = self.dim(e)?;
                if width.value() == Some(0) {
                    self.error(
                        Diagnostic::new("vi::net::width", "a layer of width 0")
                            .primary(e.span, "zero")
                            .help("every layer needs at least one unit"),
                    );
                    return None;
                }
                return self.dense(e.span, width, false, before);
            }
        };
        if !cnn {
            self.error(
                Diagnostic::new("vi::net::layer", format!("`{name}` in an `mlp`"))
                    .primary(e.span, "an MLP's layers are widths")
                    .help("declare the net as `cnn(...)` to use convolutions, reshapes and normalisation"),
            );
            return None;
        }
        let positional: Vec<&ast::Expr> = args
            .iter()
            .filter(|a| a.name.is_none())
            .map(|a| &a.value)
            .collect();
        let named = |key: &str| {
            args.iter()
                .find(|a| a.name.as_ref().is_some_and(|n| n.name == key))
        };
        let allowed: &[&str] = match name {
            "conv" | "deconv" => &["kernel", "stride", "padding", "norm"],
            "dense" => &["norm"],
            _ => &[],
        };
        let arity = match name {
            "reshape" => 3,
            "flatten" => 0,
            _ => 1,
        };
        for a in args {
            if let Some(k) = &a.name {
                if !allowed.contains(&k.name.as_str()) {
                    let mut d =
                        Diagnostic::new("vi::net::layer", format!("`{name}` has no option `{}`", k.name))
                            .primary(k.span, "not an option of this layer");
                    d = match did_you_mean(&k.name, allowed.iter().copied()) {
                        Some(s) => d.help(format!("did you mean `{s}`?")),
                        None if allowed.is_empty() => d.help(format!("`{name}` takes no options")),
                        None => d.help(format!("its options are {}", allowed.join(", "))),
                    };
                    self.error(d);
                    return None;
                }
            }
        }
        if positional.len() != arity {
            let what = match name {
                "reshape" => "`reshape(C, H, W)`: channels, height and width",
                "flatten" => "`flatten` on its own",
                "dense" => "`dense(W)`: its width",
                _ => "`conv(C, kernel = K)`: its output channels",
            };
            self.error(
                Diagnostic::new(
                    "vi::net::layer",
                    format!("`{name}` takes {arity} positional arguments"),
                )
                .primary(e.span, format!("{} given", positional.len()))
                .help(format!("write {what}")),
            );
            return None;
        }
        let norm = match named("norm") {
            None => false,
            Some(a) => match &a.value.kind {
                ExprKind::Name(v) if v == "layer" => true,
                ExprKind::Name(v) if v == "none" => false,
                _ => {
                    self.error(
                        Diagnostic::new("vi::net::layer", "unknown normalisation")
                            .primary(a.value.span, "not a normalisation")
                            .help("`norm = layer` (layer normalisation over each row's features, before the activation) or `norm = none`"),
                    );
                    return None;
                }
            },
        };
        match name {
            "flatten" => match at {
                LayerShape::Image(_) => Some(Layer::Flatten),
                LayerShape::Flat(_) => {
                    self.error(shape_error(
                        e.span,
                        "`flatten` of a flat vector".into(),
                        format!("the layer before gives {at} values, not an image"),
                        before,
                        "`flatten` follows a convolution or a `reshape`; remove it",
                    ));
                    None
                }
            },
            "dense" => {
                let width = self.dim(positional[0])?;
                self.dense(e.span, width, norm, before)
            }
            "reshape" => {
                let mut image = [0; 3];
                for (k, p) in positional.iter().enumerate() {
                    image[k] = self.const_count(p, "an image side")?;
                    if image[k] == 0 {
                        self.error(
                            Diagnostic::new("vi::net::width", "an image side of 0")
                                .primary(p.span, "zero")
                                .help("channels, height and width are each at least 1"),
                        );
                        return None;
                    }
                }
                let [c, h, w] = image;
                let LayerShape::Flat(width) = at else {
                    self.error(shape_error(
                        e.span,
                        format!("`reshape` of an image of {at}"),
                        format!("the layer before gives an image of {at}"),
                        before,
                        "`reshape` reads a flat vector as an image: `flatten` first",
                    ));
                    return None;
                };
                // An unbound width (no data yet) is checked again once the data bind it.
                if width.value().is_some() && !width.same(&Dim::Known(c * h * w)) {
                    self.error(shape_error(
                        e.span,
                        format!(
                            "an image of {c}×{h}×{w} holds {} values, the layer before gives {width}",
                            c * h * w
                        ),
                        format!("{} values", c * h * w),
                        before,
                        "the image's channels × height × width must equal the width before it",
                    ));
                    return None;
                }
                Some(Layer::Reshape { image })
            }
            _ => {
                let channels = self.const_count(positional[0], "a layer's channels")?;
                let Some(kernel) = named("kernel") else {
                    self.error(
                        Diagnostic::new("vi::net::layer", format!("`{name}` needs a kernel size"))
                            .primary(e.span, "no `kernel =`")
                            .help(format!("write `{name}({channels}, kernel = 3)` (square kernels)")),
                    );
                    return None;
                };
                let kernel = self.const_count(&kernel.value, "a kernel size")?;
                let stride = match named("stride") {
                    Some(a) => self.const_count(&a.value, "a stride")?,
                    None => 1,
                };
                let padding = match named("padding") {
                    Some(a) => self.const_count(&a.value, "a padding")?,
                    None => 0,
                };
                if channels == 0 || kernel == 0 || stride == 0 {
                    self.error(
                        Diagnostic::new(
                            "vi::net::width",
                            "a convolution needs channels, kernel and stride of at least 1",
                        )
                        .primary(e.span, "zero")
                        .help("every channel count, kernel size and stride is at least 1"),
                    );
                    return None;
                }
                if let LayerShape::Flat(width) = at {
                    self.error(shape_error(
                        e.span,
                        format!("`{name}` needs an image, the layer before gives {width} flat values"),
                        format!("{width} flat values"),
                        before,
                        "read the vector as an image first, e.g. `reshape(1, 28, 28)`",
                    ));
                    return None;
                }
                Some(Layer::Conv {
                    channels,
                    kernel,
                    stride,
                    padding,
                    transposed: name == "deconv",
                    norm,
                })
            }
        }
    }

    fn dense(&mut self, span: Span, width: Dim, norm: bool, before: (Span, &LayerShape)) -> Option<Layer> {
        let at = before.1;
        if let LayerShape::Image(_) = at {
            self.error(shape_error(
                span,
                format!("a dense layer needs a flat input, the layer before gives an image of {at}"),
                format!("an image of {at}"),
                before,
                "add `flatten` before the dense layer",
            ));
            return None;
        }
        Some(Layer::Dense { width, norm })
    }

    /// `hidden =`, `out =` and `init =`.
    fn net_options(&mut self, options: &[ast::Arg]) -> Option<(Activation, Activation, Init)> {
        let mut hidden = Activation::Tanh;
        let mut out = Activation::Identity;
        let mut init = Init::Glorot;
        for opt in options {
            let key = opt.name.as_ref().expect("the grammar only allows named options");
            let slot = match key.name.as_str() {
                "hidden" => &mut hidden,
                "out" => &mut out,
                "init" => {
                    let chosen = match &opt.value.kind {
                        ExprKind::Name(a) => Init::ALL.into_iter().find(|x| x.name() == a),
                        _ => None,
                    };
                    match chosen {
                        Some(i) => init = i,
                        None => {
                            self.error(
                                Diagnostic::new("vi::net::init", "unknown initialisation")
                                    .primary(opt.value.span, "not an initialisation")
                                    .help("`init = glorot` (the default: Glorot uniform) or `init = torch` (U(±1/√fan_in), PyTorch's nn.Linear)"),
                            );
                            return None;
                        }
                    }
                    continue;
                }
                other => {
                    let mut d = Diagnostic::new("vi::net::option", format!("unknown net option `{other}`"))
                        .primary(key.span, "not an option");
                    d = match did_you_mean(other, ["hidden", "out", "init"]) {
                        Some(s) => d.help(format!("did you mean `{s}`?")),
                        None => d.help(
                            "options are `hidden = ACTIVATION`, `out = ACTIVATION` and `init = glorot|torch`",
                        ),
                    };
                    self.error(d);
                    return None;
                }
            };
            let act = match &opt.value.kind {
                ExprKind::Name(a) => Activation::ALL.into_iter().find(|x| x.name() == a),
                _ => None,
            };
            match act {
                Some(a) => *slot = a,
                None => {
                    self.error(
                        Diagnostic::new("vi::net::activation", "unknown activation")
                            .primary(opt.value.span, "not an activation")
                            .help(format!(
                                "activations are {}",
                                Activation::ALL
                                    .iter()
                                    .map(|a| a.name())
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            )),
                    );
                    return None;
                }
            }
        }
        Some((hidden, out, init))
    }
}
