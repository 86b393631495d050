//! `servescope completions SHELL` and `servescope man`: the shell's view of the command
//! line, generated from the clap definitions themselves, so every subcommand and flag
//! added later is in them without a list to keep.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Args, CommandFactory, ValueEnum};

use super::Cli;
use crate::settings::CompletionShell;

/// The binary's name in the generated scripts and pages.
const BIN: &str = "servescope";

#[derive(Args, Debug)]
pub struct CompletionsArgs {
    /// The shell to print a completion script for
    #[arg(value_enum)]
    pub shell: ShellArg,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum ShellArg {
    Bash,
    Zsh,
    Fish,
    Elvish,
    Powershell,
}

impl From<ShellArg> for CompletionShell {
    fn from(s: ShellArg) -> Self {
        match s {
            ShellArg::Bash => CompletionShell::Bash,
            ShellArg::Zsh => CompletionShell::Zsh,
            ShellArg::Fish => CompletionShell::Fish,
            ShellArg::Elvish => CompletionShell::Elvish,
            ShellArg::Powershell => CompletionShell::PowerShell,
        }
    }
}

#[derive(Args, Debug)]
pub struct ManArgs {
    /// Write one page per command into DIR (servescope.1, servescope-concurrency.1, ...)
    /// instead of printing the main page to stdout
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// The completion script for `shell`.
pub fn completions(shell: CompletionShell) -> Vec<u8> {
    use clap_complete::Shell;
    let gen_shell = match shell {
        CompletionShell::Bash => Shell::Bash,
        CompletionShell::Zsh => Shell::Zsh,
        CompletionShell::Fish => Shell::Fish,
        CompletionShell::Elvish => Shell::Elvish,
        CompletionShell::PowerShell => Shell::PowerShell,
    };
    let mut out = Vec::new();
    clap_complete::generate(gen_shell, &mut Cli::command(), BIN, &mut out);
    out
}

/// The main man page (roff): every option of `servescope` and its subcommands listed.
pub fn man_page() -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    clap_mangen::Man::new(man_command()).render(&mut out)?;
    Ok(out)
}

/// Write the main page and one page per subcommand, nested ones too, into `dir`
/// (created if missing); returns the files written, sorted.
pub fn write_man_pages(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut written = Vec::new();
    write_pages(man_command(), dir, &mut written)?;
    written.sort();
    Ok(written)
}

/// `cmd`'s page, then its subcommands' pages, each named as git's are
/// (servescope-convert-sharegpt(1), the name its parent's page refers to); a
/// subcommand's synopsis keeps the bin name `build()` gave it (`servescope convert
/// sharegpt`).
fn write_pages(cmd: clap::Command, dir: &Path, written: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let name = cmd.get_display_name().unwrap_or(cmd.get_name()).to_string();
    let source = format!("{BIN} {}", env!("CARGO_PKG_VERSION"));
    written.push(write_page(
        clap_mangen::Man::new(cmd.clone()).source(source),
        dir,
    )?);
    let subs = cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help");
    for sub in subs {
        let page = sub
            .clone()
            .display_name(format!("{name}-{}", sub.get_name()));
        write_pages(page, dir, written)?;
    }
    Ok(())
}

fn write_page(man: clap_mangen::Man, dir: &Path) -> std::io::Result<PathBuf> {
    let path = dir.join(man.get_filename());
    let mut f = std::fs::File::create(&path)?;
    man.render(&mut f)?;
    f.flush()?;
    Ok(path)
}

fn man_command() -> clap::Command {
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    cmd
}
