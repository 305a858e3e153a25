//! The `vinf` command line: arguments in, library calls, exit codes out.
//!
//! Exit codes: 0 success, 1 a problem with the model or its data (printed as diagnostics),
//! 2 a usage error.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use vi::data::Binding;
use vi::diag::Diagnostics;
use vi::infer::checkpoint::Checkpoint;
use vi::LoadOptions;

/// Write to stdout; a closed pipe (`vi ... | head`) ends the program quietly, as other tools do.
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
    ($($t:tt)*) => { emit(&format!($($t)*)) };
}

macro_rules! outln {
    () => { emit("\n") };
    ($($t:tt)*) => { emit(&format!("{}\n", format!($($t)*))) };
}

#[derive(Parser)]
#[command(
    name = "vinf",
    version,
    about = "A probabilistic programming language for variational inference",
    long_about = "Write a generative model in a .vi file; vi checks it, shows its graph, and fits it by \
                  closed-form CAVI where it is conjugate and by reparameterised gradients otherwise."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
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
    Fit(FitArgs),
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
        /// Where to write the draws (CSV; default FROM/samples.csv).
        #[arg(long)]
        out: Option<PathBuf>,
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

#[derive(clap::Args)]
struct FitArgs {
    /// The model file.
    model: PathBuf,
    #[command(flatten)]
    data: DataArgs,
    /// Inference method (`auto` picks CAVI when every latent is conjugate).
    #[arg(long, value_enum)]
    method: Option<MethodArg>,
    /// Random seed; the same seed gives the same numbers.
    #[arg(long)]
    seed: Option<u64>,
    /// The most optimisation steps (or CAVI sweeps).
    #[arg(long)]
    steps: Option<u64>,
    /// Passes over the data, for models with batched plates (instead of --steps).
    #[arg(long)]
    epochs: Option<u64>,
    /// Learning rate.
    #[arg(long)]
    lr: Option<f64>,
    /// Monte-Carlo samples per step.
    #[arg(long)]
    samples: Option<u64>,
    /// Fraction of the batched plate's rows held out of training and measured after every
    /// epoch (the last rows; default 0.1 for models with networks, else 0).
    #[arg(long, value_parser = holdout_fraction)]
    holdout: Option<f64>,
    /// Relative ELBO change that counts as converged (0: run every step).
    #[arg(long)]
    tol: Option<f64>,
    /// The automatic guide's covariance.
    #[arg(long, value_enum)]
    guide: Option<GuideArg>,
    #[arg(long, value_enum)]
    optimizer: Option<OptimizerArg>,
    /// ELBO estimator: `mc` (L^A) or `analytic` (L^B, closed-form KL).
    #[arg(long, value_enum)]
    estimator: Option<EstimatorArg>,
    /// Random restarts; the best ELBO is kept.
    #[arg(long)]
    restarts: Option<u64>,
    /// Clip gradients to this global norm.
    #[arg(long)]
    clip: Option<f64>,
    /// Learning-rate decay: lr / (1 + decay * step).
    #[arg(long)]
    decay: Option<f64>,
    /// On a non-finite ELBO or gradient, go back to the last finite parameters and halve the
    /// learning rate, up to N times, before stopping as diverged (default 0).
    #[arg(long, value_name = "N")]
    lr_backoff: Option<u64>,
    /// Draws from the fitted q for the fit diagnostics (PSIS k-hat, IW bound); 0 turns them off.
    #[arg(long)]
    diagnostic_draws: Option<usize>,
    /// Output folder (default out/<model name>).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Where tensors live: `cpu`, or `cuda` in a build with `--features cuda` (its default).
    #[arg(long, value_enum)]
    device: Option<DeviceArg>,
    /// Steps between checkpoints of a gradient fit (written to the output folder, and on
    /// Ctrl-C; removed when the fit ends).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    checkpoint_every: Option<u64>,
    /// Continue the interrupted fit whose output folder is DIR, from its last checkpoint, with
    /// the settings and data it was started with.
    #[arg(long, value_name = "DIR", conflicts_with_all = [
        "bindings", "no_default_data", "method", "seed", "steps", "epochs", "lr", "samples",
        "holdout", "tol", "guide", "optimizer", "estimator", "restarts", "clip", "decay", "lr_backoff",
        "diagnostic_draws", "out", "device", "checkpoint_every",
    ])]
    resume: Option<PathBuf>,
}

/// What a checkpoint records of the command that started its fit, to resume it.
#[derive(serde::Serialize, serde::Deserialize)]
struct RunRecord {
    /// The working folder, against which the arguments' paths are read.
    cwd: PathBuf,
    /// The arguments after `vinf fit`.
    args: Vec<String>,
    /// The model's text, to refuse resuming with an edited model.
    model: String,
}

#[derive(Clone, Copy, ValueEnum)]
enum MethodArg {
    Auto,
    Cavi,
    Svi,
}

#[derive(Clone, Copy, ValueEnum)]
enum GuideArg {
    MeanField,
    FullRank,
}

#[derive(Clone, Copy, ValueEnum)]
enum OptimizerArg {
    Adam,
    Adagrad,
    Rmsprop,
    Sgd,
}

#[derive(Clone, Copy, ValueEnum)]
enum EstimatorArg {
    Mc,
    Analytic,
}

#[derive(Clone, Copy, ValueEnum, PartialEq)]
enum DeviceArg {
    Cpu,
    Cuda,
}

#[derive(clap::Args)]
struct DataArgs {
    /// Bind data: `NAME=PATH` (a CSV column named NAME, columns NAME0.., or the whole table),
    /// `NAME=PATH:COLS` (columns by name, position, or range a..b), or a bare `PATH` for every
    /// declared name the file has columns for. CSV, .npy and IDX (MNIST), gzipped or not.
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

#[derive(Clone, Copy, ValueEnum)]
enum GraphFormat {
    Text,
    Dot,
}

/// Training allocates and frees the same large buffers every step. glibc hands buffers above
/// its mmap threshold back to the kernel on free and pays page faults and zeroing to map them
/// again; keeping them in the heap is 10% of a VAE step.
fn keep_large_buffers() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator tunables; it is called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 30);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
    }
}

fn main() -> ExitCode {
    keep_large_buffers();
    quiet_panics();
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(diags) => {
            eprintln!("{}", diags.render(std::io::stderr().is_terminal()));
            ExitCode::from(1)
        }
    }
}

/// Exit codes of `vinf fit` beyond 0 (converged) and 1 (model or data).
const EXIT_USAGE: u8 = 2;
const EXIT_STALLED: u8 = 3;
const EXIT_DIVERGED: u8 = 4;
/// Stopped by Ctrl-C (128 + SIGINT, as shells report it), with a checkpoint to resume from.
const EXIT_INTERRUPTED: u8 = 130;

fn run(cli: Cli) -> Result<u8, Diagnostics> {
    match cli.command {
        Command::Check { model, data } => {
            let loaded = vi::load(&model, &data.options(false))?;
            out!("{}", vi::report::model_summary(&loaded.model, &loaded.data));
        }
        Command::Fit(args) => return fit(args),
        Command::Sample {
            model,
            from,
            n,
            out,
            seed,
            data,
        } => {
            let loaded = vi::load(&model, &data.options(true))?;
            let (state, meta) = read_fit(&from, &loaded)?;
            let draws = vi::infer::sample::draw(&loaded, &state, &meta, n, seed)?;
            let path = out.unwrap_or_else(|| from.join("samples.csv"));
            vi::store::write_atomic(&path, vi::infer::sample::to_csv(&draws, n).as_bytes())
                .map_err(Diagnostics::from)?;
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
            let loaded = vi::load(&model, &data.options(true))?;
            let (state, meta) = read_fit(&from, &loaded)?;
            let result = vi::infer::eval::evaluate(
                &loaded,
                &state,
                &meta,
                given,
                k,
                rows,
                seed,
                &mut |done, total| {
                    eprint!("\r{done}/{total} rows");
                },
            )?;
            eprintln!();
            outln!("{}", result.describe());
            let path = from.join("eval.json");
            vi::store::write_atomic(&path, result.to_json().as_bytes()).map_err(Diagnostics::from)?;
            outln!("wrote {}", path.display());
        }
        Command::Graph { model, format, data } => {
            let loaded = vi::load(&model, &data.options(false))?;
            match format {
                GraphFormat::Text => out!("{}", vi::graph::to_text(&loaded.model)),
                GraphFormat::Dot => out!("{}", vi::graph::to_dot(&loaded.model)),
            }
        }
    }
    Ok(0)
}

/// A device this build can use: one build computes on one device.
fn check_device(asked: Option<DeviceArg>) -> Result<(), Diagnostics> {
    let built = vi::backend::DEVICE;
    let refuse = |msg: &str, help: &str| {
        Err(Diagnostics::from(
            vi::diag::Diagnostic::new("vi::device", msg.to_string()).help(help.to_string()),
        ))
    };
    match (asked, built) {
        (Some(DeviceArg::Cuda), "cpu") => refuse(
            "this build of vi has no CUDA support",
            "rebuild with `cargo build --release --features cuda` on a machine with the CUDA toolkit, or use `--device cpu`",
        ),
        (Some(DeviceArg::Cpu), "cuda") => refuse(
            "this build of vi computes on CUDA",
            "build without `--features cuda` for the CPU, or leave out `--device`",
        ),
        _ => vi::backend::device_available().or_else(|e| {
            refuse(&e, "check `nvidia-smi`, or use a build without `--features cuda`")
        }),
    }
}

/// The tensors and metadata a `vinf fit` saved in `dir`, with a warning when they belong to
/// another model.
fn read_fit(dir: &std::path::Path, loaded: &vi::Loaded) -> Result<FitState, Diagnostics> {
    let (state, meta) =
        vi::store::read_safetensors(&dir.join("params.safetensors")).map_err(Diagnostics::from)?;
    if let Some(m) = meta.get("model") {
        if *m != loaded.model.name {
            eprintln!(
                "warning: {} was fitted for model `{m}`, not `{}`",
                dir.display(),
                loaded.model.name
            );
        }
    }
    Ok((state, meta))
}

type FitState = (
    Vec<vi::infer::NamedTensor>,
    std::collections::HashMap<String, String>,
);

/// The checkpoint in `dir` and the arguments of the fit it belongs to, read against the folder
/// that fit ran in (the process moves there).
fn resume_from(model: &std::path::Path, dir: &std::path::Path) -> Result<(FitArgs, Checkpoint), Diagnostics> {
    let bad = |msg: String, help: &str| {
        Diagnostics::from(vi::diag::Diagnostic::new("vi::resume", msg).help(help.to_string()))
    };
    let dir =
        std::path::absolute(dir).map_err(|e| bad(format!("cannot read `{}`: {e}", dir.display()), ""))?;
    let ck = Checkpoint::load(&dir.join(vi::infer::checkpoint::FILE)).map_err(Diagnostics::from)?;
    let record: RunRecord = serde_json::from_str(&ck.record).map_err(|e| {
        bad(
            format!(
                "the checkpoint in `{}` does not say how its fit was started: {e}",
                dir.display()
            ),
            "fit the model afresh",
        )
    })?;
    let text = std::fs::read_to_string(model).map_err(|e| {
        bad(
            format!("cannot read `{}`: {e}", model.display()),
            "check the path",
        )
    })?;
    if text != record.model {
        return Err(bad(
            format!(
                "`{}` is not the model the checkpoint in `{}` was fitted with",
                model.display(),
                dir.display()
            ),
            "the model changed since the fit started: resume with the model as it was, or fit it afresh",
        ));
    }
    std::env::set_current_dir(&record.cwd).map_err(|e| {
        bad(
            format!("cannot go to `{}`, where the fit ran: {e}", record.cwd.display()),
            "resume on the machine and in the folder tree the fit started in",
        )
    })?;
    let argv = ["vinf".to_string(), "fit".to_string()]
        .into_iter()
        .chain(record.args);
    let Command::Fit(mut args) = Cli::try_parse_from(argv)
        .map_err(|e| {
            bad(
                format!("the recorded command line does not read: {e}"),
                "fit the model afresh",
            )
        })?
        .command
    else {
        unreachable!("a `fit` command line")
    };
    args.out = Some(dir);
    Ok((args, ck))
}

/// Ctrl-C stops a fit at the end of its step with a checkpoint; a second Ctrl-C ends it at once.
fn on_interrupt() -> std::sync::Arc<std::sync::atomic::AtomicBool> {
    use std::sync::atomic::Ordering;
    let flag = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let set = flag.clone();
    let _ = ctrlc::set_handler(move || {
        if set.swap(true, Ordering::SeqCst) {
            std::process::exit(EXIT_INTERRUPTED.into());
        }
        eprintln!("\ninterrupted: stopping after this step (Ctrl-C again to quit at once)");
    });
    flag
}

fn fit(mut args: FitArgs) -> Result<u8, Diagnostics> {
    use vi::settings::Value;
    let mut resumed = None;
    if let Some(dir) = args.resume.take() {
        let model = std::path::absolute(&args.model).unwrap_or(args.model);
        let (recorded, ck) = resume_from(&model, &dir)?;
        args = FitArgs { model, ..recorded };
        eprintln!(
            "resuming `{}` from its checkpoint at step {}",
            dir.display(),
            ck.state.step
        );
        resumed = Some(ck);
    }
    check_device(args.device)?;
    let mut loaded = vi::load(&args.model, &args.data.options(true))?;
    let settings = &mut loaded.model.settings;
    let word = |w: &str| Value::Word(w.to_string());
    if let Some(m) = args.method {
        settings.set(
            "method",
            word(match m {
                MethodArg::Auto => "auto",
                MethodArg::Cavi => "cavi",
                MethodArg::Svi => "svi",
            }),
        );
    }
    if let Some(g) = args.guide {
        settings.set(
            "guide",
            word(match g {
                GuideArg::MeanField => "mean_field",
                GuideArg::FullRank => "full_rank",
            }),
        );
    }
    if let Some(o) = args.optimizer {
        settings.set(
            "optimizer",
            word(match o {
                OptimizerArg::Adam => "adam",
                OptimizerArg::Adagrad => "adagrad",
                OptimizerArg::Rmsprop => "rmsprop",
                OptimizerArg::Sgd => "sgd",
            }),
        );
    }
    if let Some(e) = args.estimator {
        settings.set(
            "estimator",
            word(match e {
                EstimatorArg::Mc => "mc",
                EstimatorArg::Analytic => "analytic",
            }),
        );
    }
    for (key, v) in [
        ("seed", args.seed.map(|x| x as f64)),
        ("steps", args.steps.map(|x| x as f64)),
        ("epochs", args.epochs.map(|x| x as f64)),
        ("lr", args.lr),
        ("samples", args.samples.map(|x| x as f64)),
        ("holdout", args.holdout),
        ("tol", args.tol),
        ("restarts", args.restarts.map(|x| x as f64)),
        ("clip", args.clip),
        ("decay", args.decay),
        ("backoff", args.lr_backoff.map(|x| x as f64)),
    ] {
        if let Some(v) = v {
            match vi::settings::Settings::check_flag(key, Value::Number(v)) {
                Ok(v) => settings.set(key, v),
                Err(why) => {
                    let flag = if key == "backoff" { "lr-backoff" } else { key };
                    eprintln!("error: invalid value '{v}' for '--{flag}': {why}");
                    return Ok(EXIT_USAGE);
                }
            }
        }
    }
    if args.steps.is_some() {
        settings.remove("epochs");
    }
    let mut opts = vi::infer::FitOptions::from_settings(&loaded.model.settings, &loaded.model);
    if let Some(d) = args.diagnostic_draws {
        opts.diagnostic_draws = d;
    }
    let model_name = loaded.model.name.clone();
    let out_dir = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("out").join(&model_name));

    // A resumed fit keeps the record of the command that started it.
    let record = match &resumed {
        Some(ck) => ck.record.clone(),
        None => serde_json::to_string(&RunRecord {
            cwd: std::env::current_dir().unwrap_or_default(),
            args: std::env::args_os()
                .skip(2)
                .map(|a| a.to_string_lossy().into_owned())
                .collect(),
            model: std::fs::read_to_string(&args.model).unwrap_or_default(),
        })
        .expect("JSON of plain values"),
    };
    if resumed.is_none() && out_dir.join(vi::infer::checkpoint::FILE).exists() {
        eprintln!(
            "warning: `{}` holds the checkpoint of an unfinished fit; this fit replaces it \
             (`vinf fit {} --resume {}` would have continued it)",
            out_dir.display(),
            args.model.display(),
            out_dir.display()
        );
    }
    opts.checkpoint = Some(vi::infer::checkpoint::Plan {
        dir: out_dir.clone(),
        every: args
            .checkpoint_every
            .map_or(vi::infer::checkpoint::DEFAULT_EVERY, |n| n as usize),
        record,
        interrupt: on_interrupt(),
        resume: resumed,
    });

    let mut bar = progress::Reporter::new(opts.steps.unwrap_or(0));
    let out = vi::infer::fit(&loaded, &opts, &mut |p| bar.update(p))?;
    bar.finish();

    outln!("method: {}", out.method.name());
    for r in &out.reasons {
        outln!("  {r}");
    }
    let unit = if out.method == vi::infer::Method::Cavi {
        "sweeps"
    } else {
        "steps"
    };
    match out.epochs.last() {
        // Per row, as the epochs were reported.
        Some(e) => outln!(
            "{} after {} {unit} ({} epochs) in {:.2} s; ELBO {:.3} per row{}",
            out.status.name(),
            out.iterations,
            out.epochs.len(),
            out.time_s,
            e.train.elbo,
            e.heldout
                .map_or(String::new(), |h| format!(", held-out {:.3}", h.elbo))
        ),
        None => outln!(
            "{} after {} {unit} in {:.2} s; ELBO {:.4}",
            out.status.name(),
            out.iterations,
            out.time_s,
            out.elbo
        ),
    }
    if out.status == vi::infer::Status::Stalled {
        eprintln!(
            "warning: the ELBO was still rising at the step limit; raise `--steps` (or `--lr`), \
             or pass `--tol 0` to run a fixed number of steps (exit code {EXIT_STALLED})"
        );
    }
    if let Some(t) = &out.trust {
        outln!(
            "fit diagnostics ({} draws from q): k-hat {:.2} ({}); ELBO {:.4} ± {:.4} at the final parameters, \
             importance-weighted bound {:.4} (gap {:.4})",
            t.draws,
            t.khat,
            t.reading,
            t.elbo,
            t.elbo_se,
            t.iw_bound,
            t.iw_bound - t.elbo
        );
        if t.reading == "poor" || t.reading == "unreliable" {
            let advice = if out.method == vi::infer::Method::Cavi {
                "the mean-field factorisation misses dependence between latents that the posterior has"
            } else {
                "try `--guide full-rank`, more steps, or a better parameterisation"
            };
            eprintln!(
                "warning: k-hat {:.2} is above {:.2}: q is a poor importance proposal for this posterior, so its \
                 means and intervals may be off ({advice}); compare the `psis mean` column",
                t.khat,
                vi::infer::psis::threshold(t.draws)
            );
        }
    }
    if !out.latents.is_empty() || !out.params.is_empty() {
        outln!();
        out!("{}", vi::report::fit::posterior_table(&out));
    }
    for n in &out.notes {
        outln!("note: {n}");
    }
    let mut written =
        vi::report::fit::write_outputs(&out_dir, &loaded.model, &out).map_err(Diagnostics::from)?;
    if out.method == vi::infer::Method::Svi {
        let pictures =
            vi::infer::pictures::pictures(&loaded, &opts, &out.state, PICTURES).map_err(Diagnostics::from)?;
        if let Some(p) = pictures {
            written.extend(vi::report::images::write_pictures(&out_dir, &p).map_err(Diagnostics::from)?);
        }
    }
    outln!("\nwrote {}/{{{}}}", out_dir.display(), written.join(", "));
    if args.checkpoint_every.is_some() && out.method == vi::infer::Method::Cavi {
        eprintln!("note: CAVI fits take no checkpoints (they run in sweeps of seconds); --checkpoint-every applies to gradient fits");
    }
    if out.status == vi::infer::Status::Interrupted {
        if out.method == vi::infer::Method::Cavi {
            eprintln!(
                "interrupted after {} sweeps; the outputs hold the fit so far (CAVI fits take no \
                 checkpoints: fit again to go on)",
                out.iterations
            );
        } else {
            eprintln!(
                "interrupted after {} steps; continue with `vinf fit {} --resume {}`",
                out.iterations,
                args.model.display(),
                out_dir.display()
            );
        }
    }
    if let Some(d) = out.diverged {
        eprintln!("{}", Diagnostics::from(d).render(std::io::stderr().is_terminal()));
        return Ok(EXIT_DIVERGED);
    }
    Ok(match out.status {
        vi::infer::Status::Converged | vi::infer::Status::Completed => 0,
        vi::infer::Status::Stalled => EXIT_STALLED,
        vi::infer::Status::Diverged => EXIT_DIVERGED,
        vi::infer::Status::Interrupted => EXIT_INTERRUPTED,
    })
}

fn at_least_one(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        Ok(_) => Err("must be at least 1".into()),
        Err(e) => Err(e.to_string()),
    }
}

fn holdout_fraction(s: &str) -> Result<f64, String> {
    let x: f64 = s.parse().map_err(|e| format!("{e}"))?;
    if (0.0..=0.9).contains(&x) {
        Ok(x)
    } else {
        Err("a fraction between 0 and 0.9".into())
    }
}

/// Reconstructions in the image grids of a deep generative model (and twice as many samples).
const PICTURES: usize = 32;

mod progress {
    //! A progress bar with the running ELBO on a terminal; plain lines otherwise.
    use std::io::IsTerminal;

    use indicatif::{ProgressBar, ProgressStyle};
    use vi::infer::Progress;

    /// One epoch, per row: the training ELBO as rate + distortion, then the held-out ELBO.
    fn epoch_line(e: &vi::infer::epoch::EpochReport) -> String {
        let width = e.epochs.to_string().len();
        let mut line = format!(
            "epoch {:>width$}/{}  ELBO {:.3} (rate {:.3}, distortion {:.3})",
            e.epoch, e.epochs, e.train.elbo, e.train.rate, e.train.distortion
        );
        if let Some(h) = &e.heldout {
            line += &format!(
                "  held-out {:.3} (rate {:.3}, distortion {:.3})",
                h.elbo, h.rate, h.distortion
            );
        }
        for (name, v) in &e.terms {
            line += &format!("  {name} {v:.3}");
        }
        line + &format!("  {:.2} s", e.seconds)
    }

    pub struct Reporter {
        bar: Option<ProgressBar>,
        total: usize,
        every: usize,
    }

    impl Reporter {
        pub fn new(total: usize) -> Reporter {
            let bar = std::io::stderr().is_terminal().then(|| {
                let b = ProgressBar::new(total as u64);
                b.set_style(
                    ProgressStyle::with_template("{bar:40} {pos}/{len} [{elapsed_precise}] ELBO {msg}")
                        .expect("a valid template"),
                );
                b
            });
            Reporter {
                bar,
                total,
                every: (total / 10).max(1),
            }
        }

        pub fn update(&mut self, p: Progress) {
            match p {
                Progress::Step {
                    step,
                    elbo,
                    total,
                    unit,
                } => match &self.bar {
                    Some(b) => {
                        b.set_length(total as u64);
                        b.set_position(step as u64);
                        if step % 10 == 0 || step == 1 {
                            b.set_message(format!("{elbo:.4}"));
                        }
                    }
                    None => {
                        self.total = total;
                        self.every = (total / 10).max(1);
                        if step % self.every == 0 || step == 1 {
                            eprintln!("{unit} {step}/{}  ELBO {elbo:.4}", self.total);
                        }
                    }
                },
                Progress::Diverged(_) | Progress::Checkpoint { .. } => {}
                Progress::Backoff { reason, lr, .. } => {
                    let line = format!(
                        "warning: {reason}; back to the last finite parameters, learning rate halved to {lr:e}"
                    );
                    match &self.bar {
                        Some(b) => b.println(line),
                        None => eprintln!("{line}"),
                    }
                }
                Progress::Epoch(e) => {
                    let line = epoch_line(&e);
                    match &self.bar {
                        Some(b) => b.println(line),
                        None => eprintln!("{line}"),
                    }
                }
            }
        }

        pub fn finish(&mut self) {
            if let Some(b) = self.bar.take() {
                b.finish_and_clear();
            }
        }
    }
}

/// A bug in vi must not greet a user with a backtrace: say what happened and where to report it.
fn quiet_panics() {
    std::panic::set_hook(Box::new(|info| {
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(ToString::to_string)
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown".into());
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!("error: internal error in vi: {msg}{at}\nThis is a bug; please report it with the model that caused it.");
    }));
}
