//! `-H 'Name: value'`: headers added to every request sent to the benchmarked server.
//! Checked once when the flags are read; turned once into the bytes the request head
//! copies (no per-request formatting), and into a header map for the few other calls
//! (the models probe, the cache reset, the metrics scrape, the tokenize routes).
//! Credential-like headers are sent but never saved or printed (`Header::redacted`),
//! and their values are masked in whatever a server sends back (`ExtraHeaders::secrets`).

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

/// One checked `-H` header.
#[derive(Clone, PartialEq, Eq)]
pub struct Header {
    name: String,
    value: String,
}

/// A credential's value must never show, even in a debug print.
impl std::fmt::Debug for Header {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// Headers servescope writes itself to frame the request and keep the connection: a
/// second copy would break the exchange.
const RESERVED: [&str; 9] = [
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "upgrade",
    "expect",
];

/// The request head's own defaults that `-H` replaces instead of repeating.
pub const REPLACEABLE: [&str; 3] = ["user-agent", "content-type", "accept"];

/// Names whose values are credentials: exact names, then parts of a name.
const SECRET_NAMES: [&str; 3] = ["authorization", "proxy-authorization", "cookie"];
const SECRET_PARTS: [&str; 6] = ["key", "token", "secret", "auth", "password", "credential"];

/// A header name that carries a credential (case-insensitive): never saved or printed.
pub fn is_credential(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    SECRET_NAMES.contains(&n.as_str()) || SECRET_PARTS.iter().any(|p| n.contains(p))
}

impl Header {
    /// `Name: value` as given to `-H`; the error names the flag and the header (a
    /// credential's value never shows in it).
    pub fn parse(s: &str) -> Result<Header, String> {
        let Some((name, value)) = s.split_once(':') else {
            // Without a colon there is no telling name from value: a credential-like
            // text is not shown at all.
            return Err(match is_credential(s) {
                true => "-H/--header: a header has no ':' (expected 'Name: value')".into(),
                false => format!("-H/--header {s:?}: expected 'Name: value'"),
            });
        };
        let name = name.trim();
        let value = value.trim_matches([' ', '\t']);
        let bad = |why: &str| format!("-H/--header {:?}: {why}", shown(name, s));
        if name.is_empty() {
            return Err(bad("the header has no name (expected 'Name: value')"));
        }
        if let Some(c) = name.chars().find(|c| !is_token_char(*c)) {
            return Err(bad(&format!(
                "{c:?} is not allowed in a header name (letters, digits and !#$%&'*+-.^_`|~ only)"
            )));
        }
        if value.contains(['\r', '\n']) {
            return Err(bad("the value holds a line break (CR or LF)"));
        }
        if let Some(c) = value.chars().find(|c| c.is_control() && *c != '\t') {
            return Err(bad(&format!(
                "the value holds control character U+{:04X}",
                c as u32
            )));
        }
        let lower = name.to_ascii_lowercase();
        if RESERVED.contains(&lower.as_str()) {
            return Err(bad(&format!(
                "servescope sets {name} itself (it frames the request and keeps the connection)"
            )));
        }
        Ok(Header {
            name: name.to_string(),
            value: value.to_string(),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn value(&self) -> &str {
        &self.value
    }

    pub fn is_credential(&self) -> bool {
        is_credential(&self.name)
    }

    /// As it may be saved or printed: `Name: ***` for a credential.
    pub fn redacted(&self) -> String {
        match self.is_credential() {
            true => format!("{}: ***", self.name),
            false => format!("{}: {}", self.name, self.value),
        }
    }
}

/// How a header shows in an error: a credential header's value never does.
fn shown<'a>(name: &str, whole: &'a str) -> std::borrow::Cow<'a, str> {
    match is_credential(name) {
        true => format!("{}: ***", name.trim()).into(),
        false => whole.into(),
    }
}

/// RFC 9110's token characters.
fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

/// The run's `-H` headers, checked and ready to send.
#[derive(Clone, Debug, Default)]
pub struct ExtraHeaders {
    list: Vec<Header>,
}

impl ExtraHeaders {
    /// The same name given twice is refused (which one would the server see?).
    pub fn new(list: Vec<Header>) -> Result<ExtraHeaders, String> {
        for (i, h) in list.iter().enumerate() {
            if list[..i]
                .iter()
                .any(|o| o.name.eq_ignore_ascii_case(&h.name))
            {
                return Err(format!(
                    "-H/--header {} is given twice; give each header once",
                    h.name
                ));
            }
        }
        Ok(ExtraHeaders { list })
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Header> {
        self.list.iter()
    }

    /// A header of this name (any case) is given.
    pub fn has(&self, name: &str) -> bool {
        self.list.iter().any(|h| h.name.eq_ignore_ascii_case(name))
    }

    /// `Name: value\r\n` lines, as the request head carries them.
    pub fn head_lines(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for h in &self.list {
            out.extend_from_slice(h.name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(h.value.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out
    }

    /// For reqwest's calls; credentials marked sensitive (never in its debug output).
    pub fn map(&self) -> HeaderMap {
        let mut map = HeaderMap::new();
        for h in &self.list {
            // Both were checked by `Header::parse`; a non-ASCII value reqwest refuses
            // is left to the request head alone.
            let (Ok(name), Ok(mut value)) = (
                HeaderName::from_bytes(h.name.as_bytes()),
                HeaderValue::from_str(&h.value),
            ) else {
                continue;
            };
            value.set_sensitive(h.is_credential());
            map.insert(name, value);
        }
        map
    }

    /// The credentials' values, and their last word (a scheme's token: `Bearer xyz`), to
    /// be masked wherever a server echoes them.
    pub fn secrets(&self) -> Vec<&str> {
        let mut out = Vec::new();
        for h in self.list.iter().filter(|h| h.is_credential()) {
            out.push(h.value.as_str());
            if let Some((_, last)) = h.value.rsplit_once([' ', '\t'])
                && !last.is_empty()
            {
                out.push(last);
            }
        }
        out
    }
}

/// The command line with each credential `-H` header's value replaced by `***`, in
/// every form clap takes: `-H V`, `--header V`, `--header=V`, `-HV`.
pub fn redact_header_args(argv: &[String]) -> Vec<String> {
    let hide = |v: &str| match v.split_once(':') {
        Some((name, _)) if is_credential(name.trim()) => format!("{}: ***", name.trim()),
        _ => v.to_string(),
    };
    let mut out = Vec::with_capacity(argv.len());
    let mut value_next = false;
    for a in argv {
        if std::mem::take(&mut value_next) {
            out.push(hide(a));
        } else if a == "-H" || a == "--header" {
            value_next = true;
            out.push(a.clone());
        } else if let Some(v) = a.strip_prefix("--header=") {
            out.push(format!("--header={}", hide(v)));
        } else if let Some(v) = a.strip_prefix("-H") {
            out.push(format!("-H{}", hide(v)));
        } else {
            out.push(a.clone());
        }
    }
    out
}

#[cfg(test)]
#[path = "tests_headers.rs"]
mod tests;
