//! Random well-formed models for the `models` fuzz target (`fuzz/fuzz_targets/models.rs`) and
//! its replay (`tests/random_models.rs`): data of every type with small CSV files of matching
//! shape, consts, latents of every family (drawn, or declared with a `latent` type and given a
//! prior), arguments that read constants, data, other latents and expressions of them, plates,
//! `let`s, scans, truncation, mixtures and `target +=`. Most generated models check; some are
//! rejected with diagnostics (a prior whose support misses the declared one, an argument that
//! may leave its domain), which is fine: the rule is that nothing panics.
//!
//! Each choice is read from a [`Choices`]: a seeded stream (the replayed seeds) or the
//! fuzzer's bytes (zeros once they run out, so every input gives a finite model).
//! [`drive`] runs a model through what `vinf check`, `vinf graph` and a 10-step `vinf fit` do.
#![allow(dead_code)]

use std::fmt::Write as _;
use std::path::Path;

/// Where the generator's choices come from.
pub struct Choices<'a> {
    bytes: &'a [u8],
    pos: usize,
    /// `Some`: a splitmix64 stream instead of the bytes.
    state: Option<u64>,
}

impl<'a> Choices<'a> {
    pub fn seeded(seed: u64) -> Choices<'static> {
        Choices {
            bytes: &[],
            pos: 0,
            state: Some(seed ^ 0x5DEE_CE66_D1CE_4E5B),
        }
    }

    pub fn bytes(bytes: &'a [u8]) -> Choices<'a> {
        Choices {
            bytes,
            pos: 0,
            state: None,
        }
    }

    fn draw(&mut self) -> u32 {
        match &mut self.state {
            Some(s) => {
                *s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
                let mut z = *s;
                z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
                (z ^ (z >> 31)) as u32
            }
            None => {
                let b = self.bytes.get(self.pos).copied().unwrap_or(0);
                self.pos += 1;
                u32::from(b)
            }
        }
    }

    /// A whole number in 0..n (n ≥ 1).
    pub fn below(&mut self, n: usize) -> usize {
        self.draw() as usize % n.max(1)
    }

    /// True with probability about `percent` / 100 (from bytes: a byte below 2.56 · percent).
    pub fn chance(&mut self, percent: u32) -> bool {
        (self.draw() % 100) < percent
    }

    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }

    /// A number in [lo, hi] with two decimals.
    pub fn real(&mut self, lo: f64, hi: f64) -> f64 {
        let u = f64::from(self.draw() % 1000) / 999.0;
        ((lo + (hi - lo) * u) * 100.0).round() / 100.0
    }

    pub fn pick<'b, T>(&mut self, items: &'b [T]) -> &'b T {
        &items[self.below(items.len())]
    }
}

/// What a value is known to lie in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Sup {
    Real,
    Positive,
    Unit,
}

/// A scalar-valued thing an expression may read, and how to read it.
#[derive(Clone, Debug)]
struct Val {
    /// The expression outside any plate, or `None` where it only exists inside one.
    outside: Option<String>,
    /// The expression inside the model's plate (member `i`).
    inside: String,
    sup: Sup,
}

/// A data variable of the plate's length that observations may target.
#[derive(Clone, Debug)]
struct Obs {
    name: String,
    ty: &'static str,
}

struct Gen<'c, 'a> {
    c: &'c mut Choices<'a>,
    src: String,
    files: Vec<(String, String)>,
    vals: Vec<Val>,
    /// Latent vectors of length K (the `K` const) that integer data may index.
    k_vectors: Vec<String>,
    /// Simplex-valued vectors of length K.
    simplexes: Vec<String>,
    obs: Vec<Obs>,
    n_rows: usize,
    k: usize,
    fresh: usize,
}

/// A deterministic random model: its source (data read `from` files next to it) and the data
/// files, by name and CSV text.
pub fn random_model(c: &mut Choices) -> (String, Vec<(String, String)>) {
    let n_rows = c.range(3, 7);
    let k = c.range(2, 3);
    let mut g = Gen {
        c,
        src: String::new(),
        files: Vec::new(),
        vals: Vec::new(),
        k_vectors: Vec::new(),
        simplexes: Vec::new(),
        obs: Vec::new(),
        n_rows,
        k,
        fresh: 0,
    };
    g.model();
    (g.src, g.files)
}

const DATA_TYPES: [&str; 7] = [
    "real",
    "positive",
    "unit",
    "binary",
    "count",
    "int",
    "bounded(-3, 3)",
];

impl Gen<'_, '_> {
    fn name(&mut self, stem: &str) -> String {
        self.fresh += 1;
        format!("{stem}{}", self.fresh)
    }

    fn line(&mut self, indent: usize, text: &str) {
        let _ = writeln!(self.src, "{}{text}", "    ".repeat(indent));
    }

    fn value(&mut self, ty: &str) -> String {
        let v = match ty {
            "real" => self.c.real(-2.0, 2.0),
            "positive" => self.c.real(0.1, 3.0),
            "unit" => self.c.real(0.05, 0.95),
            "binary" => self.c.below(2) as f64,
            "count" => self.c.below(6) as f64,
            "int" => self.c.below(self.k) as f64,
            _ => self.c.real(-2.5, 2.5),
        };
        format!("{v}")
    }

    fn model(&mut self) {
        let k = self.k;
        self.line(0, &format!("const K = {k}"));
        // Data: one vector of each chosen type over the plate, sometimes a matrix, a scalar.
        let mut types: Vec<&'static str> = vec!["real"];
        for _ in 0..self.c.range(1, 4) {
            types.push(*self.c.pick(&DATA_TYPES));
        }
        for ty in types {
            let name = self.name("y");
            let mut csv = format!("{name}\n");
            for _ in 0..self.n_rows {
                let v = self.value(ty);
                let _ = writeln!(csv, "{v}");
            }
            self.line(0, &format!("data {name}: {ty}[N] from \"{name}.csv\""));
            self.files.push((format!("{name}.csv"), csv));
            match ty {
                "real" | "bounded(-3, 3)" => self.vals.push(Val {
                    outside: Some(format!("mean({name})")),
                    inside: format!("{name}[i]"),
                    sup: Sup::Real,
                }),
                "positive" => self.vals.push(Val {
                    outside: Some(format!("{name}[0]")),
                    inside: format!("{name}[i]"),
                    sup: Sup::Positive,
                }),
                "unit" => self.vals.push(Val {
                    outside: Some(format!("mean({name})")),
                    inside: format!("{name}[i]"),
                    sup: Sup::Unit,
                }),
                _ => {}
            }
            self.obs.push(Obs { name, ty });
        }
        if self.c.chance(40) {
            let d = self.c.range(1, 3);
            let name = self.name("X");
            let header: Vec<String> = (0..d).map(|j| format!("{name}{j}")).collect();
            let mut csv = header.join(",") + "\n";
            for _ in 0..self.n_rows {
                let row: Vec<String> = (0..d).map(|_| self.value("real")).collect();
                csv += &(row.join(",") + "\n");
            }
            self.line(0, &format!("data {name}: real[N, D] from \"{name}.csv\""));
            self.files.push((format!("{name}.csv"), csv));
            let w = self.name("w");
            let prior = self.real_prior(0);
            self.line(0, &format!("{w} ~ {prior} [D]"));
            self.vals.push(Val {
                outside: Some(format!("sum({w})")),
                inside: format!("dot({name}[i], {w})"),
                sup: Sup::Real,
            });
            self.vals.push(Val {
                outside: Some(format!("mean({name})")),
                inside: format!("{name}[i, 0]"),
                sup: Sup::Real,
            });
        }
        if self.c.chance(30) {
            let name = self.name("s");
            let v = self.value("positive");
            self.line(0, &format!("data {name}: positive from \"{name}.csv\""));
            self.files.push((format!("{name}.csv"), format!("{name}\n{v}\n")));
            self.vals.push(Val {
                outside: Some(name.clone()),
                inside: name,
                sup: Sup::Positive,
            });
        }
        if self.c.chance(30) {
            let name = self.name("c");
            let v = self.c.real(0.5, 4.0);
            self.line(0, &format!("const {name} = {v}"));
            self.vals.push(Val {
                outside: Some(name.clone()),
                inside: name,
                sup: Sup::Positive,
            });
        }
        // Global latents.
        for _ in 0..self.c.range(1, 5) {
            self.global_latent();
        }
        if self.c.chance(30) {
            self.scan();
        }
        if self.c.chance(30) {
            let name = self.name("d");
            let e = self.expr(Sup::Real, false, 2);
            self.line(0, &format!("let {name} = {e}"));
            self.vals.push(Val {
                outside: Some(name.clone()),
                inside: name,
                sup: Sup::Real,
            });
        }
        // The plate, or vectorised observations.
        if self.c.chance(80) {
            let batch = if self.c.chance(10) { " batch 2" } else { "" };
            self.line(0, &format!("for i in 1..N{batch} {{"));
            for _ in 0..self.c.below(3) {
                self.plate_latent();
            }
            if self.c.chance(40) {
                let name = self.name("m");
                let e = self.expr(Sup::Real, true, 2);
                self.line(1, &format!("let {name} = {e}"));
                self.vals.push(Val {
                    outside: None,
                    inside: name,
                    sup: Sup::Real,
                });
            }
            let obs = self.obs.clone();
            for o in &obs {
                if self.c.chance(85) {
                    let call = self.likelihood(o.ty, true);
                    self.line(1, &format!("{}[i] ~ {call}", o.name));
                }
            }
            if self.c.chance(10) {
                let e = self.expr(Sup::Real, true, 1);
                self.line(1, &format!("target += -0.5 * ({e}) ^ 2"));
            }
            self.line(0, "}");
        } else {
            let obs = self.obs.clone();
            for o in &obs {
                if self.c.chance(85) {
                    let call = self.likelihood(o.ty, false);
                    self.line(0, &format!("{} ~ {call}", o.name));
                }
            }
        }
        if self.c.chance(25) {
            let setting = self
                .c
                .pick(&[
                    "method = svi",
                    "method = cavi",
                    "method = pathfinder",
                    "guide = full_rank",
                    "reparam = none",
                    "init = origin",
                    "estimator = analytic",
                    "optimizer = adagrad",
                    "optimizer = sgd",
                    "samples = 2",
                    "restarts = 2",
                ])
                .to_string();
            self.line(0, &format!("fit {{ {setting} }}"));
        }
    }

    /// A prior (or likelihood) call with real support and scalar arguments.
    fn real_prior(&mut self, depth: usize) -> String {
        let loc = self.expr_at(Sup::Real, false, depth);
        let scale = self.expr_at(Sup::Positive, false, depth);
        match self.c.below(9) {
            0 => format!("Normal({loc}, {scale})"),
            1 => format!("Normal(loc = {loc}, precision = {scale})"),
            2 => format!("Normal(loc = {loc}, variance = {scale})"),
            3 => {
                let df = self.expr_at(Sup::Positive, false, depth);
                format!("StudentT({df}, {loc}, {scale})")
            }
            4 => format!("Cauchy({loc}, {scale})"),
            5 => format!("Laplace({loc}, {scale})"),
            6 => format!("Gumbel({loc}, {scale})"),
            7 => "Flat()".into(),
            _ => format!("Normal({loc}, {scale})"),
        }
    }

    fn positive_prior(&mut self, depth: usize) -> String {
        let a = self.expr_at(Sup::Positive, false, depth);
        let b = self.expr_at(Sup::Positive, false, depth);
        let loc = self.expr_at(Sup::Real, false, depth);
        match self.c.below(10) {
            0 => format!("HalfNormal({a})"),
            1 => format!("LogNormal({loc}, {a})"),
            2 => format!("Gamma({a}, {b})"),
            3 => format!("InverseGamma({a}, {b})"),
            4 => format!("Exponential({a})"),
            5 => format!("HalfCauchy({a})"),
            6 => format!("HalfStudentT({a}, {b})"),
            7 => format!("Weibull({a}, {b})"),
            8 => "HalfFlat()".into(),
            _ => format!("Gamma({a}, {b})"),
        }
    }

    fn unit_prior(&mut self, depth: usize) -> String {
        let a = self.expr_at(Sup::Positive, false, depth);
        let b = self.expr_at(Sup::Positive, false, depth);
        match self.c.below(3) {
            0 => "Uniform(0, 1)".into(),
            _ => format!("Beta({a}, {b})"),
        }
    }

    fn any_prior(&mut self, sup: Sup, depth: usize) -> String {
        match sup {
            Sup::Real => self.real_prior(depth),
            Sup::Positive => self.positive_prior(depth),
            Sup::Unit => self.unit_prior(depth),
        }
    }

    fn global_latent(&mut self) {
        let name = self.name("z");
        match self.c.below(12) {
            // Scalar latents of each support.
            0..=5 => {
                let sup = *self.c.pick(&[Sup::Real, Sup::Real, Sup::Positive, Sup::Unit]);
                let prior = self.any_prior(sup, 1);
                let trunc = if sup == Sup::Real && self.c.chance(10) && prior.starts_with("Normal(") {
                    " T[0, ]"
                } else {
                    ""
                };
                self.line(0, &format!("{name} ~ {prior}{trunc}"));
                let sup = if trunc.is_empty() { sup } else { Sup::Positive };
                self.scalar(name, sup);
            }
            // A vector of K.
            6 | 7 => {
                let sup = *self.c.pick(&[Sup::Real, Sup::Positive]);
                let prior = self.any_prior(sup, 0);
                self.line(0, &format!("{name} ~ {prior} [K]"));
                self.k_vectors.push(name.clone());
                self.vector(&name, sup);
            }
            // A simplex.
            8 => {
                let conc = if self.c.chance(50) {
                    format!("fill(1.0, {})", self.k)
                } else {
                    let v: Vec<String> = (0..self.k)
                        .map(|_| format!("{}", self.c.real(0.5, 3.0)))
                        .collect();
                    format!("[{}]", v.join(", "))
                };
                self.line(0, &format!("{name} ~ Dirichlet({conc})"));
                self.simplexes.push(name.clone());
                self.vector(&name, Sup::Unit);
            }
            // MvNormal.
            9 => {
                let cov = if self.c.chance(50) {
                    "cov = [[1.0, 0.3], [0.3, 1.0]]"
                } else {
                    "scale_tril = [[1.0, 0.0], [0.5, 1.0]]"
                };
                let loc = self.expr_at(Sup::Real, false, 0);
                self.line(0, &format!("{name} ~ MvNormal([{loc}, 0], {cov})"));
                self.vector(&name, Sup::Real);
            }
            // `latent` declarations, with or without a prior of any family.
            _ => self.declared_latent(name),
        }
    }

    fn scalar(&mut self, name: String, sup: Sup) {
        self.vals.push(Val {
            outside: Some(name.clone()),
            inside: name,
            sup,
        });
    }

    fn vector(&mut self, name: &str, sup: Sup) {
        let j = self.c.below(2);
        self.vals.push(Val {
            outside: Some(format!("{name}[{j}]")),
            inside: format!("{name}[{j}]"),
            sup,
        });
        if sup != Sup::Unit {
            self.vals.push(Val {
                outside: Some(format!("sum({name})")),
                inside: format!("sum({name})"),
                sup,
            });
        }
    }

    fn declared_latent(&mut self, name: String) {
        let (ty, sup, vector) = match self.c.below(9) {
            0 | 1 => ("real".to_string(), Sup::Real, false),
            2 | 3 => ("positive".to_string(), Sup::Positive, false),
            4 => ("unit".to_string(), Sup::Unit, false),
            5 => ("bounded(-1, 2)".to_string(), Sup::Real, false),
            6 => (format!("ordered[{}]", self.k), Sup::Real, true),
            7 => (format!("positive_ordered[{}]", self.k), Sup::Positive, true),
            _ => (format!("simplex[{}]", self.k), Sup::Unit, true),
        };
        if self.c.chance(10) {
            // A Cholesky factor, used through diag_pre_multiply.
            self.line(0, &format!("latent {name}: cholesky_factor_corr[2]"));
            if self.c.chance(70) {
                let eta = self.expr_at(Sup::Positive, false, 0);
                self.line(0, &format!("{name} ~ LKJCholesky({eta})"));
            }
            let d = self.name("d");
            self.line(0, &format!("let {d} = {name} @ transpose({name})"));
            self.vals.push(Val {
                outside: Some(format!("{d}[1, 0]")),
                inside: format!("{d}[1, 0]"),
                sup: Sup::Real,
            });
            return;
        }
        self.line(0, &format!("latent {name}: {ty}"));
        if self.c.chance(75) {
            // Usually a prior of the declared support; sometimes any family (a diagnostic).
            let psup = if self.c.chance(75) {
                sup
            } else {
                *self.c.pick(&[Sup::Real, Sup::Positive, Sup::Unit])
            };
            let prior = if ty.starts_with("simplex") {
                format!("Dirichlet(fill(1.0, {}))", self.k)
            } else {
                self.any_prior(psup, 0)
            };
            self.line(0, &format!("{name} ~ {prior}"));
            // Half the time the model reads it as its prior's support (the known
            // `latent s: real` with `s ~ Gamma(2, 1)` used as a scale).
            if psup != sup && !vector && self.c.chance(50) {
                self.scalar(name, psup);
                return;
            }
        }
        if vector {
            if ty.starts_with("simplex") {
                self.simplexes.push(name.clone());
            } else {
                self.k_vectors.push(name.clone());
            }
            self.vector(&name, sup);
        } else {
            self.scalar(name, sup);
        }
    }

    fn plate_latent(&mut self) {
        let name = self.name("u");
        if !self.simplexes.is_empty() && self.c.chance(25) {
            // A mixture assignment reading a K-vector at it.
            let w = self.c.pick(&self.simplexes).clone();
            self.line(1, &format!("{name}[i] ~ Categorical({w})"));
            if let Some(v) = self.k_vectors.first().cloned() {
                self.vals.push(Val {
                    outside: None,
                    inside: format!("{v}[{name}[i]]"),
                    sup: Sup::Real,
                });
            }
            return;
        }
        let sup = *self.c.pick(&[Sup::Real, Sup::Real, Sup::Positive, Sup::Unit]);
        let prior = self.any_prior(sup, 1);
        self.line(1, &format!("{name}[i] ~ {prior}"));
        self.vals.push(Val {
            outside: None,
            inside: format!("{name}[i]"),
            sup,
        });
    }

    fn scan(&mut self) {
        let Some(real) = self.obs.iter().find(|o| o.ty == "real").cloned() else {
            return;
        };
        let name = self.name("h");
        let first = self.expr(Sup::Real, false, 1);
        let coef = self.expr(Sup::Unit, false, 0);
        let step = if self.c.chance(50) {
            format!("{coef} * {name}[t - 1] + {}[t - 1]", real.name)
        } else {
            let e = self.expr(Sup::Real, false, 0);
            format!("{name}[t - 1] * {coef} + {e}")
        };
        let from = if self.c.chance(70) { "2" } else { "1" };
        self.line(0, &format!("let {name} = scan t in {from}..N from {first} {{"));
        self.line(1, &step);
        self.line(0, "}");
        self.vals.push(Val {
            outside: Some(format!("{name}[0]")),
            inside: format!("{name}[i]"),
            sup: Sup::Real,
        });
    }

    /// An expression of support `sup` (at least: a positive value is also real).
    fn expr(&mut self, sup: Sup, inside: bool, depth: usize) -> String {
        self.expr_at(sup, inside, depth)
    }

    fn leaf(&mut self, sup: Sup, inside: bool) -> String {
        let fits: Vec<String> = self
            .vals
            .iter()
            .filter(|v| match sup {
                Sup::Real => true,
                Sup::Positive => v.sup == Sup::Positive,
                Sup::Unit => v.sup == Sup::Unit,
            })
            .filter_map(|v| {
                if inside {
                    Some(v.inside.clone())
                } else {
                    v.outside.clone()
                }
            })
            .collect();
        if !fits.is_empty() && self.c.chance(60) {
            return self.c.pick(&fits).clone();
        }
        match sup {
            Sup::Real => format!("{}", self.c.real(-3.0, 3.0)),
            Sup::Positive => format!("{}", self.c.real(0.1, 5.0)),
            Sup::Unit => format!("{}", self.c.real(0.05, 0.95)),
        }
    }

    fn expr_at(&mut self, sup: Sup, inside: bool, depth: usize) -> String {
        if depth == 0 || self.c.chance(45) {
            // Now and then a value of the wrong support: the checker must say so, not panic.
            if self.c.chance(3) {
                return self.leaf(Sup::Real, inside);
            }
            return self.leaf(sup, inside);
        }
        let d = depth - 1;
        match sup {
            Sup::Real => match self.c.below(9) {
                0 => format!(
                    "{} + {}",
                    self.expr_at(Sup::Real, inside, d),
                    self.expr_at(Sup::Real, inside, d)
                ),
                1 => format!(
                    "{} * {}",
                    self.expr_at(Sup::Real, inside, d),
                    self.expr_at(Sup::Real, inside, d)
                ),
                2 => format!(
                    "({} - {})",
                    self.expr_at(Sup::Real, inside, d),
                    self.expr_at(Sup::Real, inside, d)
                ),
                3 => format!("log({})", self.expr_at(Sup::Positive, inside, d)),
                4 => format!("tanh({})", self.expr_at(Sup::Real, inside, d)),
                5 => format!(
                    "{} / {}",
                    self.expr_at(Sup::Real, inside, d),
                    self.expr_at(Sup::Positive, inside, d)
                ),
                6 => format!(
                    "where({} > 0, {}, {})",
                    self.expr_at(Sup::Real, inside, d),
                    self.expr_at(Sup::Real, inside, d),
                    self.expr_at(Sup::Real, inside, d)
                ),
                7 => format!("logit({})", self.expr_at(Sup::Unit, inside, d)),
                _ => format!("-{}", self.expr_at(Sup::Positive, inside, d)),
            },
            Sup::Positive => match self.c.below(7) {
                0 => format!("exp({})", self.expr_at(Sup::Real, inside, d)),
                1 => format!("softplus({})", self.expr_at(Sup::Real, inside, d)),
                2 => format!(
                    "{} + {}",
                    self.expr_at(Sup::Positive, inside, d),
                    self.expr_at(Sup::Positive, inside, d)
                ),
                3 => format!(
                    "{} * {}",
                    self.expr_at(Sup::Positive, inside, d),
                    self.expr_at(Sup::Positive, inside, d)
                ),
                4 => format!("sqrt({})", self.expr_at(Sup::Positive, inside, d)),
                5 => format!("square({}) + 0.5", self.expr_at(Sup::Real, inside, d)),
                _ => format!("{} ^ 2", self.expr_at(Sup::Positive, inside, d)),
            },
            Sup::Unit => match self.c.below(3) {
                0 => format!("sigmoid({})", self.expr_at(Sup::Real, inside, d)),
                1 => format!(
                    "{} * {}",
                    self.expr_at(Sup::Unit, inside, d),
                    self.expr_at(Sup::Unit, inside, d)
                ),
                _ => format!("1 - {}", self.expr_at(Sup::Unit, inside, d)),
            },
        }
    }

    /// A likelihood whose support holds data of type `ty`.
    fn likelihood(&mut self, ty: &str, inside: bool) -> String {
        let e = |g: &mut Self, s: Sup| g.expr_at(s, inside, 2);
        match ty {
            "real" | "bounded(-3, 3)" => {
                if !self.simplexes.is_empty() && self.c.chance(15) {
                    let w = self.c.pick(&self.simplexes).clone();
                    let (loc, scale) = (e(self, Sup::Real), e(self, Sup::Positive));
                    let comp = self
                        .c
                        .pick(&["Normal", "StudentT", "Cauchy", "Laplace"])
                        .to_string();
                    let df = if comp == "StudentT" { "4, " } else { "" };
                    return format!("Mixture({w}, {comp}({df}{loc}, {scale}))");
                }
                self.real_prior_at(inside)
            }
            "positive" => {
                if !self.simplexes.is_empty() && self.c.chance(15) {
                    let w = self.c.pick(&self.simplexes).clone();
                    let r = e(self, Sup::Positive);
                    return format!("Mixture({w}, Exponential({r}))");
                }
                if self.c.chance(15) {
                    let (loc, scale) = (e(self, Sup::Real), e(self, Sup::Positive));
                    return format!("Normal({loc}, {scale}) T[0, ]");
                }
                match self.c.below(8) {
                    0 => format!("HalfNormal({})", e(self, Sup::Positive)),
                    1 => format!("LogNormal({}, {})", e(self, Sup::Real), e(self, Sup::Positive)),
                    2 => format!("Gamma({}, {})", e(self, Sup::Positive), e(self, Sup::Positive)),
                    3 => format!(
                        "InverseGamma({}, {})",
                        e(self, Sup::Positive),
                        e(self, Sup::Positive)
                    ),
                    4 => format!("Exponential({})", e(self, Sup::Positive)),
                    5 => format!("HalfCauchy({})", e(self, Sup::Positive)),
                    6 => format!(
                        "HalfStudentT({}, {})",
                        e(self, Sup::Positive),
                        e(self, Sup::Positive)
                    ),
                    _ => format!("Weibull({}, {})", e(self, Sup::Positive), e(self, Sup::Positive)),
                }
            }
            "unit" => match self.c.below(3) {
                0 => format!("Bernoulli({})", e(self, Sup::Unit)),
                _ => format!("Beta({}, {})", e(self, Sup::Positive), e(self, Sup::Positive)),
            },
            "binary" => match self.c.below(3) {
                0 => format!("Bernoulli({})", e(self, Sup::Unit)),
                1 => format!("Bernoulli(logits = {})", e(self, Sup::Real)),
                _ => format!("Binomial(1, {})", e(self, Sup::Unit)),
            },
            "count" => match self.c.below(7) {
                0 => format!("Poisson({})", e(self, Sup::Positive)),
                1 => format!("Poisson(log_rate = {})", e(self, Sup::Real)),
                2 => format!(
                    "NegativeBinomial({}, {})",
                    e(self, Sup::Positive),
                    e(self, Sup::Positive)
                ),
                3 => format!(
                    "NegativeBinomial(log_mu = {}, phi = {})",
                    e(self, Sup::Real),
                    e(self, Sup::Positive)
                ),
                4 => format!("Binomial(6, logits = {})", e(self, Sup::Real)),
                5 => format!(
                    "BetaBinomial(6, {}, {})",
                    e(self, Sup::Positive),
                    e(self, Sup::Positive)
                ),
                _ => {
                    if let Some(w) = self.simplexes.first().cloned() {
                        format!("Mixture({w}, Poisson({}))", e(self, Sup::Positive))
                    } else {
                        format!("Poisson({})", e(self, Sup::Positive))
                    }
                }
            },
            // Integer data in 0..K: a category, or an index into a K-vector.
            _ => {
                if let (true, Some(w)) = (self.c.chance(50), self.simplexes.first().cloned()) {
                    format!("Categorical({w})")
                } else if self.c.chance(50) {
                    let zeros = ", 0".repeat(self.k - 1);
                    format!("Categorical(logits = [{}{zeros}])", e(self, Sup::Real))
                } else {
                    "Categorical(fill(1.0 / K, K))".to_string()
                }
            }
        }
    }

    fn real_prior_at(&mut self, inside: bool) -> String {
        let loc = self.expr_at(Sup::Real, inside, 2);
        let scale = self.expr_at(Sup::Positive, inside, 2);
        match self.c.below(7) {
            0 => format!(
                "StudentT({}, {loc}, {scale})",
                self.expr_at(Sup::Positive, inside, 0)
            ),
            1 => format!("Cauchy({loc}, {scale})"),
            2 => format!("Laplace({loc}, {scale})"),
            3 => format!("Gumbel({loc}, {scale})"),
            4 => format!("Normal(loc = {loc}, precision = {scale})"),
            _ => format!("Normal({loc}, {scale})"),
        }
    }
}

/// What `vinf check`, `vinf graph` and `vinf fit --steps 10` do with a model, in process: the
/// data files are written to `dir`, which the model's `from` paths are read against. A
/// diagnostic anywhere ends the run quietly (rendered, as the command line would); a panic is
/// the caller's to catch.
pub fn drive(source: &str, files: &[(String, String)], dir: &Path) {
    std::fs::create_dir_all(dir).expect("a scratch folder");
    for (name, text) in files {
        std::fs::write(dir.join(name), text).expect("a data file");
    }
    let opts = vi::LoadOptions {
        require_data: true,
        ..vi::LoadOptions::default()
    };
    let mut loaded = match vi::load_str("random", "random.vi", source, dir, &opts) {
        Ok(l) => l,
        Err(d) => {
            let _ = d.render(false);
            return;
        }
    };
    // check
    let _ = vi::report::model_summary(&loaded.model, &loaded.data);
    let _ = vi::diag::Diagnostics(loaded.model.warnings.clone()).render(false);
    // graph
    let _ = vi::graph::to_text(&loaded.model);
    let _ = vi::graph::to_dot(&loaded.model);
    // fit --steps 10
    let settings = &mut loaded.model.settings;
    settings.set("steps", vi::settings::Value::Number(10.0));
    settings.remove("epochs");
    let mut fit_opts = vi::infer::FitOptions::from_settings(&loaded.model.settings, &loaded.model);
    fit_opts.diagnostic_draws = 50;
    fit_opts.restarts = fit_opts.restarts.min(2);
    match vi::infer::fit(&loaded, &fit_opts, &mut |_| {}) {
        Ok(out) => {
            let _ = vi::report::narrate::narration(&out, "");
            let _ = vi::report::fit::write_outputs(&dir.join("out"), &loaded.model, &out);
        }
        Err(d) => {
            let _ = d.render(false);
        }
    }
}
