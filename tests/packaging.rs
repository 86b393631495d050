//! What the published crate, the Python wheel and the Docker image are built from: the
//! crate holds what the build needs and nothing of the tests' data, the wheel takes its
//! version from Cargo.toml, and the Dockerfile copies every file the manifest names.
//! (The wheel itself is built and run by scripts/wheel-check.sh, in CI.)

use std::path::Path;
use std::process::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(name: &str) -> String {
    std::fs::read_to_string(root().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The files `cargo package` would ship (a listing only: nothing is built).
fn packaged() -> Vec<String> {
    let out = Command::new(env!("CARGO"))
        .args(["package", "--list", "--allow-dirty", "--offline"])
        .current_dir(root())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cargo package --list: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

/// The file of every target the manifest declares ([lib], [[bin]], [[bench]]): its
/// `path`, or cargo's default for its kind and name.
fn target_paths() -> Vec<String> {
    let mut paths = Vec::new();
    let mut target: Option<(String, Option<String>, Option<String>)> = None;
    let manifest = read("Cargo.toml");
    for line in manifest.lines().map(str::trim).chain(["[end]"]) {
        let quoted = |key: &str| {
            line.strip_prefix(key).map(|v| {
                v.trim_start_matches([' ', '='])
                    .trim_matches('"')
                    .to_string()
            })
        };
        if line.starts_with('[') {
            if let Some((kind, name, path)) = target.take() {
                let default = |dir: &str| format!("{dir}/{}.rs", name.clone().unwrap());
                paths.push(path.unwrap_or_else(|| match kind.as_str() {
                    "lib" => "src/lib.rs".into(),
                    "bench" => default("benches"),
                    "test" => default("tests"),
                    "example" => default("examples"),
                    _ => default("src/bin"),
                }));
            }
            let kind = line.trim_matches(['[', ']']);
            if ["lib", "bin", "bench", "test", "example"].contains(&kind) {
                target = Some((kind.to_string(), None, None));
            }
        } else if let Some((_, name, path)) = target.as_mut() {
            if let Some(v) = quoted("name") {
                *name = Some(v);
            } else if let Some(v) = quoted("path") {
                *path = Some(v);
            }
        }
    }
    for expected in ["src/main.rs", "benches/hot_path.rs"] {
        assert!(paths.iter().any(|p| p == expected), "{paths:?}");
    }
    paths
}

#[test]
fn crate_ships_what_the_build_needs_and_no_test_data() {
    let files = packaged();
    for needed in [
        "Cargo.toml",
        "Cargo.lock",
        "README.md",
        "LICENSE",
        "pyproject.toml",
        "src/lib.rs",
        // Embedded with include_str! by src/workload/words.rs.
        "src/workload/cl100k_words.txt",
    ] {
        assert!(
            files.iter().any(|f| f == needed),
            "{needed} is not packaged"
        );
    }
    for target in target_paths() {
        assert!(files.contains(&target), "target {target} is not packaged");
    }
    for left_out in [
        "tests/", "traces/", "bench/", "deploy/", "docs/", "scripts/", ".ci/",
    ] {
        let shipped: Vec<&String> = files.iter().filter(|f| f.starts_with(left_out)).collect();
        assert!(shipped.is_empty(), "{left_out} is packaged: {shipped:?}");
    }
    // Every file an include_str!/include_bytes! under src names is shipped.
    for file in files
        .iter()
        .filter(|f| f.starts_with("src/") && f.ends_with(".rs"))
    {
        let text = read(file);
        for (i, _) in text.match_indices("include_str!(\"") {
            let rest = &text[i + "include_str!(\"".len()..];
            let name = &rest[..rest.find('"').unwrap()];
            let dir = Path::new(file).parent().unwrap();
            let path = dir.join(name).to_string_lossy().replace('\\', "/");
            assert!(files.contains(&path), "{file} embeds {path}, not packaged");
        }
        assert!(
            !text.contains("include_bytes!(\""),
            "{file}: check include_bytes! here"
        );
    }
}

#[test]
fn crate_metadata_is_complete() {
    let manifest = read("Cargo.toml");
    for key in [
        "description = ",
        "license = \"Apache-2.0\"",
        "readme = \"README.md\"",
        "keywords = ",
        "categories = ",
        "rust-version = ",
    ] {
        assert!(manifest.contains(key), "Cargo.toml has no {key}");
    }
    let license = read("LICENSE");
    assert!(license.contains("Apache License") && license.contains("Version 2.0, January 2004"));
}

#[test]
fn wheel_version_and_license_come_from_cargo_toml() {
    let py = read("pyproject.toml");
    assert!(py.contains("build-backend = \"maturin\""), "{py}");
    assert!(py.contains("bindings = \"bin\""), "{py}");
    assert!(py.contains("dynamic = [\"version\"]"), "{py}");
    // One source of truth: no version of its own.
    assert!(
        !py.lines().any(|l| l.trim_start().starts_with("version")),
        "pyproject.toml sets a version: {py}"
    );
    assert!(py.contains("requires-python = \">=3.8\""));
}

#[test]
fn dockerfile_copies_every_file_the_manifest_names() {
    let docker = read("deploy/Dockerfile");
    let copied: Vec<&str> = docker
        .lines()
        .filter_map(|l| l.strip_prefix("COPY "))
        .filter(|l| !l.starts_with("--from"))
        .flat_map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            words[..words.len() - 1].to_vec()
        })
        .collect();
    for needed in ["Cargo.toml", "Cargo.lock"] {
        assert!(
            copied.contains(&needed),
            "the Dockerfile does not copy {needed}"
        );
    }
    for target in target_paths() {
        assert!(
            copied
                .iter()
                .any(|c| target == *c || target.starts_with(&format!("{c}/"))),
            "the Dockerfile does not copy {target}, so cargo cannot read the manifest"
        );
    }
}
