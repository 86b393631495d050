//! The scripted server itself: a plain benchmark against it works, so a failure in the
//! other modules is the hostility, not the harness.

use std::time::Duration;

use crate::server::{chat_stream, models, serve};

#[test]
fn a_benchmark_against_the_scripted_server_succeeds() {
    let srv = serve(|r| match r.path.as_str() {
        "/v1/models" => models("\"scripted\""),
        _ => chat_stream(4, Duration::from_millis(1)),
    });
    let out = crate::common::session(&[
        "batch",
        "--batch-sizes",
        "3",
        "--endpoint",
        &srv.url(),
        "--input-len",
        "8",
        "--output-len",
        "4",
        "--quiet",
    ]);
    assert_eq!(out.model, "scripted");
    let (_, summary) = &out.runs[0];
    assert_eq!(summary.succeeded, 3, "{summary:?}");
}
