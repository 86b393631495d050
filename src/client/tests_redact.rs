use super::*;

const KEY: &str = "sk-tëst-ключ-0123456789abcdef";

fn masked(text: &str) -> String {
    KeyMask::new(KEY).mask(text).into_owned()
}

fn percent(s: &str) -> String {
    s.bytes().map(|b| format!("%{b:02X}")).collect()
}

fn latin1(s: &str) -> String {
    s.bytes().map(char::from).collect()
}

fn json_u(s: &str) -> String {
    s.encode_utf16().map(|u| format!("\\u{u:04x}")).collect()
}

#[test]
fn text_without_the_key_is_untouched() {
    let t = "HTTP 401: invalid API key provided (see https://x.test/keys?a=%20b) \\u00e9";
    assert!(matches!(KeyMask::new(KEY).mask(t), Cow::Borrowed(_)));
    assert!(matches!(KeyMask::none().mask(t), Cow::Borrowed(_)));
    assert!(matches!(KeyMask::new("").mask(t), Cow::Borrowed(_)));
}

#[test]
fn the_key_as_sent_is_masked() {
    assert_eq!(
        masked(&format!("bad key Bearer {KEY}.")),
        "bad key Bearer ***."
    );
}

#[test]
fn the_key_decoded_as_latin1_is_masked() {
    let echo = latin1(KEY);
    assert_ne!(echo, KEY);
    assert_eq!(
        masked(&format!("key '{echo}' unknown")),
        "key '***' unknown"
    );
}

#[test]
fn the_key_percent_encoded_in_either_case_or_partly_is_masked() {
    let upper = percent(KEY);
    let lower = upper.to_lowercase();
    // As a browser encodes a URL: ASCII kept, the rest escaped.
    let partly: String = KEY
        .chars()
        .map(|c| {
            if c.is_ascii() {
                c.to_string()
            } else {
                percent(&c.to_string())
            }
        })
        .collect();
    for echo in [upper, lower, partly] {
        assert_eq!(masked(&format!("k={echo}&x=1")), "k=***&x=1", "{echo}");
    }
}

#[test]
fn the_key_json_escaped_is_masked() {
    let all = json_u(KEY);
    let some: String = KEY
        .chars()
        .map(|c| {
            if c.is_ascii() {
                c.to_string()
            } else {
                json_u(&c.to_string())
            }
        })
        .collect();
    for echo in [all, some, json_u(&latin1(KEY))] {
        assert_eq!(masked(&format!("{{\"k\":\"{echo}\"}}")), "{\"k\":\"***\"}");
    }
}

#[test]
fn astral_characters_escaped_as_surrogate_pairs_are_masked() {
    let key = "🔑🔑🔑🔑🔑🔑🔑🔑🔑";
    let echo = json_u(key);
    assert!(echo.contains("\\ud83d\\udd11"));
    assert_eq!(KeyMask::new(key).mask(&echo), "***");
}

#[test]
fn any_part_of_eight_characters_is_masked() {
    let chars: Vec<char> = KEY.chars().collect();
    let prefix: String = chars[..MIN_PART].iter().collect();
    let suffix: String = chars[chars.len() - 10..].iter().collect();
    let middle: String = chars[5..5 + MIN_PART].iter().collect();
    for part in [&prefix, &suffix, &middle] {
        assert_eq!(masked(&format!("<{part}>")), "<***>", "{part}");
        assert_eq!(masked(&format!("<{}>", percent(part))), "<***>", "{part}");
        assert_eq!(masked(&format!("<{}>", latin1(part))), "<***>", "{part}");
    }
    // Shorter parts are not the key's: a 7-character piece is left.
    let seven: String = chars[..MIN_PART - 1].iter().collect();
    assert_eq!(masked(&format!("<{seven}>")), format!("<{seven}>"));
}

#[test]
fn a_key_shorter_than_a_part_is_masked_whole() {
    let m = KeyMask::new("abc");
    assert_eq!(m.mask("x abc y ab"), "x *** y ab");
}

#[test]
fn overlapping_and_repeated_echoes_become_one_mask_each() {
    let t = format!("{KEY}{KEY} and {} then {KEY}", percent(KEY));
    assert_eq!(masked(&t), "*** and *** then ***");
}

#[test]
fn escapes_that_decode_to_nothing_of_the_key_are_kept() {
    let t = "100% sure \\u12 \\ud800 alone %zz \\q";
    assert_eq!(masked(t), t);
}

#[test]
fn debug_output_shows_no_part_of_the_key() {
    let shown = format!("{:?}", KeyMask::new(KEY));
    assert_eq!(shown, "KeyMask(***)");
}
