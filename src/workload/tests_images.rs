use base64::Engine;
use serde_json::json;

use super::*;
use crate::client::openai::{Api, BodyOptions};
use crate::feed::Feeder;
use crate::shard::Pick;
use crate::workload::Tokenizer;
use crate::workload::prepare::{PromptSource, WorkloadSpec, prepare_range};
use crate::workload::synthetic::{LengthSpec, SyntheticKind, SyntheticPrompts};

fn spec(count: u32, w: u32, h: u32, format: ImageFormat) -> ImageSpec {
    ImageSpec {
        count,
        width: w,
        height: h,
        format,
    }
}

/// Width and height from a PNG's IHDR chunk.
fn png_size(b: &[u8]) -> (u32, u32) {
    assert_eq!(&b[..8], b"\x89PNG\r\n\x1a\n");
    assert_eq!(&b[12..16], b"IHDR");
    let be = |s: &[u8]| u32::from_be_bytes(s.try_into().unwrap());
    (be(&b[16..20]), be(&b[20..24]))
}

/// Width and height from a JPEG's start-of-frame marker.
fn jpeg_size(b: &[u8]) -> (u32, u32) {
    assert_eq!(&b[..2], [0xff, 0xd8]);
    let mut i = 2;
    while i + 9 < b.len() {
        assert_eq!(b[i], 0xff, "a marker at {i}");
        let marker = b[i + 1];
        let len = u16::from_be_bytes([b[i + 2], b[i + 3]]) as usize;
        if (0xc0..=0xc2).contains(&marker) {
            let h = u16::from_be_bytes([b[i + 5], b[i + 6]]);
            let w = u16::from_be_bytes([b[i + 7], b[i + 8]]);
            return (u32::from(w), u32::from(h));
        }
        i += 2 + len;
    }
    panic!("no start-of-frame marker")
}

fn decode_url(url: &str) -> (String, Vec<u8>) {
    let rest = url.strip_prefix("data:").unwrap();
    let (mime, b64) = rest.split_once(";base64,").unwrap();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap();
    (mime.to_string(), bytes)
}

#[test]
fn images_have_the_size_asked_for_and_decode() {
    for (w, h) in [(1, 1), (17, 9), (64, 48), (300, 200)] {
        let png = spec(1, w, h, ImageFormat::Png).image(1, 0, 3, 0).unwrap();
        assert_eq!(png_size(&png), (w, h));
        // The png crate reads it back, every pixel.
        let mut reader = png::Decoder::new(std::io::Cursor::new(&png))
            .read_info()
            .unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!((info.width, info.height), (w, h));
        assert_eq!(info.color_type, png::ColorType::Rgb);
        let jpeg = spec(1, w, h, ImageFormat::Jpeg).image(1, 0, 3, 0).unwrap();
        assert_eq!(jpeg_size(&jpeg), (w, h));
        assert_eq!(&jpeg[jpeg.len() - 2..], [0xff, 0xd9], "ends with EOI");
    }
}

#[test]
fn images_are_fixed_by_the_seed_and_differ_per_request() {
    let s = spec(2, 32, 32, ImageFormat::Png);
    let a = s.urls(5, 0, 7).unwrap();
    assert_eq!(a.len(), 2);
    assert_eq!(a, s.urls(5, 0, 7).unwrap(), "same seed, same images");
    assert_ne!(a[0], a[1], "two images of one request differ");
    assert_ne!(a, s.urls(5, 0, 8).unwrap(), "another request");
    assert_ne!(a, s.urls(6, 0, 7).unwrap(), "another seed");
    assert_ne!(a, s.urls(5, 1, 7).unwrap(), "another run");
    let (mime, bytes) = decode_url(&a[0]);
    assert_eq!(mime, "image/png");
    assert_eq!(png_size(&bytes), (32, 32));
    let j = spec(1, 40, 20, ImageFormat::Jpeg).urls(5, 0, 7).unwrap();
    let (mime, bytes) = decode_url(&j[0]);
    assert_eq!(mime, "image/jpeg");
    assert_eq!(jpeg_size(&bytes), (40, 20));
}

#[test]
fn sizes_and_formats_parse_or_say_what_was_expected() {
    assert_eq!(parse_size("512x384"), Ok((512, 384)));
    assert_eq!(parse_size("8X8"), Ok((8, 8)));
    for bad in [
        "512", "0x5", "5x0", "x5", "5x", "-1x5", "9000x10", "1.5x2", "axb",
    ] {
        let err = parse_size(bad).unwrap_err();
        assert!(err.contains("expected WxH"), "{bad}: {err}");
    }
    assert_eq!("png".parse(), Ok(ImageFormat::Png));
    assert_eq!("JPG".parse(), Ok(ImageFormat::Jpeg));
    assert!(
        "gif"
            .parse::<ImageFormat>()
            .unwrap_err()
            .contains("png or jpeg")
    );
}

#[test]
fn images_go_after_the_last_user_turn_text() {
    let urls = vec![
        "data:image/png;base64,AA".to_string(),
        "https://x/y.jpg".into(),
    ];
    let got = attach(Prompt::Text("hello"), &urls).unwrap();
    assert_eq!(
        got,
        json!([{"role": "user", "content": [
            {"type": "text", "text": "hello"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA"}},
            {"type": "image_url", "image_url": {"url": "https://x/y.jpg"}},
        ]}])
    );
    let history = json!([
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": [{"type": "text", "text": "second"}]},
    ]);
    let got = attach(Prompt::Messages(&history), &urls[1..]).unwrap();
    assert_eq!(got[1], history[1], "an earlier turn is left alone");
    assert_eq!(
        got[3]["content"],
        json!([{"type": "text", "text": "second"},
               {"type": "image_url", "image_url": {"url": "https://x/y.jpg"}}])
    );
    assert!(has_images(&got));
    assert!(!has_images(&history));
    assert!(attach(Prompt::TokenIds(&[1, 2]), &urls).is_none());
}

fn workload(images: ImageSpec) -> WorkloadSpec {
    let tok = Tokenizer::builtin();
    WorkloadSpec {
        source: PromptSource::Synthetic {
            input_len: LengthSpec::Fixed(20),
            prompts: SyntheticPrompts::resolve(SyntheticKind::Words, &tok).0,
        },
        output_len: LengthSpec::Fixed(4),
        seed: 3,
        token_ids: false,
        models: None,
        images: Some(images),
    }
}

fn opts(api: Api) -> BodyOptions {
    BodyOptions {
        api,
        model: "m".into(),
        ignore_eos: true,
        extra: Default::default(),
        tools: Default::default(),
        batch_inputs: 1,
    }
}

#[test]
fn requests_carry_their_images_in_chat_and_responses_bodies() {
    let tok = Tokenizer::builtin();
    let w = workload(spec(2, 16, 16, ImageFormat::Png));
    let reqs = prepare_range(&w, &opts(Api::Chat), &tok, 0, 0..3).unwrap();
    for r in &reqs {
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        let parts = v["messages"][0]["content"].as_array().unwrap();
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[0]["type"], "text");
        let urls = w.images.unwrap().urls(3, 0, r.id).unwrap();
        for (k, url) in urls.iter().enumerate() {
            assert_eq!(parts[k + 1]["type"], "image_url");
            assert_eq!(parts[k + 1]["image_url"]["url"], url.as_str());
        }
        assert_eq!(r.input_tokens, 20, "the client counts the text");
    }
    let again = prepare_range(&w, &opts(Api::Chat), &tok, 0, 0..3).unwrap();
    assert!(reqs.iter().zip(&again).all(|(a, b)| a.body == b.body));
    let resp = prepare_range(&w, &opts(Api::Responses), &tok, 0, 0..1).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&resp[0].body).unwrap();
    let parts = v["input"][0]["content"].as_array().unwrap();
    assert_eq!(parts[1]["type"], "input_image");
}

#[test]
fn large_image_requests_stay_within_the_prepare_ahead_budget() {
    let tok = Tokenizer::builtin();
    // Noisy 256×256 PNGs: some 100 KB or more each, so 1 MB holds a few requests.
    let w = workload(spec(1, 256, 256, ImageFormat::Png));
    let body = opts(Api::Chat);
    let feeder = Feeder {
        workload: &w,
        body: &body,
        tokenizer: &tok,
        run: 0,
        keep_turns: false,
        pick: &Pick::default(),
    };
    let one = prepare_range(&w, &body, &tok, 0, 0..1).unwrap();
    assert!(one[0].body.len() > 100_000, "{} bytes", one[0].body.len());
    // The bytes built ahead stay within the budget plus one request.
    let ahead = feeder.upfront(2000, 1 << 20, &|| false).unwrap();
    let bytes: usize = ahead.iter().map(|r| r.body.len()).sum();
    let largest = ahead.iter().map(|r| r.body.len()).max().unwrap();
    assert!(
        bytes <= (1 << 20) + largest,
        "{} requests, {bytes} bytes",
        ahead.len()
    );
    assert!(bytes >= 1 << 20, "{bytes} bytes: the budget is used");
    let text_only = WorkloadSpec {
        images: None,
        ..w.clone()
    };
    let feeder = Feeder {
        workload: &text_only,
        ..feeder
    };
    assert_eq!(
        feeder.upfront(2000, 1 << 20, &|| false).unwrap().len(),
        2000
    );
}
