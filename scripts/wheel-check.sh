#!/usr/bin/env bash
# The Python wheel, end to end: build it with maturin (in a throwaway virtualenv), install
# the wheel file into a FRESH virtualenv without an index, and run that venv's
# `servescope`: --version must print Cargo.toml's version, and a short run against the
# built-in simulator must write results.json. CI runs it (.ci/run); it works locally too.
#
#   scripts/wheel-check.sh [WORK_DIR]    (default: a temporary directory, removed after)
#
# maturin builds with cargo in this tree's target/ (target/release), so after
# `cargo build --release` or `cargo test --release` only the final binary is relinked.
set -euo pipefail
cd "$(dirname "$0")/.."
python="${PYTHON:-python3}"
if [[ $# -ge 1 ]]; then
    work="$1"
    mkdir -p "$work"
else
    work="$(mktemp -d)"
    trap 'rm -rf "$work"' EXIT
fi
fail() {
    echo "FAILED: $*" >&2
    exit 1
}
version="$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)"
[[ -n "$version" ]] || fail "no version in Cargo.toml"

echo "-- maturin in a throwaway virtualenv"
"$python" -m venv "$work/build-venv" || fail "$python -m venv (install python3-venv?)"
"$work/build-venv/bin/pip" install -q 'maturin>=1.5,<2' || fail "pip install maturin"

echo "-- maturin build --release"
rm -rf "$work/dist"
start=$(date +%s)
"$work/build-venv/bin/maturin" build --release --locked --out "$work/dist" ||
    fail "maturin build"
echo "wheel built in $(($(date +%s) - start)) s"
wheels=("$work/dist"/servescope-"$version"-*.whl)
[[ ${#wheels[@]} -eq 1 && -f "${wheels[0]}" ]] || fail "no servescope-$version wheel in $work/dist"
wheel="${wheels[0]}"
echo "$(basename "$wheel") ($(($(stat -c %s "$wheel") / 1024)) KB)"

echo "-- a fresh virtualenv, the wheel file installed without an index"
"$python" -m venv --clear "$work/venv"
"$work/venv/bin/pip" install -q --no-index "$wheel" || fail "pip install $wheel"
bin="$work/venv/bin/servescope"
[[ -x "$bin" ]] || fail "the wheel installed no $bin"

echo "-- $bin --version"
got="$("$bin" --version)"
echo "$got"
[[ "$got" == "servescope $version" ]] || fail "--version printed '$got', not 'servescope $version'"

echo "-- a short simulator run from the installed command"
out="$work/run"
rm -rf "$out"
"$bin" concurrency --concurrency 2 --num-requests 6 --input-len 32 --output-len 8 \
    --output-dir "$out" || fail "the simulator run"
[[ -s "$out/results.json" ]] || fail "the run wrote no $out/results.json"
"$python" - "$out/results.json" "$version" <<'PY' || fail "results.json is not what the run should write"
import json, sys
doc = json.load(open(sys.argv[1]))
runs = doc["runs"]
assert doc["tool"]["version"] == sys.argv[2], doc["tool"]
requests = runs[0]["summary"]["requests"]
assert len(runs) == 1 and requests["succeeded"] == 6 and requests["failed"] == 0, runs
print(f"results.json: {len(runs)} run, {requests['succeeded']} requests succeeded")
PY
echo "wheel check passed"
