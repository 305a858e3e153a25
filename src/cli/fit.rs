//! `vinf fit`: the flags merged into the model's settings, the checkpoint plan, the fit, and
//! what it says and writes.

use std::path::PathBuf;

use clap::ValueEnum;

use vi::diag::{Diagnostic, Diagnostics};
use vi::infer::{Method, Status};
use vi::report::narrate::Line;

use super::flags::SettingFlags;
use super::{outln, DataArgs, EXIT_DIVERGED, EXIT_INTERRUPTED, EXIT_STALLED};

#[derive(clap::Args)]
pub struct FitArgs {
    /// The model file.
    pub model: PathBuf,
    #[command(flatten)]
    pub data: DataArgs,
    #[command(flatten)]
    pub settings: SettingFlags,
    /// Draws from the fitted q for the fit diagnostics (PSIS k-hat, IW bound); 0 turns them off.
    #[arg(long)]
    diagnostic_draws: Option<usize>,
    /// Output folder (default out/<model name>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// An image classifier (safetensors: `layers.K.weight` [in, out], `layers.K.bias`; ReLU
    /// between, softmax after) that reads 500 decoded prior draws after every epoch of a deep
    /// generative model: confidence, class histogram, and a warning when classes vanish.
    #[arg(long, value_name = "FILE")]
    classifier: Option<PathBuf>,
    /// Where tensors live: `cpu`, or `cuda` in a build with `--features cuda` (its default).
    #[arg(long, value_enum)]
    device: Option<DeviceArg>,
    /// Steps between checkpoints of a gradient fit (written to the output folder, on Ctrl-C,
    /// and when the fit ends, as its final state for `--resume DIR --steps N`).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    checkpoint_every: Option<u64>,
    /// Continue the gradient fit whose output folder is DIR, with the settings and data it was
    /// started with: an interrupted fit from its last checkpoint; a finished one (converged,
    /// stalled or completed) for `--steps N` more steps, its stop rule started afresh (`--tol`
    /// may be given too).
    #[arg(long, value_name = "DIR", conflicts_with_all = [
        "bindings", "no_default_data", "diagnostic_draws", "out", "device", "checkpoint_every",
    ])]
    resume: Option<PathBuf>,
}

impl FitArgs {
    /// The arguments a checkpoint recorded (those after `vinf fit`), read as they were then.
    fn from_recorded(args: &[String]) -> Result<FitArgs, Diagnostics> {
        use clap::{Args, FromArgMatches};
        let command = FitArgs::augment_args(clap::Command::new("fit").no_binary_name(true));
        command
            .try_get_matches_from(args)
            .and_then(|m| FitArgs::from_arg_matches(&m))
            .map_err(|e| {
                Diagnostics::from(
                    Diagnostic::new(
                        "vi::resume",
                        format!("the recorded command line does not read: {e}"),
                    )
                    .help("fit the model afresh"),
                )
            })
    }
}

#[derive(Clone, Copy, ValueEnum, PartialEq)]
enum DeviceArg {
    Cpu,
    Cuda,
}

/// A device this build can use: one build computes on one device.
fn check_device(asked: Option<DeviceArg>) -> Result<(), Diagnostics> {
    let built = vi::backend::DEVICE;
    let refuse = |msg: &str, help: &str| {
        Err(Diagnostics::from(
            Diagnostic::new("vi::device", msg.to_string()).help(help.to_string()),
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

/// The settings `--resume` takes: how much further to run, and when to stop.
const RESUME_SETTINGS: [&str; 2] = ["steps", "tol"];

/// Reconstructions in the image grids of a deep generative model (and twice as many samples).
const PICTURES: usize = 32;

pub fn fit(mut args: FitArgs) -> Result<u8, Diagnostics> {
    let mut resumed = None;
    let mut extend = false;
    if let Some(dir) = args.resume.take() {
        let model = std::path::absolute(&args.model).unwrap_or(args.model);
        let asked = std::mem::take(&mut args.settings.given);
        let refuse = |msg: String, help: &str| {
            Err(Diagnostics::from(
                Diagnostic::new("vi::resume", msg).help(help.to_string()),
            ))
        };
        if let Some((key, _)) = asked.iter().find(|(k, _)| !RESUME_SETTINGS.contains(k)) {
            return refuse(
                format!("`--resume` continues a fit with the settings it was started with; `--{}` cannot change them", key.replace('_', "-")),
                "only `--steps` and `--tol` may be given with `--resume`; to change other settings, fit afresh",
            );
        }
        let resume = super::resume::resume_from(&model, &dir)?;
        let mut recorded = FitArgs::from_recorded(&resume.args)?;
        recorded.out = Some(resume.dir);
        let ck = resume.checkpoint;
        let more = asked.iter().find(|(k, _)| *k == "steps").map(|(_, v)| v.clone());
        match (&ck.state.ended, &more) {
            (Some(ended), None) => {
                return refuse(
                    format!(
                        "the fit in `{}` already ended ({ended}) after {} steps",
                        dir.display(),
                        ck.state.step
                    ),
                    "pass `--steps N` with `--resume` to run N more steps",
                )
            }
            (Some(ended), Some(_)) => eprintln!(
                "extending the fit in `{}`, which ended ({ended}) after {} steps",
                dir.display(),
                ck.state.step
            ),
            (None, _) => eprintln!(
                "resuming `{}` from its checkpoint at step {}",
                dir.display(),
                ck.state.step
            ),
        }
        // `--steps N` counts the steps to run now, past the checkpoint's.
        for (key, value) in asked {
            let value = match (key, value) {
                ("steps", vi::settings::Value::Number(n)) => {
                    vi::settings::Value::Number(n + ck.state.step as f64)
                }
                (_, v) => v,
            };
            recorded.settings.given.retain(|(k, _)| *k != key);
            recorded.settings.given.push((key, value));
        }
        // Only a fit that ended needs its stop rule started afresh.
        extend = ck.state.ended.is_some() && more.is_some();
        args = FitArgs { model, ..recorded };
        resumed = Some(ck);
    }
    check_device(args.device)?;
    let mut loaded = super::load(&args.model, &args.data.options(true))?;
    let settings = &mut loaded.model.settings;
    for (key, value) in &args.settings.given {
        settings.set(key, value.clone());
    }
    // Steps on the command line count, not the model's epochs.
    if args.settings.get("steps").is_some() {
        settings.remove("epochs");
    }
    let mut opts = vi::infer::FitOptions::from_settings(&loaded.model.settings, &loaded.model);
    if let Some(d) = args.diagnostic_draws {
        opts.diagnostic_draws = d;
    }
    if let Some(c) = &args.classifier {
        opts.classifier = Some(c.clone());
    }
    let out_dir = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("out").join(&loaded.model.name));

    // A resumed fit keeps the record of the command that started it.
    let record = match &resumed {
        Some(ck) => ck.record.clone(),
        None => super::resume::this_command(&args.model),
    };
    let unfinished = || {
        vi::infer::checkpoint::Checkpoint::load(&out_dir.join(vi::infer::checkpoint::FILE))
            .is_ok_and(|ck| ck.state.ended.is_none())
    };
    if resumed.is_none() && unfinished() {
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
        extend,
        keep_final: true,
    });

    let mut bar = super::progress::Reporter::new();
    let out = vi::infer::fit(&loaded, &opts, &mut |p| bar.update(p))?;
    bar.finish();

    for line in vi::report::narrate::outcome(&out, &format!(" (exit code {EXIT_STALLED})")) {
        match line {
            Line::Out(text) => outln!("{text}"),
            Line::Warn(text) => eprintln!("{text}"),
        }
    }
    let mut written =
        vi::report::fit::write_outputs(&out_dir, &loaded.model, &out).map_err(Diagnostics::from)?;
    if out.method == Method::Svi {
        let pictures =
            vi::infer::pictures::pictures(&loaded, &opts, &out.state, PICTURES).map_err(Diagnostics::from)?;
        if let Some(p) = pictures {
            written.extend(
                vi::report::images::write_pictures(&out_dir, &loaded.model.name, &p)
                    .map_err(Diagnostics::from)?,
            );
        }
    }
    outln!("\nwrote {}/{{{}}}", out_dir.display(), written.join(", "));
    if args.checkpoint_every.is_some() && out.method == Method::Cavi {
        eprintln!("note: CAVI fits take no checkpoints (they run in sweeps of seconds); --checkpoint-every applies to gradient fits");
    }
    if out.status == Status::Interrupted {
        if out.method == Method::Cavi {
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
        super::report(&Diagnostics::from(d));
        return Ok(EXIT_DIVERGED);
    }
    Ok(match out.status {
        Status::Converged | Status::Completed => 0,
        Status::Stalled => EXIT_STALLED,
        Status::Diverged => EXIT_DIVERGED,
        Status::Interrupted => EXIT_INTERRUPTED,
    })
}
