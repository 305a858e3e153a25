//! The abstract syntax tree, exactly as written: no names resolved, no types.
//!
//! Every node keeps the span of the text it came from; the checker reports against them.

use crate::syntax::Span;

#[derive(Clone, Debug, PartialEq)]
pub struct Ident {
    pub name: String,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Program {
    pub items: Vec<Item>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Item {
    Data(DataDecl),
    Const(ConstDecl),
    Param(ParamDecl),
    Latent(LatentDecl),
    Net(NetDecl),
    Stmt(Stmt),
    Guide(Block),
    Fit(FitBlock),
    Objective(ObjectiveDecl),
}

/// `data x: real[N] from "data/x.csv"`, or `from "data/t.csv" column "y"`
#[derive(Clone, Debug, PartialEq)]
pub struct DataDecl {
    pub name: Ident,
    pub ty: TypeExpr,
    pub from: Option<StrLit>,
    /// `column "y"` or `columns "x0,x1"` after the file: which columns of a table to take.
    pub columns: Option<ColumnSpec>,
    pub span: Span,
}

/// `column "y"` / `columns "x0,x1"` / `columns "0..3"`: the word as written and the list.
#[derive(Clone, Debug, PartialEq)]
pub struct ColumnSpec {
    pub keyword: Ident,
    pub value: StrLit,
}

#[derive(Clone, Debug, PartialEq)]
pub struct StrLit {
    pub value: String,
    pub span: Span,
}

/// `const K = 3`
#[derive(Clone, Debug, PartialEq)]
pub struct ConstDecl {
    pub name: Ident,
    pub value: Expr,
    pub span: Span,
}

/// `param s: positive[K] = 1.0`
#[derive(Clone, Debug, PartialEq)]
pub struct ParamDecl {
    pub name: Ident,
    pub ty: TypeExpr,
    pub init: Option<Expr>,
    pub span: Span,
}

/// `latent mu: ordered[K]`: a latent declared with its support, as Stan's parameters are; a
/// later `mu ~ ...` gives its prior, else it is flat on the support.
#[derive(Clone, Debug, PartialEq)]
pub struct LatentDecl {
    pub name: Ident,
    pub ty: TypeExpr,
    pub span: Span,
}

/// An element type with optional arguments and shape: `real[N, D]`, `bounded(0, 1)[K]`.
#[derive(Clone, Debug, PartialEq)]
pub struct TypeExpr {
    pub name: Ident,
    pub args: Vec<Expr>,
    pub dims: Vec<Expr>,
    pub span: Span,
}

/// `net encoder = mlp(D -> 400 -> 2 * Z, hidden = tanh)`
#[derive(Clone, Debug, PartialEq)]
pub struct NetDecl {
    pub name: Ident,
    pub kind: Ident,
    pub layers: Vec<Expr>,
    pub options: Vec<Arg>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Block {
    pub stmts: Vec<Stmt>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Stmt {
    /// `target ~ Dist(args) [dims]`: a latent variable, an observation, or an observed
    /// transformation of data.
    Sample {
        target: Expr,
        dist: DistCall,
        span: Span,
    },
    /// `let h = expr`
    Let { name: Ident, value: Expr, span: Span },
    /// `for i in 1..N batch M { ... }`
    For(Box<ForLoop>),
    /// `term gan = log(disc(x[n]))`: a named quantity for objectives, not part of the density.
    Term { name: Ident, value: Expr, span: Span },
    /// `target += expr`: a log-density term added to the model (summed over its shape).
    Target { value: Expr, span: Span },
    /// A statement that did not parse; its diagnostic has been reported.
    Error(Span),
}

impl Stmt {
    pub fn span(&self) -> Span {
        match self {
            Stmt::Sample { span, .. }
            | Stmt::Let { span, .. }
            | Stmt::Term { span, .. }
            | Stmt::Target { span, .. } => *span,
            Stmt::For(f) => f.span,
            Stmt::Error(span) => *span,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct ForLoop {
    pub var: Ident,
    pub from: Expr,
    pub to: Expr,
    pub batch: Option<BatchSpec>,
    pub body: Block,
    pub span: Span,
}

/// `batch M`: the keyword's span and the size, which the checker requires.
#[derive(Clone, Debug, PartialEq)]
pub struct BatchSpec {
    pub size: Option<Expr>,
    pub span: Span,
}

/// `Normal(0, sigma) [K]`
#[derive(Clone, Debug, PartialEq)]
pub struct DistCall {
    pub name: Ident,
    pub args: Vec<Arg>,
    /// The iid shape after the call, `[K]`, with the span of the brackets.
    pub iid: Option<(Vec<Expr>, Span)>,
    /// Stan's truncation `T[lo, hi]` (either bound may be left out).
    pub trunc: Option<Box<Truncation>>,
    pub span: Span,
}

/// `T[lo, hi]`, `T[lo, ]` or `T[, hi]` after a distribution call. `marker` is the word before
/// the bracket, which the checker requires to be `T`.
#[derive(Clone, Debug, PartialEq)]
pub struct Truncation {
    pub marker: Ident,
    pub lo: Option<Expr>,
    pub hi: Option<Expr>,
    pub span: Span,
}

/// A call argument, positional or `name = value`.
#[derive(Clone, Debug, PartialEq)]
pub struct Arg {
    pub name: Option<Ident>,
    pub value: Expr,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct FitBlock {
    pub settings: Vec<Setting>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Setting {
    pub key: Ident,
    pub value: Expr,
    pub span: Span,
}

/// `objective disc: maximise gan`
#[derive(Clone, Debug, PartialEq)]
pub struct ObjectiveDecl {
    pub groups: Vec<Ident>,
    pub sense: Sense,
    pub expr: Expr,
    pub span: Span,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sense {
    Maximise,
    Minimise,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

/// Dropping a tree 100,000 deep by the default recursion would overflow the stack: an
/// expression's children are moved onto a heap stack and dropped one at a time instead.
impl Drop for Expr {
    fn drop(&mut self) {
        let mut pending: Vec<Expr> = Vec::new();
        detach(&mut self.kind, &mut pending);
        while let Some(mut e) = pending.pop() {
            detach(&mut e.kind, &mut pending);
        }
    }
}

/// Move the sub-expressions of `kind` onto `out`, leaving a leaf in its place.
fn detach(kind: &mut ExprKind, out: &mut Vec<Expr>) {
    let leaf = ExprKind::Num {
        value: 0.0,
        is_int: true,
    };
    if matches!(kind, ExprKind::Num { .. } | ExprKind::Str(_) | ExprKind::Name(_)) {
        return;
    }
    let args = |args: Vec<Arg>, out: &mut Vec<Expr>| out.extend(args.into_iter().map(|a| a.value));
    match std::mem::replace(kind, leaf) {
        ExprKind::Num { .. } | ExprKind::Str(_) | ExprKind::Name(_) => {}
        ExprKind::Neg(a) => out.push(*a),
        ExprKind::Binary(_, a, b) => {
            out.push(*a);
            out.push(*b);
        }
        ExprKind::Call { args: a, .. } => args(a, out),
        ExprKind::Index { base, indices } => {
            out.push(*base);
            for ix in indices {
                match ix {
                    IndexArg::Expr(e) => out.push(e),
                    IndexArg::Slice { start, end, .. } => out.extend(start.into_iter().chain(end)),
                }
            }
        }
        ExprKind::Vector(items) => out.extend(items),
        ExprKind::Draw(call) => {
            let call = *call;
            args(call.args, out);
            if let Some((dims, _)) = call.iid {
                out.extend(dims);
            }
        }
        ExprKind::Scan(scan) => {
            let scan = *scan;
            out.extend([scan.from, scan.to, scan.init, scan.value]);
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Pow,
    MatMul,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl BinOp {
    pub fn symbol(self) -> &'static str {
        match self {
            BinOp::Eq => "==",
            BinOp::Ne => "!=",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
            BinOp::Gt => ">",
            BinOp::Ge => ">=",
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Pow => "^",
            BinOp::MatMul => "@",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum ExprKind {
    /// A number; `is_int` when written without a point or exponent.
    Num {
        value: f64,
        is_int: bool,
    },
    Str(String),
    Name(String),
    Neg(Box<Expr>),
    Binary(BinOp, Box<Expr>, Box<Expr>),
    Call {
        func: Ident,
        args: Vec<Arg>,
    },
    Index {
        base: Box<Expr>,
        indices: Vec<IndexArg>,
    },
    /// `[a, b, c]`
    Vector(Vec<Expr>),
    /// `draw Normal(0, 1) [Z]`: a fresh random draw, not a latent variable.
    Draw(Box<DistCall>),
    /// `scan t in 2..T from init { ... }`: a recurrence (only as a `let`'s whole value).
    Scan(Box<Scan>),
}

/// `let v = scan t in 2..T from INIT { let a = ...; VALUE }`: `v` has T members; member 1 is
/// `INIT` (from `1..T`, `INIT` is member 0 and not kept), and member `t` is `VALUE`, which
/// may read the member before as `v[t - 1]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Scan {
    pub var: Ident,
    pub from: Expr,
    pub to: Expr,
    pub init: Expr,
    /// The body's `let`s (each a `Stmt::Let`), in order.
    pub lets: Vec<Stmt>,
    pub value: Expr,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum IndexArg {
    Expr(Expr),
    /// `a:b`, `a:`, `:b` or `:`, zero-based and half-open.
    Slice {
        start: Option<Expr>,
        end: Option<Expr>,
        span: Span,
    },
}

impl IndexArg {
    pub fn span(&self) -> Span {
        match self {
            IndexArg::Expr(e) => e.span,
            IndexArg::Slice { span, .. } => *span,
        }
    }
}
