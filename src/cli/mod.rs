//! The `vinf` command line: arguments in, library calls, text and exit codes out.
//!
//! The only room that prints. It parses flags (the fit settings come from the settings table,
//! [`flags`]), calls the library, and says what happened; it computes nothing of a fit itself.
//!
//! Exit codes: 0 success, 1 a problem with the model or its data (printed as diagnostics),
//! 2 a usage error, and for `fit` 3 stalled, 4 diverged, 130 interrupted.

mod fit;
mod flags;
mod lsp;
mod progress;
mod resume;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand, ValueEnum};

use vi::data::Binding;
use vi::diag::Diagnostics;
use vi::LoadOptions;

/// Write to stdout; a closed pipe (`vinf ... | head`) ends the program quietly, as other tools do.
fn emit(text: &str) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    if stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .is_err()
    {
        std::process::exit(0);
    }
}

macro_rules! out {
    ($($t:tt)*) => { $crate::cli::emit(&format!($($t)*)) };
}

macro_rules! outln {
    () => { $crate::cli::emit("\n") };
    ($($t:tt)*) => { $crate::cli::emit(&format!("{}\n", format!($($t)*))) };
}

pub(crate) use outln;

#[derive(Parser)]
#[command(
    name = "vinf",
    version,
    about = "A probabilistic programming language for variational inference",
    long_about = "Write a generative model in a .vi file; vinf checks it, shows its graph, and fits it by \
                  closed-form CAVI where it is conjugate and by reparameterised gradients otherwise."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// How diagnostics are printed on stderr: `human` (source excerpts) or `json` (one object
    /// per line: code, severity, message, help, file, and labels with lines and columns).
    #[arg(long, global = true, value_enum, default_value_t = MessageFormat::Human)]
    message_format: MessageFormat,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum MessageFormat {
    Human,
    Json,
}

static MESSAGE_FORMAT: std::sync::OnceLock<MessageFormat> = std::sync::OnceLock::new();

/// Print diagnostics on stderr in the format asked for.
fn report(diags: &Diagnostics) {
    if MESSAGE_FORMAT.get() == Some(&MessageFormat::Json) {
        for d in diags.iter() {
            eprintln!("{}", d.to_json());
        }
    } else {
        eprintln!("{}", diags.render(std::io::stderr().is_terminal()));
    }
}

/// A panic that reached `main`: said as a diagnostic in the format asked for (JSON tools get
/// JSON), with the exit code Rust gives a panic.
pub fn internal_error(what: &str) -> ExitCode {
    let d = vi::diag::Diagnostic::new("vi::internal", format!("internal error in vi: {what}"))
        .help("this is a bug; please report it with the model and data that caused it");
    report(&Diagnostics::from(d));
    ExitCode::from(EXIT_INTERNAL)
}

#[derive(Subcommand)]
enum Command {
    /// Parse and check a model (and its data); print a summary or diagnostics.
    Check {
        /// The model file.
        model: PathBuf,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Fit a model: CAVI where it is conjugate, reparameterised gradients otherwise.
    Fit(fit::FitArgs),
    /// Draw from a fitted model: posterior draws of the latents and replicated data.
    Sample {
        /// The model file.
        model: PathBuf,
        /// The folder a `vinf fit` wrote (it reads params.safetensors there).
        #[arg(long)]
        from: PathBuf,
        /// Number of draws.
        #[arg(short = 'n', long = "draws", default_value_t = 100, value_parser = at_least_one)]
        n: usize,
        /// Where to write the draws (default FROM/samples.csv, or FROM/samples.zarr for `zarr`).
        #[arg(long)]
        out: Option<PathBuf>,
        /// `long`: one row per value (`draw,variable,kind,index,value`); `cmdstan`: one row per
        /// draw in CmdStan's layout (`theta.1`, `y_rep.3`), for `arviz.from_cmdstan`; `zarr`:
        /// an ArviZ InferenceData store (`posterior`, `posterior_predictive`, `log_likelihood`,
        /// `observed_data`) for `arviz.from_zarr` or `xarray.open_datatree(engine="zarr")`.
        #[arg(long, value_enum, default_value_t = SampleFormat::Long)]
        format: SampleFormat,
        /// Random seed.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Estimate log p(x) per row of a fitted model by importance sampling (k draws per row).
    Eval {
        /// The model file.
        model: PathBuf,
        /// The folder a `vinf fit` wrote (it reads params.safetensors there, and writes eval.json).
        #[arg(long)]
        from: PathBuf,
        /// Importance samples per row (the IWAE paper reports k = 5000).
        #[arg(short = 'k', long, default_value_t = 5000, value_parser = at_least_one)]
        k: usize,
        /// Evaluate at most this many rows (the first ones).
        #[arg(long, value_parser = at_least_one)]
        rows: Option<usize>,
        /// Random seed.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Leave-one-out cross-validation of a fitted model (PSIS-LOO): elpd, its se, p_loo and the
    /// k-hat of every observation, from draws of the fitted q.
    Loo {
        /// The model file.
        model: PathBuf,
        /// The folder a `vinf fit` wrote (it reads params.safetensors there, and writes loo.json).
        #[arg(long)]
        from: PathBuf,
        /// Draws from q.
        #[arg(short = 'n', long = "draws", default_value_t = 2000, value_parser = at_least_one)]
        n: usize,
        /// Random seed.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Serve the Language Server Protocol over stdio, for editors: diagnostics as you type,
    /// hover, go-to-definition and completion.
    Lsp,
    /// Print a shell completion script: `vinf completions bash > /etc/bash_completion.d/vinf`,
    /// `vinf completions zsh > ~/.zfunc/_vinf`, `vinf completions fish > ~/.config/fish/completions/vinf.fish`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff): `vinf man > vinf.1 && man ./vinf.1`.
    Man,
    /// Print the lowered graph of a model.
    Graph {
        /// The model file.
        model: PathBuf,
        /// `text` lists every node; `dot` is a Graphviz plate diagram.
        #[arg(long, value_enum, default_value_t = GraphFormat::Text)]
        format: GraphFormat,
        #[command(flatten)]
        data: DataArgs,
    },
}

#[derive(clap::Args, Clone)]
struct DataArgs {
    /// Bind data: `NAME=PATH` (a CSV column named NAME, columns NAME0.., or the whole table),
    /// `NAME=PATH:COLS` (columns by name, position, or range a..b), or a bare `PATH` for every
    /// declared name the file has columns for. Formats: CSV with a header row, NumPy .npy, IDX
    /// (MNIST), .amat (whitespace-separated rows), MATLAB v5 .mat (one numeric variable); any of
    /// them gzipped (.gz).
    #[arg(long = "data", value_name = "NAME=PATH", value_parser = Binding::parse)]
    bindings: Vec<Binding>,
    /// Do not read the model's default data (`data ... from "file"`).
    #[arg(long)]
    no_default_data: bool,
}

impl DataArgs {
    fn options(&self, require_data: bool) -> LoadOptions {
        LoadOptions {
            bindings: self.bindings.clone(),
            use_defaults: !self.no_default_data,
            require_data,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum SampleFormat {
    Long,
    Cmdstan,
    Zarr,
}

#[derive(Clone, Copy, ValueEnum)]
enum GraphFormat {
    Text,
    Dot,
}

/// Exit codes beyond 0 (success), 1 (model or data) and 2 (usage, clap's own).
const EXIT_STALLED: u8 = 3;
const EXIT_DIVERGED: u8 = 4;
/// Stopped by Ctrl-C (128 + SIGINT, as shells report it), with a checkpoint to resume from.
const EXIT_INTERRUPTED: u8 = 130;
/// A bug in vi (a panic), as Rust reports one.
const EXIT_INTERNAL: u8 = 101;

/// Parse the command line, run it, and say how it went.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    MESSAGE_FORMAT.get_or_init(|| cli.message_format);
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(diags) => {
            report(&diags);
            ExitCode::from(1)
        }
    }
}

fn run(cli: Cli) -> Result<u8, Diagnostics> {
    match cli.command {
        Command::Check { model, data } => {
            let loaded = load(&model, &data.options(false))?;
            out!("{}", vi::report::model_summary(&loaded.model, &loaded.data));
        }
        Command::Fit(args) => return fit::fit(args),
        Command::Sample {
            model,
            from,
            n,
            out,
            format,
            seed,
            data,
        } => {
            let loaded = load(&model, &data.options(true))?;
            let (state, meta) = read_fit(&from, &loaded)?;
            let draws = vi::infer::sample::draw(&loaded, &state, &meta, n, seed)?;
            let method = meta.get("method").map_or("vinf", String::as_str);
            let default = if format == SampleFormat::Zarr {
                "samples.zarr"
            } else {
                "samples.csv"
            };
            let path = out.unwrap_or_else(|| from.join(default));
            match format {
                SampleFormat::Long => {
                    let text = vi::infer::sample::to_csv(&draws, n);
                    vi::store::write_atomic(&path, text.as_bytes()).map_err(Diagnostics::from)?;
                }
                SampleFormat::Cmdstan => {
                    let text = vi::infer::sample::to_cmdstan(&draws, n, &loaded.model.name, method);
                    vi::store::write_atomic(&path, text.as_bytes()).map_err(Diagnostics::from)?;
                }
                SampleFormat::Zarr => {
                    let log_lik =
                        vi::infer::posterior::loo::pointwise_log_lik(&loaded, &state, &meta, n, seed ^ 0x11)
                            .map_err(|d| {
                                let why = d.0.first().map_or(String::new(), |d| d.message.clone());
                                eprintln!("note: no log_likelihood group: {why}");
                            })
                            .ok();
                    let observed = vi::infer::sample::observed(&loaded);
                    let groups = vi::infer::arviz::groups(&draws, n, &observed, log_lik.as_ref(), method);
                    let mut attrs = vi::infer::arviz::attributes(method);
                    attrs.insert("model".into(), loaded.model.name.clone().into());
                    vi::store::zarr::write_store(&path, attrs, &groups).map_err(Diagnostics::from)?;
                }
            }
            for d in &draws {
                outln!(
                    "{:<12} {:<10} {} values per draw",
                    d.name,
                    d.kind,
                    d.shape.iter().product::<usize>().max(1)
                );
            }
            outln!("wrote {n} draws to {}", path.display());
        }
        Command::Eval {
            model,
            from,
            k,
            rows,
            seed,
            data,
        } => {
            let given = !data.bindings.is_empty();
            let loaded = load(&model, &data.options(true))?;
            let (state, meta) = read_fit(&from, &loaded)?;
            let mut bar = progress::RowBar::new();
            let result = vi::infer::eval::evaluate(
                &loaded,
                &state,
                &meta,
                given,
                k,
                rows,
                seed,
                &mut |done, total| bar.update(done, total),
            )?;
            bar.finish();
            outln!("{}", result.describe());
            let path = from.join("eval.json");
            vi::store::write_atomic(&path, result.to_json().as_bytes()).map_err(Diagnostics::from)?;
            outln!("wrote {}", path.display());
        }
        Command::Loo {
            model,
            from,
            n,
            seed,
            data,
        } => {
            let loaded = load(&model, &data.options(true))?;
            let (state, meta) = read_fit(&from, &loaded)?;
            let result = vi::infer::posterior::loo::compute(&loaded, &state, &meta, n, seed)?;
            out!("{}", result.describe());
            let path = from.join("loo.json");
            vi::store::write_atomic(&path, result.to_json().as_bytes()).map_err(Diagnostics::from)?;
            outln!("wrote {}", path.display());
        }
        Command::Completions { shell } => {
            let mut text = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "vinf", &mut text);
            out!("{}", String::from_utf8_lossy(&text));
        }
        Command::Man => {
            let mut text = Vec::new();
            clap_mangen::Man::new(Cli::command())
                .render(&mut text)
                .map_err(|e| {
                    Diagnostics::from(vi::diag::Diagnostic::new(
                        "vi::io::write",
                        format!("cannot render the manual: {e}"),
                    ))
                })?;
            out!("{}", String::from_utf8_lossy(&text));
        }
        Command::Lsp => {
            if let Err(e) = lsp::serve() {
                eprintln!("vinf lsp: {e}");
                return Ok(1);
            }
        }
        Command::Graph { model, format, data } => {
            let loaded = load(&model, &data.options(false))?;
            match format {
                GraphFormat::Text => out!("{}", vi::graph::to_text(&loaded.model)),
                GraphFormat::Dot => out!("{}", vi::graph::to_dot(&loaded.model)),
            }
        }
    }
    Ok(0)
}

/// Load a model and its data, showing the checker's warnings (they do not stop anything).
fn load(model: &std::path::Path, opts: &LoadOptions) -> Result<vi::Loaded, Diagnostics> {
    let loaded = vi::load(model, opts)?;
    let warnings = &loaded.model.warnings;
    if !warnings.is_empty() {
        report(&Diagnostics(warnings.clone()));
    }
    Ok(loaded)
}

/// The tensors and metadata a `vinf fit` saved in `dir`; a fit of another model is refused.
fn read_fit(dir: &std::path::Path, loaded: &vi::Loaded) -> Result<FitState, Diagnostics> {
    vi::infer::posterior::read_fit(dir, loaded)
}

type FitState = (
    Vec<vi::infer::NamedTensor>,
    std::collections::HashMap<String, String>,
);

fn at_least_one(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        Ok(_) => Err("must be at least 1".into()),
        Err(e) => Err(e.to_string()),
    }
}
