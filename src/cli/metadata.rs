//! `--metadata KEY=VALUE` (repeatable, as vLLM's `bench serve --metadata`): labels saved
//! in results.json's `metadata` and shown with each run, e.g. the server configuration a
//! study ran (`config=max-num-seqs=128`). Labels are saved and printed, so nothing that
//! looks like a credential may go in.

use crate::client::headers::{ExtraHeaders, is_credential};
use crate::client::redact::KeyMask;
use crate::error::Error;
use crate::metrics::ordered_map::OrderedMap;

/// The pairs in the order given; the same key twice is refused (which one is meant?).
pub fn parse(
    given: &[String],
    api_key: Option<&str>,
    headers: &ExtraHeaders,
) -> Result<Option<OrderedMap<String, String>>, Error> {
    if given.is_empty() {
        return Ok(None);
    }
    let mut secrets = headers.secrets();
    secrets.extend(api_key.filter(|k| !k.is_empty()));
    let mask = KeyMask::all(&secrets);
    let mut out = OrderedMap::default();
    for pair in given {
        let (key, value) = one(pair, &mask)?;
        if out.get(key.as_str()).is_some() {
            return Err(Error::Input(format!(
                "--metadata {key}: given twice (one value per key)"
            )));
        }
        out.insert(key, value);
    }
    Ok(Some(out))
}

fn one(pair: &str, mask: &KeyMask) -> Result<(String, String), Error> {
    let bad = |why: String| Error::Input(format!("--metadata: {why}"));
    let Some((key, value)) = pair.split_once('=') else {
        // Without '=' the whole text may be a secret: it is not shown.
        return Err(bad(
            "a label has no '=' (expected KEY=VALUE, e.g. config=tp2)".into(),
        ));
    };
    let key = key.trim();
    if key.is_empty() {
        return Err(bad("a label has no key (expected KEY=VALUE)".into()));
    }
    if let Some(c) = key
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "_-.".contains(*c)))
    {
        return Err(bad(format!(
            "key {:?}: {c:?} is not allowed (letters, digits, '_', '-', '.')",
            crate::console::printable(key)
        )));
    }
    if is_credential(key) {
        return Err(bad(format!(
            "key {key:?} looks like a credential (names with key, token, secret, auth, password, credential are refused): labels are saved and printed"
        )));
    }
    if mask.mask(value) != value {
        return Err(bad(format!(
            "the value of {key} holds the API key or a -H credential (or a part of one): labels are saved and printed"
        )));
    }
    if let Some(c) = value.chars().find(|c| c.is_control()) {
        return Err(bad(format!(
            "the value of {key} holds control character U+{:04X}",
            c as u32
        )));
    }
    Ok((key.to_string(), value.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(given: &[&str], key: Option<&str>) -> Result<Vec<(String, String)>, String> {
        let given: Vec<String> = given.iter().map(|s| s.to_string()).collect();
        let headers = ExtraHeaders::new(vec![
            crate::client::headers::Header::parse("X-Api-Token: hunter2-secret").unwrap(),
        ])
        .unwrap();
        parse(&given, key, &headers)
            .map(|m| m.map(|m| m.0).unwrap_or_default())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn labels_keep_their_order_and_the_first_equals_sign_splits() {
        assert_eq!(
            parsed(&["config=max-num-seqs=128,x=1", "gpu=H100"], None).unwrap(),
            [
                ("config".into(), "max-num-seqs=128,x=1".into()),
                ("gpu".into(), "H100".into())
            ]
        );
        assert_eq!(parsed(&[], Some("k")).unwrap(), []);
    }

    #[test]
    fn credentials_and_bad_labels_are_refused_without_showing_them() {
        let key = Some("sk-abcdef0123456789");
        for (given, says) in [
            ("api_key=x", "looks like a credential"),
            ("AuthHeader=x", "looks like a credential"),
            ("note=sk-abcdef0123456789", "holds the API key"),
            ("note=Bearer hunter2-secret", "holds the API key"),
            ("noequals", "no '='"),
            ("=v", "no key"),
            ("a b=v", "' ' is not allowed"),
            ("n=a\u{1b}[2J", "control character U+001B"),
        ] {
            let e = parsed(&[given], key).unwrap_err();
            assert!(
                e.starts_with("--metadata") && e.contains(says),
                "{given}: {e}"
            );
            assert!(!e.contains("0123456789") && !e.contains("hunter2"), "{e}");
        }
        let e = parsed(&["a=1", "a=2"], None).unwrap_err();
        assert!(e.contains("given twice"), "{e}");
    }
}
