#!/usr/bin/env bash
# Peak memory (max RSS) of servescope at scale, against the simulator in a separate
# process. Give a second binary (an older build, say) to measure it side by side:
#
#   bench/memory.sh [OTHER_SERVESCOPE]
#
# 1. A 1,000,000-line Mooncake trace (the bundled 500-line sample repeated 2000 times,
#    each copy later in time and with its own hash ids, ~230 MB): the checking pass alone
#    (the connection test then fails on purpose), and 20 s of replay, then SIGINT.
# 2. Request-rate runs of 10,000 and 100,000 requests (256-token prompts, 16 output
#    tokens, 1000 req/s): what a finished request costs; then 100,000 again with an
#    8 MB prompt budget instead of the default 64 MB.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q
BINS=("$PWD/target/release/servescope")
[[ $# -ge 1 ]] && BINS+=("$(realpath "$1")")
WORK="$(mktemp -d)"
trap 'kill $SIM 2>/dev/null || true; rm -rf "$WORK"' EXIT

python3 - traces/mooncake-sample.jsonl 2000 >"$WORK/big.jsonl" <<'PYEOF'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
span = lines[-1]["timestamp"] + 1
ids = max(max(l["hash_ids"]) for l in lines) + 1
out = sys.stdout
for copy in range(int(sys.argv[2])):
    for l in lines:
        out.write(json.dumps({
            "timestamp": l["timestamp"] + copy * span,
            "input_length": l["input_length"],
            "output_length": l["output_length"],
            "hash_ids": [h + copy * ids for h in l["hash_ids"]],
        }) + "\n")
PYEOF
echo "trace: $(wc -l <"$WORK/big.jsonl") lines, $(du -m "$WORK/big.jsonl" | cut -f1) MB"

"${BINS[0]}" sim --ideal --port 0 --ttft-ms 1 --tpot-ms 1 --prefill-ms-per-token 0 \
    >"$WORK/sim.out" 2>&1 &
SIM=$!
for _ in $(seq 100); do
    PORT="$(grep -o '127.0.0.1:[0-9]*' "$WORK/sim.out" | head -1 | cut -d: -f2)" || true
    [[ -n "${PORT:-}" ]] && break
    sleep 0.1
done
URL="http://127.0.0.1:$PORT"

# Max RSS in MB and wall seconds of one command; its own exit status is ignored.
measure() {
    local name="$1"
    shift
    /usr/bin/time -f "%M %e" -o "$WORK/time" "$@" >"$WORK/out" 2>&1 || true
    # GNU time puts "Command exited with non-zero status N" first when it did.
    read -r kb secs < <(tail -n 1 "$WORK/time")
    awk -v n="$name" -v kb="$kb" -v s="$secs" 'BEGIN { printf "%-44s %8.1f MB %8.1f s\n", n, kb / 1024, s }'
}

for bin in "${BINS[@]}"; do
    echo "== $bin"
    measure "1M-line trace: checking pass only" \
        "$bin" trace "$WORK/big.jsonl" --endpoint http://127.0.0.1:1 -q
    measure "1M-line trace: 20 s of replay, then SIGINT" \
        timeout -s INT 20 "$bin" trace "$WORK/big.jsonl" --endpoint "$URL" -q \
        --output-dir "$WORK/trace-out"
    for n in 10000 100000; do
        measure "rate 1000/s, $n requests" \
            "$bin" rate --rates 1000 --num-requests "$n" --input-len 256 --output-len 16 \
            --endpoint "$URL" -q --output-dir "$WORK/rate-$n"
        grep -E "^requests|lag" "$WORK/out" | sed 's/^/    /' || true
    done
done
# What the prompt budget costs (the first binary only: older ones lack the flag).
measure "rate 1000/s, 100000 requests, --prepare-ahead-mb 8" \
    "${BINS[0]}" rate --rates 1000 --num-requests 100000 --input-len 256 --output-len 16 \
    --endpoint "$URL" -q --prepare-ahead-mb 8 --output-dir "$WORK/rate-small-budget"
grep -E "^requests|lag" "$WORK/out" | sed 's/^/    /' || true
