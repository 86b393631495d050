//! Images in requests: `--images N --image-size WxH` synthetic PNG or JPEG images,
//! deterministic from the seed and the request (each request's differ, so no cache can
//! reuse them), and the attaching of image URLs to a prompt as chat content parts
//! (`[{"type":"text",…},{"type":"image_url","image_url":{"url":…}}]`).

use std::fmt;
use std::str::FromStr;

use base64::Engine;
use bytes::Bytes;
use serde_json::{Value, json};

use super::words::{SplitMix, mix};
use super::{EncodeBody, Prompt, tools::ToolSet};

const IMAGE_STREAM: u64 = 0x496d_6167_6573_0001;
/// Largest side: JPEG headers hold 16 bits, and 8192² already makes a 200 MB body.
pub const MAX_SIDE: u32 = 8192;
/// Side of the flat-coloured tiles an image is made of (with per-pixel noise on top),
/// so PNG and JPEG compress it about as much as a photo rather than not at all.
const TILE: u32 = 16;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageFormat {
    Png,
    Jpeg,
}

impl ImageFormat {
    pub fn mime(self) -> &'static str {
        match self {
            ImageFormat::Png => "image/png",
            ImageFormat::Jpeg => "image/jpeg",
        }
    }
}

impl FromStr for ImageFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "png" => Ok(ImageFormat::Png),
            "jpeg" | "jpg" => Ok(ImageFormat::Jpeg),
            _ => Err(format!("{s:?}: expected png or jpeg")),
        }
    }
}

impl fmt::Display for ImageFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ImageFormat::Png => "png",
            ImageFormat::Jpeg => "jpeg",
        })
    }
}

/// `--image-size WxH`.
pub fn parse_size(s: &str) -> Result<(u32, u32), String> {
    let err = || format!("{s:?}: expected WxH, e.g. 512x512, each side 1 to {MAX_SIDE} pixels");
    let (w, h) = s.split_once(['x', 'X']).ok_or_else(err)?;
    let side = |t: &str| {
        t.parse::<u32>()
            .ok()
            .filter(|n| (1..=MAX_SIDE).contains(n) && t.bytes().all(|b| b.is_ascii_digit()))
    };
    match (side(w), side(h)) {
        (Some(w), Some(h)) => Ok((w, h)),
        _ => Err(err()),
    }
}

/// N synthetic images per request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageSpec {
    pub count: u32,
    pub width: u32,
    pub height: u32,
    pub format: ImageFormat,
}

impl ImageSpec {
    /// Image `k` of request `i` of run `run`, encoded.
    pub fn image(&self, seed: u64, run: u64, i: u64, k: u32) -> Result<Vec<u8>, String> {
        let key = mix(seed ^ IMAGE_STREAM ^ mix(run ^ mix(i ^ mix(u64::from(k)))));
        let pixels = pixels(self.width, self.height, key);
        encode(self.format, self.width, self.height, &pixels)
    }

    /// The data URLs of request `i`'s images.
    pub fn urls(&self, seed: u64, run: u64, i: u64) -> Result<Vec<String>, String> {
        (0..self.count)
            .map(|k| Ok(data_url(self.format.mime(), &self.image(seed, run, i, k)?)))
            .collect()
    }
}

/// RGB pixels: flat tiles of a random colour, with a little noise on every pixel.
fn pixels(width: u32, height: u32, key: u64) -> Vec<u8> {
    let (w, h) = (width as usize, height as usize);
    let tiles_x = w.div_ceil(TILE as usize);
    let mut rng = SplitMix(key);
    let colours: Vec<u64> = (0..tiles_x * h.div_ceil(TILE as usize))
        .map(|_| rng.next_u64())
        .collect();
    let mut out = Vec::with_capacity(w * h * 3);
    for y in 0..h {
        let row = (y / TILE as usize) * tiles_x;
        for x in 0..w {
            let c = colours[row + x / TILE as usize];
            let noise = rng.next_u64();
            for ch in 0..3 {
                let base = (c >> (ch * 8)) as u8;
                out.push(base.wrapping_add((noise >> (ch * 8)) as u8 & 0x0f));
            }
        }
    }
    out
}

fn encode(format: ImageFormat, width: u32, height: u32, rgb: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    match format {
        ImageFormat::Png => {
            let mut enc = png::Encoder::new(&mut out, width, height);
            enc.set_color(png::ColorType::Rgb);
            enc.set_depth(png::BitDepth::Eight);
            enc.set_compression(png::Compression::Fast);
            let mut writer = enc.write_header().map_err(|e| format!("PNG: {e}"))?;
            writer
                .write_image_data(rgb)
                .map_err(|e| format!("PNG: {e}"))?;
            writer.finish().map_err(|e| format!("PNG: {e}"))?;
        }
        ImageFormat::Jpeg => {
            let (w, h) = (side16(width)?, side16(height)?);
            jpeg_encoder::Encoder::new(&mut out, 85)
                .encode(rgb, w, h, jpeg_encoder::ColorType::Rgb)
                .map_err(|e| format!("JPEG: {e}"))?;
        }
    }
    Ok(out)
}

fn side16(n: u32) -> Result<u16, String> {
    u16::try_from(n).map_err(|_| format!("JPEG: a side of {n} pixels is more than 65535"))
}

/// `data:MIME;base64,…`.
pub fn data_url(mime: &str, bytes: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut s = String::with_capacity(mime.len() + 13 + bytes.len().div_ceil(3) * 4);
    s.push_str("data:");
    s.push_str(mime);
    s.push_str(";base64,");
    b64.encode_string(bytes, &mut s);
    s
}

/// The prompt as chat messages whose last user message carries the images after its
/// text; token ids are left as they are (options refuse images with them).
pub fn attach(prompt: Prompt<'_>, urls: &[String]) -> Option<Value> {
    let parts = urls
        .iter()
        .map(|u| json!({"type": "image_url", "image_url": {"url": u}}));
    match prompt {
        Prompt::TokenIds(_) => None,
        Prompt::Text(t) => {
            let mut content = vec![json!({"type": "text", "text": t})];
            content.extend(parts);
            Some(json!([{"role": "user", "content": content}]))
        }
        Prompt::Messages(m) => {
            let mut m = m.clone();
            let Some(list) = m.as_array_mut() else {
                return Some(m);
            };
            let last_user = list
                .iter()
                .rposition(|msg| msg.get("role").and_then(Value::as_str) == Some("user"));
            let Some(msg) = last_user.and_then(|i| list[i].as_object_mut()) else {
                list.push(json!({"role": "user", "content": parts.collect::<Vec<_>>()}));
                return Some(m);
            };
            let mut content = match msg.remove("content") {
                Some(Value::Array(a)) => a,
                Some(Value::String(s)) => vec![json!({"type": "text", "text": s})],
                _ => Vec::new(),
            };
            content.extend(parts);
            msg.insert("content".into(), Value::Array(content));
            Some(m)
        }
    }
}

/// Whether a chat history carries an image part.
pub fn has_images(messages: &Value) -> bool {
    messages.as_array().into_iter().flatten().any(|m| {
        m.get("content")
            .and_then(Value::as_array)
            .is_some_and(|parts| parts.iter().any(|p| p.get("image_url").is_some()))
    })
}

/// Images go in chat content parts: the completions and embeddings APIs take none.
/// `flag`: they come from `--images` (else from the dataset's entries).
pub fn check_api(api: crate::client::openai::Api, flag: bool) -> Result<(), String> {
    use crate::client::openai::Api;
    if matches!(api, Api::Chat | Api::Responses) {
        return Ok(());
    }
    let source = match flag {
        true => "--images needs",
        false => "--dataset: entries carry images, which need",
    };
    Err(format!(
        "{source} the chat or responses API, and this is the {} API",
        api.as_str()
    ))
}

/// An encoder that adds images to every prompt it is handed, then encodes as `inner`.
pub struct WithImages<'a> {
    pub inner: &'a dyn EncodeBody,
    pub urls: Vec<String>,
}

impl WithImages<'_> {
    fn with<R>(&self, prompt: Prompt<'_>, f: impl FnOnce(Prompt<'_>) -> R) -> R {
        match attach(prompt, &self.urls) {
            Some(m) => f(Prompt::Messages(&m)),
            None => f(prompt),
        }
    }
}

impl EncodeBody for WithImages<'_> {
    fn encode(&self, prompt: Prompt<'_>, max_tokens: u32) -> Bytes {
        self.with(prompt, |p| self.inner.encode(p, max_tokens))
    }

    fn encode_with_tools(
        &self,
        prompt: Prompt<'_>,
        max_tokens: u32,
        tools: Option<&ToolSet>,
    ) -> Bytes {
        self.with(prompt, |p| {
            self.inner.encode_with_tools(p, max_tokens, tools)
        })
    }

    fn encode_as(
        &self,
        model: &str,
        prompt: Prompt<'_>,
        max_tokens: u32,
        tools: Option<&ToolSet>,
    ) -> Bytes {
        self.with(prompt, |p| {
            self.inner.encode_as(model, p, max_tokens, tools)
        })
    }

    fn sends_messages(&self) -> bool {
        self.inner.sends_messages()
    }
}

#[cfg(test)]
#[path = "tests_images.rs"]
mod tests;
