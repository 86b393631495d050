#!/usr/bin/env bash
# Client instructions per request (callgrind) of one or more servescope binaries, side by
# side: 256-token streams from nginx (bench/sse-server.sh), concurrency 64, a 201-request
# run minus a 1-request run (startup), divided by 200. callgrind counts instructions, not
# time, so the figures repeat whatever else the machine does (system calls not counted).
#
#   bench/instructions.sh BINARY...      (e.g. an older build, then target/release/servescope)
#
# A BINARY may carry extra flags after a colon, to attribute a cost on one build:
#   bench/instructions.sh target/release/servescope target/release/servescope:--count-output-text
set -euo pipefail
cd "$(dirname "$0")/.."
[[ $# -ge 1 ]] || { echo "usage: $0 BINARY..." >&2; exit 2; }
command -v valgrind >/dev/null || { echo "valgrind not found: apt-get install -y valgrind" >&2; exit 1; }
# shellcheck source=bench/sse-server.sh
source bench/sse-server.sh
bench_workdir instructions
sse_server_start "$WORK" 256
for spec in "$@"; do
    bin="${spec%%:*}"
    extra=()
    [[ "$spec" == *:* ]] && read -r -a extra <<<"${spec#*:}"
    for n in 1 201; do
        valgrind --tool=callgrind --callgrind-out-file="$WORK/cg.$n" "$bin" concurrency \
            --endpoint "$SSE_URL" --model bench-model --concurrency 64 --num-requests "$n" \
            --input-len 128 --output-len 256 -q "${extra[@]}" >/dev/null 2>"$WORK/vg.$n" || true
        grep -o "Collected : [0-9]*" "$WORK/vg.$n" | awk '{ print $3 }' >"$WORK/ir.$n"
    done
    echo "$spec: $(( ($(cat "$WORK/ir.201") - $(cat "$WORK/ir.1")) / 200 )) instructions per request"
done
