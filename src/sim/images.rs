//! Image content parts: each costs a fixed number of prompt tokens
//! (`SimConfig::image_tokens`). An image stands in the prompt as that many output words
//! (`stream::WORDS`, one cl100k token each, also side by side) drawn from a hash of its
//! URL, so the token count is exact and the same image is the same tokens (a prefix
//! cache can reuse it, as a server's encoder cache does).

use serde::Deserialize;

use super::stream::{WORDS, mix};

/// LLaVA-1.5's 576 tokens per image (a 336-pixel image in 14-pixel patches).
pub const DEFAULT_IMAGE_TOKENS: u32 = 576;

/// A content part's `image_url`: chat's `{"url": …}`, or the Responses API's plain URL.
#[derive(Deserialize)]
#[serde(untagged)]
pub(super) enum ImageUrl {
    Object { url: Option<String> },
    Url(String),
}

impl ImageUrl {
    fn url(&self) -> &str {
        match self {
            ImageUrl::Object { url } => url.as_deref().unwrap_or(""),
            ImageUrl::Url(u) => u,
        }
    }
}

/// The text an image costs as: `tokens` words chosen by its URL.
pub(super) fn image_text(image: &ImageUrl, tokens: u32) -> String {
    // FNV-1a of the URL: stable across Rust versions.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in image.url().as_bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    let mut out = String::with_capacity(tokens as usize * 7);
    let mut state = h;
    for _ in 0..tokens {
        state = mix(state);
        out.push_str(WORDS[(state % WORDS.len() as u64) as usize]);
    }
    out
}
