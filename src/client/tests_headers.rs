use super::*;

#[test]
fn a_header_parses_and_bad_ones_name_the_flag_and_the_header() {
    let h = Header::parse("X-Route:  canary ").unwrap();
    assert_eq!((h.name(), h.value()), ("X-Route", "canary"));
    assert!(Header::parse("X-Empty:").unwrap().value().is_empty());
    for (given, needle) in [
        ("no colon", "expected 'Name: value'"),
        (": v", "has no name"),
        ("Bad Name: v", "' ' is not allowed in a header name"),
        ("X-A: one\r\nX-Evil: 1", "line break"),
        ("X-A: bell\u{7}", "U+0007"),
        ("Host: other", "servescope sets Host itself"),
        ("content-length: 3", "itself"),
    ] {
        let e = Header::parse(given).unwrap_err();
        assert!(e.starts_with("-H/--header"), "{given:?}: {e}");
        assert!(e.contains(needle), "{given:?}: {e}");
    }
    // A credential's value never shows in the error.
    let e = Header::parse("X-Api-Key: sekrit\r\n").unwrap_err();
    assert!(!e.contains("sekrit") && e.contains("X-Api-Key: ***"), "{e}");
    let e = Header::parse("Authorization sekrit").unwrap_err();
    assert!(!e.contains("sekrit"), "{e}");
}

#[test]
fn credentials_are_known_by_name_and_never_shown() {
    for name in [
        "Authorization",
        "proxy-authorization",
        "Cookie",
        "X-Api-Key",
        "x-auth-user",
        "X-Access-Token",
        "Client-Secret",
        "DB-Password",
        "X-Credential-Id",
    ] {
        assert!(is_credential(name), "{name}");
    }
    for name in ["X-Route", "OpenAI-Organization", "Accept", "X-Request-Id"] {
        assert!(!is_credential(name), "{name}");
    }
    let key = Header::parse("X-Api-Key: sekrit123").unwrap();
    assert_eq!(key.redacted(), "X-Api-Key: ***");
    assert_eq!(format!("{key:?}"), "X-Api-Key: ***");
    let auth = Header::parse("Authorization: Bearer tok-42").unwrap();
    let route = Header::parse("X-Route: canary").unwrap();
    assert_eq!(route.redacted(), "X-Route: canary");
    let all = ExtraHeaders::new(vec![key, auth, route]).unwrap();
    assert_eq!(all.secrets(), ["sekrit123", "Bearer tok-42", "tok-42"]);
    assert_eq!(
        String::from_utf8(all.head_lines()).unwrap(),
        "X-Api-Key: sekrit123\r\nAuthorization: Bearer tok-42\r\nX-Route: canary\r\n"
    );
    assert!(all.map()["x-api-key"].is_sensitive());
    assert!(!all.map()["x-route"].is_sensitive());
}

#[test]
fn a_header_given_twice_is_refused() {
    let list = vec![
        Header::parse("X-Route: a").unwrap(),
        Header::parse("x-route: b").unwrap(),
    ];
    let e = ExtraHeaders::new(list).unwrap_err();
    assert!(e.contains("x-route is given twice"), "{e}");
}

#[test]
fn the_saved_command_hides_credential_values_in_every_form() {
    let argv: Vec<String> = [
        "servescope",
        "-H",
        "X-Api-Key: sekrit123",
        "--header",
        "X-Route: canary",
        "--header=Cookie: c=sekrit123",
        "-HAuthorization: Bearer sekrit123",
        "--model",
        "m",
    ]
    .map(String::from)
    .to_vec();
    let out = redact_header_args(&argv);
    assert_eq!(
        out,
        [
            "servescope",
            "-H",
            "X-Api-Key: ***",
            "--header",
            "X-Route: canary",
            "--header=Cookie: ***",
            "-HAuthorization: ***",
            "--model",
            "m",
        ]
    );
}

#[test]
fn the_request_head_carries_the_headers_and_replaces_defaults() {
    let extra = ExtraHeaders::new(vec![
        Header::parse("User-Agent: mine/1").unwrap(),
        Header::parse("X-Route: canary").unwrap(),
    ])
    .unwrap();
    let fixed = super::super::http1::fixed_head_lines(Some(b"Bearer k"), &extra);
    let url = reqwest::Url::parse("http://h:8000/v1/chat/completions").unwrap();
    let head = super::super::http1::request_head(&url, &fixed, 12);
    let head = String::from_utf8(head).unwrap();
    assert_eq!(
        head,
        "POST /v1/chat/completions HTTP/1.1\r\nHost: h:8000\r\n\
         Content-Type: application/json\r\nAccept: text/event-stream\r\n\
         Authorization: Bearer k\r\nUser-Agent: mine/1\r\nX-Route: canary\r\n\
         Content-Length: 12\r\n\r\n"
    );
    let plain = super::super::http1::fixed_head_lines(None, &ExtraHeaders::default());
    let head = String::from_utf8(super::super::http1::request_head(&url, &plain, 0)).unwrap();
    assert!(head.contains("\r\nUser-Agent: servescope/"), "{head}");
}
