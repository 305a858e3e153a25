//! The fit settings as command-line flags, built from the settings table.
//!
//! Each row of [`vi::settings::SPECS`] becomes one `--flag` with the row's help, default and
//! bounds, so a setting is declared once for the `fit { }` block, the flags and the engines.
//! Values are checked against the same row (a bad one is a usage error, exit 2).

use clap::builder::ValueParser;
use clap::{Arg, ArgGroup, ArgMatches, Args, FromArgMatches};

use vi::settings::{Kind, Settings, Spec, Value, SPECS};

/// The id of the group every setting flag is in (`--resume` conflicts with all of them).
pub const GROUP: &str = "settings";

/// The setting flags given on the command line, each checked against its row.
#[derive(Clone, Debug, Default)]
pub struct SettingFlags {
    pub given: Vec<(&'static str, Value)>,
}

impl SettingFlags {
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.given.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }
}

fn parser(spec: &'static Spec) -> ValueParser {
    ValueParser::new(move |text: &str| -> Result<Value, String> {
        let value = match spec.kind {
            Kind::Number { int, .. } => Value::Number(text.trim().parse::<f64>().map_err(|_| {
                let what = if int { "a whole number" } else { "a number" };
                format!("expected {what} {}, found `{text}`", noun(spec))
            })?),
            Kind::Choice(_) => Value::Word(text.to_string()),
        };
        Settings::check_flag(spec.key, value)
    })
}

/// What a number flag counts, for its parse error: `--steps abc` wants a whole number *of steps*.
fn noun(spec: &Spec) -> String {
    match spec.kind {
        Kind::Number { int: true, .. } => match spec.key {
            "seed" => "(a random seed)".to_string(),
            "backoff" => "of back-offs".to_string(),
            "image_height" => "of pixel rows".to_string(),
            key => format!("of {}", key.replace('_', " ")),
        },
        _ => format!("(the {})", spec.doc),
    }
}

fn help(spec: &Spec) -> String {
    let mut help = spec.doc.to_string();
    if let Kind::Choice(options) = spec.kind {
        let options: Vec<String> = options.iter().map(|o| o.replace('_', "-")).collect();
        help += &format!(" [one of: {}]", options.join(", "));
    }
    if let Some(d) = spec.default.describe() {
        help += &format!(" [default: {d}]");
    }
    help
}

fn value_name(spec: &Spec) -> &'static str {
    match spec.kind {
        Kind::Number { int: true, .. } => "N",
        Kind::Number { .. } => "X",
        Kind::Choice(_) => "WORD",
    }
}

impl FromArgMatches for SettingFlags {
    fn from_arg_matches(m: &ArgMatches) -> Result<Self, clap::Error> {
        let given = SPECS
            .iter()
            .filter_map(|s| m.get_one::<Value>(s.key).map(|v| (s.key, v.clone())))
            .collect();
        Ok(SettingFlags { given })
    }

    fn update_from_arg_matches(&mut self, m: &ArgMatches) -> Result<(), clap::Error> {
        *self = SettingFlags::from_arg_matches(m)?;
        Ok(())
    }
}

impl Args for SettingFlags {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        SPECS.iter().fold(
            cmd.group(ArgGroup::new(GROUP).multiple(true).required(false)),
            |cmd, spec| {
                let arg = Arg::new(spec.key)
                    .long(spec.flag)
                    .value_name(value_name(spec))
                    .help(help(spec))
                    .value_parser(parser(spec))
                    .group(GROUP);
                // `--lr -0.1` is a value out of range (the table says why), not an unknown flag.
                let arg = match spec.kind {
                    Kind::Number { .. } => arg.allow_negative_numbers(true),
                    Kind::Choice(_) => arg,
                };
                cmd.arg(arg)
            },
        )
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        SettingFlags::augment_args(cmd)
    }
}
