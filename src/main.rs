//! The `vi` command line: arguments in, library calls, exit codes out.
//!
//! Exit codes: 0 success, 1 a problem with the model or its data (printed as diagnostics),
//! 2 a usage error.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use vi::data::Binding;
use vi::diag::Diagnostics;
use vi::LoadOptions;

#[derive(Parser)]
#[command(
    name = "vi",
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

fn main() -> ExitCode {
    quiet_panics();
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(diags) => {
            eprintln!("{}", diags.render(std::io::stderr().is_terminal()));
            ExitCode::from(1)
        }
    }
}

fn run(cli: Cli) -> Result<(), Diagnostics> {
    match cli.command {
        Command::Check { model, data } => {
            let loaded = vi::load(&model, &data.options(false))?;
            print!("{}", vi::report::model_summary(&loaded.model, &loaded.data));
        }
        Command::Graph { model, format, data } => {
            let loaded = vi::load(&model, &data.options(false))?;
            match format {
                GraphFormat::Text => print!("{}", vi::graph::to_text(&loaded.model)),
                GraphFormat::Dot => print!("{}", vi::graph::to_dot(&loaded.model)),
            }
        }
    }
    Ok(())
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
