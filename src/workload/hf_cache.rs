//! `--tokenizer ORG/NAME`: a model's `tokenizer.json` from the local Hugging Face cache,
//! found the way `huggingface_hub` lays it out. Never the network: a benchmark must not
//! depend on (or wait for) a download.

use std::path::{Path, PathBuf};

/// Where the cache is, as `huggingface_hub` decides it.
#[derive(Clone, Debug, Default)]
pub struct CacheEnv {
    pub hf_hub_cache: Option<PathBuf>,
    pub hf_home: Option<PathBuf>,
    pub home: Option<PathBuf>,
}

impl CacheEnv {
    pub fn from_process() -> CacheEnv {
        let var = |k: &str| {
            std::env::var_os(k)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        CacheEnv {
            hf_hub_cache: var("HF_HUB_CACHE"),
            hf_home: var("HF_HOME"),
            home: var("HOME"),
        }
    }

    /// `$HF_HUB_CACHE`, else `$HF_HOME/hub`, else `~/.cache/huggingface/hub`.
    pub fn hub(&self) -> Option<PathBuf> {
        if let Some(p) = &self.hf_hub_cache {
            return Some(p.clone());
        }
        if let Some(p) = &self.hf_home {
            return Some(p.join("hub"));
        }
        self.home
            .as_ref()
            .map(|h| h.join(".cache").join("huggingface").join("hub"))
    }
}

/// `ORG/NAME`: one slash between two non-empty names that are not `.` or `..`.
pub fn is_repo_id(spec: &str) -> bool {
    let Some((org, name)) = spec.split_once('/') else {
        return false;
    };
    let ok = |s: &str| !s.is_empty() && s != "." && s != ".." && !s.contains(['/', '\\']);
    ok(org) && ok(name)
}

/// The cached `tokenizer.json` of `repo`: the snapshot `refs/main` names first, then any
/// other snapshot holding one. `Err` lists the paths searched.
pub fn find(repo: &str, env: &CacheEnv) -> Result<PathBuf, String> {
    let Some(hub) = env.hub() else {
        return Err("no cache directory (HF_HUB_CACHE, HF_HOME and HOME are unset)".into());
    };
    let model = hub.join(format!("models--{}", repo.replace('/', "--")));
    let snapshots = model.join("snapshots");
    let mut searched = Vec::new();
    if let Ok(rev) = std::fs::read_to_string(model.join("refs").join("main")) {
        let f = snapshots.join(rev.trim()).join("tokenizer.json");
        if f.is_file() {
            return Ok(f);
        }
        searched.push(f);
    }
    for dir in sorted_dirs(&snapshots) {
        let f = dir.join("tokenizer.json");
        if f.is_file() {
            return Ok(f);
        }
        if !searched.contains(&f) {
            searched.push(f);
        }
    }
    if searched.is_empty() {
        searched.push(snapshots.join("<revision>").join("tokenizer.json"));
    }
    let list: Vec<String> = searched.iter().map(|p| p.display().to_string()).collect();
    Err(format!("searched {}", list.join(", ")))
}

/// Snapshot directories in name order, so the choice does not depend on the filesystem.
fn sorted_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(p: &Path, text: &str) {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    #[test]
    fn repo_ids() {
        for ok in ["Qwen/Qwen2.5-0.5B", "a/b"] {
            assert!(is_repo_id(ok), "{ok}");
        }
        for bad in ["a", "/a", "a/", "a/b/c", "./a", "../a", "a/.."] {
            assert!(!is_repo_id(bad), "{bad}");
        }
    }

    #[test]
    fn the_hub_directory_follows_the_environment() {
        let env = |c: Option<&str>, h: Option<&str>, home: Option<&str>| CacheEnv {
            hf_hub_cache: c.map(PathBuf::from),
            hf_home: h.map(PathBuf::from),
            home: home.map(PathBuf::from),
        };
        assert_eq!(
            env(Some("/c"), Some("/h"), Some("/u")).hub(),
            Some("/c".into())
        );
        assert_eq!(
            env(None, Some("/h"), Some("/u")).hub(),
            Some("/h/hub".into())
        );
        assert_eq!(
            env(None, None, Some("/u")).hub(),
            Some("/u/.cache/huggingface/hub".into())
        );
        assert_eq!(env(None, None, None).hub(), None);
    }

    #[test]
    fn refs_main_wins_over_other_snapshots() {
        let dir = tempfile::tempdir().unwrap();
        let model = dir.path().join("models--org--name");
        write(&model.join("snapshots/aaa/tokenizer.json"), "old");
        write(&model.join("snapshots/bbb/tokenizer.json"), "main");
        write(&model.join("refs/main"), "bbb\n");
        let env = CacheEnv {
            hf_hub_cache: Some(dir.path().into()),
            ..CacheEnv::default()
        };
        let f = find("org/name", &env).unwrap();
        assert_eq!(std::fs::read_to_string(f).unwrap(), "main");
        // Without refs/main, a snapshot holding one still serves.
        std::fs::remove_file(model.join("refs/main")).unwrap();
        assert!(
            find("org/name", &env)
                .unwrap()
                .ends_with("aaa/tokenizer.json")
        );
    }

    #[test]
    fn a_missing_model_names_the_paths_searched() {
        let dir = tempfile::tempdir().unwrap();
        let env = CacheEnv {
            hf_home: Some(dir.path().into()),
            ..CacheEnv::default()
        };
        let err = find("org/name", &env).unwrap_err();
        let want = dir.path().join("hub/models--org--name/snapshots");
        assert!(err.contains(&want.display().to_string()), "{err}");
    }
}
