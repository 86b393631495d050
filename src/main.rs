use std::process::ExitCode;

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().collect();
    let cli = match <servescope::Cli as clap::Parser>::try_parse_from(&argv) {
        Ok(c) => c,
        // clap prints help/version to stdout (exit 0) and usage errors to stderr (exit 2).
        Err(e) => e.exit(),
    };
    match servescope::run(cli, &argv) {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            servescope::console::err(format_args!("error: {e}\n"));
            ExitCode::from(e.exit_code() as u8)
        }
    }
}
