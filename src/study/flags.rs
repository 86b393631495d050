//! What the load subcommands' clap definitions say about each flag: its long name, how
//! it takes values, its help. Study keys and the study schema are read from here, so
//! they cannot drift from the command line.

use clap::{Arg, ArgAction, Args, CommandFactory};

use crate::cli::{Cli, LoadArgs};

/// Every load subcommand, as a study's `mode` names it.
pub const MODES: [&str; 8] = [
    "batch",
    "throughput",
    "concurrency",
    "rate",
    "trace",
    "dual-round",
    "capacity",
    "sweep",
];

/// How a flag takes its value, which decides what a YAML value may be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Takes {
    /// A switch: `true` gives it, `false` leaves it out.
    Switch,
    /// One value.
    One,
    /// Comma-separated values: a YAML list, or one value.
    List,
    /// A repeatable flag: a YAML list (or a mapping, for headers and named sources).
    Repeat,
    /// A positional argument (trace's file).
    Positional,
}

/// One flag of a load subcommand.
#[derive(Clone, Debug)]
pub struct Flag {
    /// The long name (`input-len`), or a positional argument's id (`file`).
    pub long: String,
    pub takes: Takes,
    pub help: String,
    pub default: Vec<String>,
    /// The accepted words, when clap knows them (value enums).
    pub choices: Vec<String>,
}

impl Flag {
    fn of(arg: &Arg) -> Option<Flag> {
        let id = arg.get_id().as_str();
        if matches!(id, "help" | "version") {
            return None;
        }
        let takes = match (arg.get_long(), arg.get_action()) {
            (None, _) if arg.is_positional() => Takes::Positional,
            (None, _) => return None,
            (_, ArgAction::SetTrue) => Takes::Switch,
            // A Vec flag with a delimiter is also Append: its comma form is the list.
            _ if arg.get_value_delimiter().is_some() => Takes::List,
            (_, ArgAction::Append) => Takes::Repeat,
            _ => Takes::One,
        };
        let help = arg
            .get_long_help()
            .or(arg.get_help())
            .map(|h| {
                h.to_string()
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default();
        Some(Flag {
            long: arg.get_long().unwrap_or(id).to_string(),
            takes,
            help,
            default: arg
                .get_default_values()
                .iter()
                .map(|v| v.to_string_lossy().into_owned())
                .collect(),
            choices: arg
                .get_possible_values()
                .iter()
                .filter(|p| !p.is_hide_set())
                .map(|p| p.get_name().to_string())
                .collect(),
        })
    }
}

/// The flags every load subcommand shares (`LoadArgs`).
pub fn shared() -> Vec<Flag> {
    let cmd = LoadArgs::augment_args(clap::Command::new("load"));
    cmd.get_arguments().filter_map(Flag::of).collect()
}

/// The flags only `mode` has (its levels and settings); `None` for an unknown mode.
pub fn own(mode: &str) -> Option<Vec<Flag>> {
    let shared: Vec<String> = shared().into_iter().map(|f| f.long).collect();
    let all = of_mode(mode)?;
    Some(
        all.into_iter()
            .filter(|f| !shared.contains(&f.long))
            .collect(),
    )
}

/// Every flag `mode` takes, shared ones included.
pub fn of_mode(mode: &str) -> Option<Vec<Flag>> {
    let cli = Cli::command();
    let sub = cli.find_subcommand(mode)?;
    Some(sub.get_arguments().filter_map(Flag::of).collect())
}

/// A flag of any load subcommand by its long name or short letter, as typed after the
/// study file; with every mode that takes it.
pub fn find_typed(name: &str) -> Option<(Flag, Vec<&'static str>)> {
    let cli = Cli::command();
    let mut found: Option<Flag> = None;
    let mut modes = Vec::new();
    for mode in MODES {
        let Some(sub) = cli.find_subcommand(mode) else {
            continue;
        };
        let hit = sub.get_arguments().find(|a| match name.strip_prefix("--") {
            Some(long) => a.get_long() == Some(long) || alias_of(a, long),
            None => name.len() == 2 && a.get_short() == name.chars().nth(1),
        });
        if let Some(arg) = hit.and_then(Flag::of) {
            modes.push(mode);
            found.get_or_insert(arg);
        }
    }
    found.map(|f| (f, modes))
}

fn alias_of(a: &Arg, long: &str) -> bool {
    a.get_all_aliases()
        .is_some_and(|aliases| aliases.contains(&long))
}
