//! `--profile`, `--profile-url-start/--profile-url-stop`, `--profile-requests`: the
//! engine's profiler started and stopped around each run (or a window of it); and the
//! words `--reset-cache-url` takes besides a URL.

use clap::Args;

use super::values::positive_int;
use crate::error::Error;
use crate::settings::ProfileSettings;

#[derive(Args, Clone, Debug, Default)]
pub struct ProfileArgs {
    /// Start the engine's profiler before each run and stop it after: POST
    /// ROOT/start_profile and ROOT/stop_profile (vLLM with a profiler configured,
    /// SGLang). A failed call is a warning; the run goes on
    #[arg(long)]
    pub profile: bool,
    /// The start route for other servers: a URL, or a path on the server root
    /// (implies --profile; needs --profile-url-stop)
    #[arg(long, value_name = "URL", requires = "profile_url_stop")]
    pub profile_url_start: Option<String>,
    /// The stop route for other servers (implies --profile; needs --profile-url-start)
    #[arg(long, value_name = "URL", requires = "profile_url_start")]
    pub profile_url_stop: Option<String>,
    /// Profile a window, not the whole run: start before the first measured request
    /// (after the warm-up), stop once N measured requests have finished (implies
    /// --profile)
    #[arg(long, value_name = "N", allow_negative_numbers = true, value_parser = positive_int::<usize>)]
    pub profile_requests: Option<usize>,
}

/// The profiler's settings, when any profile flag is given; each URL is checked now.
pub(super) fn profile(a: &ProfileArgs) -> Result<Option<ProfileSettings>, Error> {
    let on = a.profile || a.profile_url_start.is_some() || a.profile_requests.is_some();
    if !on {
        return Ok(None);
    }
    let route = |flag: &str, v: &Option<String>, example| -> Result<Option<String>, Error> {
        match v {
            Some(u) => check_route(flag, u, example).map(|()| Some(u.clone())),
            None => Ok(None),
        }
    };
    Ok(Some(ProfileSettings {
        start: route(
            "--profile-url-start",
            &a.profile_url_start,
            "/start_profile",
        )?,
        stop: route("--profile-url-stop", &a.profile_url_stop, "/stop_profile")?,
        requests: a.profile_requests,
    }))
}

/// `--reset-cache-url`: a preset word, a URL or a path on the server root.
pub(super) fn reset_cache_url(given: &str) -> Result<(), Error> {
    if crate::session::cache_reset::PRESETS.contains(&given) {
        return Ok(());
    }
    let presets = crate::session::cache_reset::PRESETS.join(", ");
    check_route(
        "--reset-cache-url",
        given,
        &format!("/flush_cache, or a preset: {presets}"),
    )
}

/// An http(s) URL, or a path starting with `/` (resolved against the server's root).
fn check_route(flag: &str, given: &str, example: &str) -> Result<(), Error> {
    if given.starts_with('/') {
        return Ok(());
    }
    match reqwest::Url::parse(given) {
        // The URL is printed and saved: a password in it would be too.
        Ok(u) if !u.username().is_empty() || u.password().is_some() => Err(Error::Input(format!(
            "{flag}: credentials in the URL are not supported (it is printed and saved in results.json); the API key and -H headers go to routes on the server's own origin"
        ))),
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => Ok(()),
        Ok(_) => Err(Error::Input(format!(
            "{flag} {given}: expected an http:// or https:// URL or a path such as {example}"
        ))),
        Err(e) => Err(Error::Input(format!(
            "{flag} {given}: not a URL ({e}); expected an http:// or https:// URL or a path such as {example}"
        ))),
    }
}

#[cfg(test)]
#[path = "tests_profile.rs"]
mod tests;
