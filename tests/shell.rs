//! `servescope completions` and `servescope man`: generated from the clap definitions,
//! so they must name every subcommand the command line has (read from `Cli::command()`,
//! not a list kept here), and the shells and man must accept what is generated. A shell
//! or renderer that is not installed is skipped, saying so; bash must be there in CI.

use std::path::Path;
use std::process::{Command, Output};

use clap::CommandFactory;
use servescope::Outcome;
use servescope::cli::Cli;

const BIN: &str = env!("CARGO_BIN_EXE_servescope");

fn servescope(args: &[&str]) -> Output {
    let out = Command::new(BIN).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "servescope {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn stdout(args: &[&str]) -> String {
    String::from_utf8(servescope(args).stdout).unwrap()
}

/// Every visible subcommand's name, from the definitions themselves.
fn subcommands() -> Vec<String> {
    let names: Vec<String> = Cli::command()
        .get_subcommands()
        .filter(|s| !s.is_hide_set())
        .map(|s| s.get_name().to_string())
        .collect();
    assert!(names.len() >= 15, "{names:?}");
    names
}

/// Visible subcommands at every depth, as `man --dir` writes a page for each.
fn nested_count(cmd: &clap::Command) -> usize {
    cmd.get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
        .map(|s| 1 + nested_count(s))
        .sum()
}

fn installed(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// bash must be there in CI; elsewhere a missing shell skips, saying so.
fn have(program: &str, required_in_ci: bool) -> bool {
    if installed(program) {
        return true;
    }
    assert!(
        !(required_in_ci && std::env::var("CI").is_ok_and(|v| v == "true")),
        "{program} is needed by this test in CI"
    );
    eprintln!("SKIPPED: {program} is not installed");
    false
}

/// Run a shell snippet with the built binary first on PATH.
fn shell(program: &str, script: &str) -> String {
    let dir = Path::new(BIN).parent().unwrap();
    let path = format!(
        "{}:{}",
        dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new(program)
        .args(["-c", script])
        .env("PATH", path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{program} -c {script}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn bash_script_names_every_subcommand_and_their_flags() {
    let script = stdout(&["completions", "bash"]);
    assert!(script.contains("complete -F _servescope") || script.contains("-F _servescope"));
    for name in subcommands() {
        assert!(
            script.contains(&format!("servescope,{name})")),
            "no completion case for `{name}`"
        );
    }
    for flag in [
        "--concurrency",
        "--endpoint",
        "--output-dir",
        "--time-scale",
        "--dir",
    ] {
        assert!(script.contains(flag), "{flag} is not completed");
    }
}

#[test]
fn every_shell_gets_a_script_naming_the_subcommands() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let script = stdout(&["completions", shell]);
        assert!(script.contains("servescope"), "{shell}");
        for name in subcommands() {
            assert!(script.contains(&name), "{shell}: no `{name}`");
        }
    }
    let out = Command::new(BIN)
        .args(["completions", "tcsh"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("tcsh") && err.contains("bash"),
        "an unknown shell names the choices: {err}"
    );
}

/// The script loads in bash and completes subcommands and flags as a user's Tab would.
#[test]
fn bash_loads_the_script_and_completes() {
    if !have("bash", true) {
        return;
    }
    let out = shell(
        "bash",
        "source <(servescope completions bash)
         complete -p servescope
         COMP_WORDS=(servescope dual); COMP_CWORD=1
         _servescope servescope dual servescope; echo \"words: ${COMPREPLY[*]}\"
         COMP_WORDS=(servescope trace --time-sc); COMP_CWORD=2
         _servescope servescope --time-sc trace; echo \"flags: ${COMPREPLY[*]}\"
         COMP_WORDS=(servescope completions z); COMP_CWORD=2
         _servescope servescope z completions; echo \"shells: ${COMPREPLY[*]}\"",
    );
    assert!(out.contains("-F _servescope servescope"), "{out}");
    assert!(out.contains("words: dual-round\n"), "{out}");
    assert!(out.contains("flags: --time-scale\n"), "{out}");
    assert!(out.contains("shells: zsh\n"), "{out}");
}

#[test]
fn zsh_and_fish_load_their_scripts() {
    if have("zsh", false) {
        // The script is an autoload function file: check it parses, then define it.
        let out = shell(
            "zsh",
            "f=$(mktemp); servescope completions zsh > $f; zsh -n $f && echo parsed
             autoload -U compinit && compinit -u -D; source $f; whence -w _servescope",
        );
        assert!(out.contains("parsed"), "{out}");
        assert!(out.contains("_servescope: function"), "{out}");
    }
    if have("fish", false) {
        let out = shell(
            "fish",
            "servescope completions fish | source; complete -C 'servescope dual'",
        );
        assert!(out.contains("dual-round"), "{out}");
    }
}

#[test]
fn man_page_has_its_sections_and_every_subcommand() {
    let page = stdout(&["man"]);
    assert!(page.contains(".TH servescope 1"), "{page}");
    let version = env!("CARGO_PKG_VERSION");
    assert!(page.contains(&format!("servescope {version}")));
    for section in [".SH NAME", ".SH SYNOPSIS", ".SH OPTIONS", ".SH SUBCOMMANDS"] {
        assert!(page.contains(section), "no {section}");
    }
    for name in subcommands() {
        let roff = format!("servescope\\-{}(1)", name.replace('-', "\\-"));
        assert!(page.contains(&roff), "no {roff}");
    }
    if have("groff", false) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("servescope.1");
        std::fs::write(&file, &page).unwrap();
        let out = Command::new("groff")
            // -k: the help's non-ASCII characters (×, –) through preconv; -P-cbou: plain text.
            .args(["-k", "-man", "-Tutf8", "-ww", "-P-cbou"])
            .arg(&file)
            .output()
            .unwrap();
        assert!(out.status.success());
        let text = String::from_utf8_lossy(&out.stdout);
        let warnings = String::from_utf8_lossy(&out.stderr);
        assert!(warnings.trim().is_empty(), "groff warned: {warnings}");
        assert!(text.contains("SYNOPSIS"), "{text}");
        assert!(text.contains("servescope-dual-round(1)"), "{text}");
    }
}

#[test]
fn man_dir_writes_a_page_per_subcommand() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("man1");
    let arg = out.to_str().unwrap();
    let Outcome::Generated(pages) =
        servescope::run_args(["servescope", "man", "--dir", arg]).unwrap_or_else(|e| panic!("{e}"))
    else {
        panic!("man --dir gave another outcome");
    };
    // The main page and one per subcommand at every depth (convert has two of its own).
    assert_eq!(pages.len(), 1 + nested_count(&Cli::command()), "{pages:?}");
    for nested in [
        "servescope-convert-longbench.1",
        "servescope-convert-sharegpt.1",
    ] {
        let page = std::fs::read_to_string(out.join(nested)).unwrap();
        assert!(page.contains("\\fBservescope convert "), "{nested}: {page}");
    }
    assert!(pages.contains(&out.join("servescope.1")));
    for name in subcommands() {
        let file = out.join(format!("servescope-{name}.1"));
        let page = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{name}: {e}"));
        let title = format!(".TH servescope-{name} 1");
        assert!(page.contains(&title), "{name}: {page}");
        // Each page's synopsis is the command as typed.
        let roff = name.replace('-', "\\-");
        assert!(
            page.contains(&format!("\\fBservescope {roff}\\fR")),
            "{name}"
        );
    }
    let concurrency = std::fs::read_to_string(out.join("servescope-concurrency.1")).unwrap();
    assert!(concurrency.contains("\\-\\-concurrency"));
    assert!(concurrency.contains("\\-\\-output\\-dir"));
    // The key's variable is named; its value never (see the test below).
    assert!(concurrency.contains("OPENAI_API_KEY"));

    if have("man", false) {
        let text = Command::new("man")
            .args(["-l", "-P", "cat"])
            .arg(out.join("servescope-trace.1"))
            .env("MANWIDTH", "100")
            .output()
            .unwrap();
        assert!(text.status.success());
        let text = String::from_utf8_lossy(&text.stdout);
        assert!(text.contains("--time-scale"), "{text}");
    }
}

#[test]
fn man_dir_that_cannot_be_written_names_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let err = servescope::run_args(["servescope", "man", "--dir", file.to_str().unwrap()])
        .expect_err("a file is not a directory");
    assert!(err.to_string().contains("man --dir"), "{err}");
    assert_eq!(err.exit_code(), 1);
}

/// The API key's environment variable is named, never its value.
#[test]
fn generated_text_never_holds_the_api_key() {
    let secret = "sk-shell-test-secret-4417";
    for args in [
        &["completions", "bash"][..],
        &["completions", "zsh"],
        &["man"],
        &["concurrency", "--help"],
    ] {
        let out = Command::new(BIN)
            .args(args)
            .env("OPENAI_API_KEY", secret)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}");
        assert!(
            !String::from_utf8_lossy(&out.stdout).contains(secret),
            "{args:?}"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["man", "--dir"])
        .arg(dir.path())
        .env("OPENAI_API_KEY", secret)
        .output()
        .unwrap();
    assert!(out.status.success());
    for page in std::fs::read_dir(dir.path()).unwrap() {
        let path = page.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains(secret), "{}", path.display());
    }
}

#[test]
fn version_is_the_crates() {
    let out = stdout(&["--version"]);
    assert_eq!(
        out.trim(),
        format!("servescope {}", env!("CARGO_PKG_VERSION"))
    );
}
