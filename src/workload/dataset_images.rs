//! A dataset entry's `"images": ["photo.png", "https://…"]`: attached to its prompt as
//! chat image parts when the entry is read; image files (relative to the dataset's
//! directory) are embedded as data URLs once the whole file is read, URLs (and data
//! URLs) are passed as they are.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::Prompt;
use super::dataset::{DatasetEntry, DatasetError, PromptContent};
use super::dataset_entry::describe;
use super::images::{attach, data_url};

/// The entry's content with its `images` attached (as written: files are embedded by
/// [`embed_files`]); `null` and `[]` count as absent.
pub(super) fn with_images(
    location: &str,
    map: &mut Map<String, Value>,
    content: PromptContent,
) -> Result<PromptContent, DatasetError> {
    let field_err = |problem: String| DatasetError::Field {
        location: location.to_string(),
        field: "images",
        problem,
    };
    let list = match map.remove("images") {
        None | Some(Value::Null) => return Ok(content),
        Some(Value::Array(a)) if a.is_empty() => return Ok(content),
        Some(Value::Array(a)) => a,
        Some(other) => {
            return Err(field_err(format!(
                "must be a list of image file paths or URLs, found {}",
                describe(&other)
            )));
        }
    };
    let mut urls = Vec::with_capacity(list.len());
    for (i, v) in list.into_iter().enumerate() {
        match v {
            Value::String(s) if !s.is_empty() => urls.push(s),
            other => {
                return Err(field_err(format!(
                    "image {}: expected a file path or URL, found {}",
                    i + 1,
                    describe(&other)
                )));
            }
        }
    }
    let prompt = match &content {
        PromptContent::Text(t) => Prompt::Text(t),
        PromptContent::Messages(m) => Prompt::Messages(m),
    };
    Ok(match attach(prompt, &urls) {
        Some(m) => PromptContent::Messages(m),
        None => content,
    })
}

/// A URL with a scheme (`https:`, `data:`) is sent as it is; anything else is a file.
fn is_url(s: &str) -> bool {
    s.starts_with("data:")
        || s.split_once("://").is_some_and(|(scheme, _)| {
            !scheme.is_empty()
                && scheme
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'+')
        })
}

/// Embeds every image part naming a file (relative to `dir`, the dataset's directory) as
/// a data URL; each file is read once.
pub(super) fn embed_files(entries: &mut [DatasetEntry], dir: &Path) -> Result<(), DatasetError> {
    let mut read: HashMap<PathBuf, String> = HashMap::new();
    for e in entries.iter_mut() {
        let PromptContent::Messages(Value::Array(list)) = &mut e.content else {
            continue;
        };
        for part in list
            .iter_mut()
            .filter_map(|m| m.get_mut("content").and_then(Value::as_array_mut))
            .flatten()
        {
            let Some(url) = part.pointer_mut("/image_url/url") else {
                continue;
            };
            let Some(given) = url.as_str().filter(|u| !is_url(u)) else {
                continue;
            };
            let path = dir.join(given);
            let embedded = match read.get(&path) {
                Some(u) => u.clone(),
                None => {
                    let u = embed(&path).map_err(|problem| DatasetError::Field {
                        location: e.location.clone(),
                        field: "images",
                        problem: format!("image {given:?} ({}): {problem}", path.display()),
                    })?;
                    read.insert(path, u.clone());
                    u
                }
            };
            *url = Value::String(embedded);
        }
    }
    Ok(())
}

fn embed(path: &Path) -> Result<String, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read it: {e}"))?;
    let mime = mime_of(&bytes).ok_or(
        "not a PNG, JPEG, GIF or WebP image (expected one of those, as a file path or an http(s) URL)",
    )?;
    Ok(data_url(mime, &bytes))
}

/// The image type from its first bytes (an extension can lie).
fn mime_of(b: &[u8]) -> Option<&'static str> {
    if b.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if b.starts_with(&[0xff, 0xd8, 0xff]) {
        Some("image/jpeg")
    } else if b.starts_with(b"GIF87a") || b.starts_with(b"GIF89a") {
        Some("image/gif")
    } else if b.len() >= 12 && &b[..4] == b"RIFF" && &b[8..12] == b"WEBP" {
        Some("image/webp")
    } else {
        None
    }
}
