//! The Kubernetes manifests in deploy/kubernetes/ cannot drift from the command line:
//! the shard job's container arguments, with Kubernetes' `$(VAR)` substitutions done
//! as the cluster would for shard 0, parse with servescope's own `Cli`, and so does the
//! merge job's command. No cluster needed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::Parser;
use serde_json::Value;
use servescope::cli::{Cli, Command, LoadArgs};
use servescope::shard::Shard;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/kubernetes")
}

/// Every document of a YAML file.
fn yaml(name: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(dir().join(name)).unwrap();
    serde_saphyr::from_multiple(&text).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn one(name: &str, kind: &str) -> Value {
    let docs: Vec<Value> = yaml(name)
        .into_iter()
        .filter(|d| d["kind"] == kind)
        .collect();
    assert_eq!(docs.len(), 1, "{name}: one {kind}");
    docs.into_iter().next().unwrap()
}

fn strs(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|s| {
            s.as_str()
                .unwrap_or_else(|| panic!("not a string: {s}"))
                .to_string()
        })
        .collect()
}

/// run.env, as the kustomization turns it into the ConfigMap.
fn run_env() -> BTreeMap<String, String> {
    let kust = one("kustomization.yaml", "Kustomization");
    assert!(strs(&kust["resources"]).contains(&"shards.yaml".to_string()));
    assert!(strs(&kust["resources"]).contains(&"pvc.yaml".to_string()));
    let generator = &kust["configMapGenerator"][0];
    assert_eq!(generator["name"], "servescope-run");
    assert_eq!(strs(&generator["envs"]), ["run.env"]);
    assert_eq!(kust["generatorOptions"]["disableNameSuffixHash"], true);
    std::fs::read_to_string(dir().join("run.env"))
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap();
            (k.to_string(), v.to_string())
        })
        .collect()
}

/// The container's environment: literal values, and ConfigMap keys from run.env.
fn env(container: &Value, run: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    container["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let name = e["name"].as_str().unwrap().to_string();
            let value = match e["value"].as_str() {
                Some(v) => v.to_string(),
                None => {
                    let r = &e["valueFrom"]["configMapKeyRef"];
                    assert_eq!(r["name"], "servescope-run", "{name}");
                    run[r["key"].as_str().unwrap()].clone()
                }
            };
            (name, value)
        })
        .collect()
}

/// Kubernetes' `$(VAR)` expansion in command and args.
fn expand(arg: &str, vars: &BTreeMap<String, String>) -> String {
    let mut out = arg.to_string();
    for (k, v) in vars {
        out = out.replace(&format!("$({k})"), v);
    }
    assert!(!out.contains("$("), "{arg}: an unknown variable");
    out
}

/// The volume a pod spec mounts at `/results` must be the results claim.
fn check_results_volume(pod: &Value, container: &Value) {
    let pvc = one("pvc.yaml", "PersistentVolumeClaim");
    assert!(strs(&pvc["spec"]["accessModes"]).contains(&"ReadWriteMany".to_string()));
    let mount = &container["volumeMounts"][0];
    assert_eq!(mount["mountPath"], "/results");
    let volume = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == mount["name"])
        .unwrap();
    assert_eq!(
        volume["persistentVolumeClaim"]["claimName"],
        pvc["metadata"]["name"]
    );
}

fn load_args(cmd: Command) -> LoadArgs {
    match cmd {
        Command::Batch(a) => a.load,
        Command::Throughput(a) => a.load,
        Command::Concurrency(a) => a.load,
        Command::Rate(a) => a.load,
        Command::Trace(a) => a.load,
        Command::DualRound(a) => a.load,
        other => panic!("not a load subcommand: {other:?}"),
    }
}

#[test]
fn the_shard_job_runs_servescope_with_arguments_it_accepts() {
    let run = run_env();
    let at = servescope::start_at::parse(&run["START_AT"]).expect("START_AT in run.env");
    let job = one("shards.yaml", "Job");
    let spec = &job["spec"];
    assert_eq!(spec["completionMode"], "Indexed");
    let n = spec["completions"].as_u64().unwrap();
    assert_eq!(spec["parallelism"].as_u64(), Some(n), "all shards at once");
    let pod = &spec["template"]["spec"];
    assert_eq!(pod["restartPolicy"], "Never");
    let container = &pod["containers"][0];
    let mut vars = env(container, &run);
    assert_eq!(vars["SHARDS"], n.to_string(), "SHARDS = completions");
    // Set by Kubernetes in an Indexed Job; shard 0 here.
    vars.insert("JOB_COMPLETION_INDEX".into(), "0".into());
    let mut argv = strs(&container["command"]);
    assert_eq!(argv, ["servescope"]);
    argv.extend(strs(&container["args"]).iter().map(|a| expand(a, &vars)));

    let cli = Cli::try_parse_from(&argv).unwrap_or_else(|e| panic!("{argv:?}: {e}"));
    let load = load_args(cli.command);
    assert_eq!(
        load.shard,
        Shard {
            index: 0,
            count: n as u32
        }
    );
    assert_eq!(load.start_at, Some(at));
    assert_eq!(load.endpoint.as_deref(), Some(vars["ENDPOINT"].as_str()));
    let out = load.output_dir.expect("--output-dir");
    assert_eq!(out, Path::new("/results").join(&run["RUN"]).join("shard-0"));
    check_results_volume(pod, container);
}

#[test]
fn the_merge_job_merges_every_shard_of_the_run() {
    let run = run_env();
    let n = one("shards.yaml", "Job")["spec"]["completions"]
        .as_u64()
        .unwrap();
    let job = one("merge.yaml", "Job");
    let pod = &job["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    let vars = env(container, &run);
    assert_eq!(strs(&container["command"]), ["sh", "-c"]);
    let script = strs(&container["args"]).join("\n");
    let line = script
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("servescope merge "))
        .unwrap_or_else(|| panic!("no `servescope merge` in {script}"));
    // The shell's expansion: $RUN, then the glob over the run's shard directories.
    let shards: Vec<String> = (0..n).map(|i| format!("/results/$RUN/shard-{i}")).collect();
    let line = line
        .replace("/results/$RUN/shard-*", &shards.join(" "))
        .replace("$RUN", &vars["RUN"]);
    let argv: Vec<&str> = line.split_whitespace().collect();
    let cli = Cli::try_parse_from(&argv).unwrap_or_else(|e| panic!("{argv:?}: {e}"));
    let Command::Merge(m) = cli.command else {
        panic!("{argv:?} is not a merge");
    };
    let dir = Path::new("/results").join(&run["RUN"]);
    let expected: Vec<PathBuf> = (0..n).map(|i| dir.join(format!("shard-{i}"))).collect();
    assert_eq!(m.dirs, expected);
    assert_eq!(m.output, dir.join("merged"));
    check_results_volume(pod, container);
}
