//! `--reset-cache-url`: empty the server's prefix cache before a round. A preset word
//! names the engine's own route on the server root (where the tokenizer routes hang,
//! below a gateway's prefix); llama.cpp has no route for the whole cache, so its
//! preset erases every slot the server lists.

use reqwest::Url;

use crate::client::HttpClient;
use crate::metrics::server::same_origin;

/// The words `--reset-cache-url` takes besides a URL.
pub const PRESETS: [&str; 3] = ["vllm", "sglang", "llamacpp"];

/// What a reset does.
#[derive(Debug, PartialEq)]
enum Reset {
    /// POST, empty body (vLLM's `/reset_prefix_cache`, SGLang's `/flush_cache`, a URL).
    Post(Url),
    /// llama.cpp: `GET /slots` for the ids, then `POST /slots/{id}?action=erase` each.
    LlamaSlots(Url),
}

/// `given` (a URL, or a path taken on `server_root`) as a URL.
pub fn route(server_root: &Url, given: &str) -> Result<Url, String> {
    let parsed = match given.strip_prefix('/') {
        Some(path) => server_root.join(path),
        None => Url::parse(given),
    };
    parsed.map_err(|e| format!("not a URL ({e})"))
}

fn resolve(server_root: &Url, given: &str) -> Result<Reset, String> {
    Ok(match given {
        "vllm" => Reset::Post(route(server_root, "/reset_prefix_cache")?),
        "sglang" => Reset::Post(route(server_root, "/flush_cache")?),
        "llamacpp" => Reset::LlamaSlots(route(server_root, "/slots")?),
        url => Reset::Post(route(server_root, url)?),
    })
}

/// Empty the cache as `given` says; the API key (and `-H` headers) only go to the
/// benchmarked server's origin. Returns what was done, for a note.
pub async fn reset(client: &HttpClient, server_root: &Url, given: &str) -> Result<String, String> {
    match resolve(server_root, given)? {
        Reset::Post(url) => {
            let with_key = same_origin(&url, server_root);
            client.post_empty(&url, with_key).await?;
            Ok(format!("POST {url}"))
        }
        Reset::LlamaSlots(slots) => erase_slots(client, &slots).await,
    }
}

/// Every slot llama.cpp lists, erased in turn (a busy slot is erased once idle).
async fn erase_slots(client: &HttpClient, slots: &Url) -> Result<String, String> {
    let list = client
        .get_json(slots)
        .await
        .map_err(|e| format!("GET {slots}: {e} (llama-server serves /slots unless --no-slots)"))?;
    let ids = slot_ids(&list).ok_or_else(|| {
        format!("GET {slots}: expected a JSON array of slots with numeric \"id\"s")
    })?;
    for id in &ids {
        let mut url = slots.clone();
        url.path_segments_mut()
            .map_err(|()| format!("{slots}: cannot take a slot's path below it"))?
            .push(&id.to_string());
        url.set_query(Some("action=erase"));
        client.post_empty(&url, true).await.map_err(|e| {
            let hint = match e.starts_with("HTTP 501") {
                true => " (llama-server allows slot actions only when started with --slot-save-path DIR)",
                false => "",
            };
            format!("POST {url}: {e}{hint}")
        })?;
    }
    Ok(format!("erased {} llama.cpp slots at {slots}", ids.len()))
}

fn slot_ids(list: &serde_json::Value) -> Option<Vec<u64>> {
    list.as_array()?
        .iter()
        .map(|s| s.get("id").and_then(serde_json::Value::as_u64))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_and_paths_hang_on_the_server_root() {
        let root = Url::parse("http://gw:8/llama/").unwrap();
        let post = |u: &str| Reset::Post(Url::parse(u).unwrap());
        assert_eq!(
            resolve(&root, "vllm").unwrap(),
            post("http://gw:8/llama/reset_prefix_cache")
        );
        assert_eq!(
            resolve(&root, "sglang").unwrap(),
            post("http://gw:8/llama/flush_cache")
        );
        assert_eq!(
            resolve(&root, "llamacpp").unwrap(),
            Reset::LlamaSlots(Url::parse("http://gw:8/llama/slots").unwrap())
        );
        assert_eq!(
            resolve(&root, "/x/y").unwrap(),
            post("http://gw:8/llama/x/y")
        );
        assert_eq!(
            resolve(&root, "http://o:9/r").unwrap(),
            post("http://o:9/r")
        );
        assert!(resolve(&root, "vlm").is_err(), "not a preset, not a URL");
    }

    #[test]
    fn slot_ids_need_an_array_of_ids() {
        let j = |s: &str| serde_json::from_str::<serde_json::Value>(s).unwrap();
        assert_eq!(slot_ids(&j(r#"[{"id":0},{"id":3}]"#)), Some(vec![0, 3]));
        assert_eq!(slot_ids(&j(r#"[{"id":"a"}]"#)), None);
        assert_eq!(slot_ids(&j(r#"{"id":0}"#)), None);
    }
}
