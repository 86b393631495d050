#!/usr/bin/env bash
# Where servescope's client CPU goes on the nginx workload (bench/sse-server.sh, 256
# tokens per stream, concurrency 64): callgrind instruction counts by function,
# inclusive and self, and grouped by component, for a full run minus a 1-request run
# (so startup is separated from the per-request cost). The callgrind files are read
# directly (self cost per function, inclusive cost per call edge).
#
#   bench/profile.sh [REQUESTS]      (default 300; callgrind runs ~50× slower)
#
# callgrind counts user-space instructions, not time, so the numbers repeat whatever
# else the machine does; system calls are not counted (the kernel's share of the CPU,
# sys time, is printed beside them from a normal run). `perf` would be the other
# choice, but `perf stat -e instructions true` says "not supported" on this VM.
#
# The release profile strips symbols (Cargo.toml), so the binary profiled is built with
# CARGO_PROFILE_RELEASE_STRIP=false and CARGO_PROFILE_RELEASE_DEBUG=line-tables-only
# (same code, with symbols and inline info), copied aside, then the normal build is
# restored. The first such build recompiles everything (~8 min on a busy 2-core
# machine); cargo keeps both sets of artifacts in target/ (the profile settings are part
# of their hashes), so restoring the normal build, and later symbol builds, take seconds.
# PROFILE_BINARY=path uses an unstripped binary given instead.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
REQUESTS="${1:-300}"
[[ "$REQUESTS" =~ ^[0-9]+$ && "$REQUESTS" -ge 2 ]] || { echo "REQUESTS must be ≥ 2" >&2; exit 2; }
command -v valgrind >/dev/null || { echo "valgrind not found: apt-get install -y valgrind" >&2; exit 1; }

# shellcheck source=bench/sse-server.sh
source "$ROOT/bench/sse-server.sh"
bench_workdir profile

BIN="${PROFILE_BINARY:-}"
if [[ -z "$BIN" ]]; then
    BIN="${SERVESCOPE_BENCH_TOOLS:-/tmp/servescope-clientbench-tools}/servescope-symbols"
    mkdir -p "$(dirname "$BIN")"
    step "building servescope with symbols (then the normal stripped build again)"
    CARGO_PROFILE_RELEASE_STRIP=false CARGO_PROFILE_RELEASE_DEBUG=line-tables-only \
        cargo build --release -q
    cp target/release/servescope "$BIN"
    cargo build --release -q
fi
# Captured, not piped: with pipefail, `grep -q` closing the pipe early would fail nm.
sections="$(readelf -S "$BIN" 2>/dev/null || true)"
if [[ "$sections" != *".symtab"* ]]; then
    echo "$BIN has no symbols: build it with CARGO_PROFILE_RELEASE_STRIP=false" >&2
    exit 1
fi

step "starting nginx with a static 256-token SSE stream"
sse_server_start "$WORK/nginx" 256

run() { # NAME N C [valgrind args...]
    local name="$1" n="$2" c="$3"
    shift 3
    "$@" "$BIN" concurrency --endpoint "$SSE_URL" --model bench-model --concurrency "$c" \
        --num-requests "$n" --input-len 128 --output-len 256 --output-dir "$WORK/$name-out" -q \
        >"$WORK/$name.stdout" 2>"$WORK/$name.stderr"
}

# Two passes. Without inline info, a function's inclusive cost covers everything
# inlined into it (serde_json and the SSE parser are mostly inlined into their callers),
# so inclusive costs read as "this call and all it does". With --read-inline-info,
# inlined code is charged to the function it came from, which is what self costs and the
# component groups need; but inlined calls then leave no call edge, so inclusive costs
# from that pass would be wrong.
for mode in plain inline; do
    extra=()
    [[ "$mode" == inline ]] && extra=(--read-inline-info=yes)
    for kind in full tiny; do
        n="$REQUESTS" c=64
        [[ "$kind" == tiny ]] && n=1 c=1
        step "callgrind ($mode): $kind run ($n requests)"
        run "$mode-$kind" "$n" "$c" valgrind --tool=callgrind "${extra[@]}" \
            --callgrind-out-file="$WORK/callgrind.$mode.$kind" --trace-children=no
    done
done
# user vs sys outside valgrind, to say what callgrind cannot see.
python3 "$ROOT/bench/measure.py" "$WORK/plain.json" -- "$BIN" concurrency --endpoint "$SSE_URL" \
    --model bench-model --concurrency 64 --num-requests "$REQUESTS" --input-len 128 \
    --output-len 256 -q >/dev/null 2>&1

python3 - "$WORK" "$REQUESTS" <<'PYEOF'
import json, re, sys
from collections import defaultdict
work, n = sys.argv[1], int(sys.argv[2])

def load(path):
    """Self cost per function, inclusive cost per (caller, callee) call edge, and the
    total, read straight from a callgrind.out file. callgrind_annotate is not used: with
    line-level debug info it lists one function under several source files, whose
    inclusive costs overlap, so they cannot be added up."""
    names = {}
    selfc = defaultdict(int)
    calls = defaultdict(int)
    total = None
    cur = callee = None
    pending = False

    def name_of(rest):
        m = re.match(r"\((\d+)\)(?:\s+(.*))?", rest.strip())
        if not m:
            return norm(rest.strip())
        if m.group(2) is not None:
            names[m.group(1)] = norm(m.group(2))
        return names.get(m.group(1), "?")

    def norm(name):
        # Recursion levels ("poll'2") are the same function.
        return re.sub(r"'\d+$", "", name)

    for line in open(path):
        c = line[:1]
        if c.isdigit() or c in "+-*":
            parts = line.split()
            cost = int(parts[1]) if len(parts) > 1 else 0
            if pending:
                calls[(cur, callee)] += cost
                pending = False
            else:
                selfc[cur] += cost
        elif line.startswith("fn="):
            cur = name_of(line[3:])
        elif line.startswith("cfn="):
            callee = name_of(line[4:])
        elif line.startswith("calls="):
            pending = True
        elif line.startswith(("totals:", "summary:")):
            total = int(line.split()[1])
    return selfc, calls, total

def inclusive(selfc, calls):
    inc = defaultdict(int, selfc)
    for (a, b), cost in calls.items():
        if a != b:  # a recursive call's cost is already in the function's own lines
            inc[a] += cost
    return inc

s_full, c_full, tot_full = load(f"{work}/callgrind.inline.full")
s_tiny, c_tiny, tot_tiny = load(f"{work}/callgrind.inline.tiny")
ps_full, pc_full, ptot_full = load(f"{work}/callgrind.plain.full")
ps_tiny, pc_tiny, ptot_tiny = load(f"{work}/callgrind.plain.tiny")
i_full = inclusive(ps_full, pc_full)
i_tiny = inclusive(ps_tiny, pc_tiny)
per_req = (ptot_full - ptot_tiny) / (n - 1)
plain = json.load(open(f"{work}/plain.json"))

def pr(full, tiny, f):
    return (full.get(f, 0) - tiny.get(f, 0)) / (n - 1)

print(f"\ncallgrind, concurrency 64, {n} requests × 256 tokens from nginx, minus a 1-request run")
print(f"total {ptot_full / 1e6:.1f} M instructions; startup (1-request run) {ptot_tiny / 1e6:.1f} M; "
      f"per request {per_req / 1e3:.0f} k = {per_req / 256:.0f} per token")
print(f"outside valgrind: user {plain['user_s']:.3f} s, sys {plain['sys_s']:.3f} s "
      f"(sys = {plain['sys_s'] / plain['cpu_s']:.0%} of CPU, not in the counts below)")

print("\nTop self cost per request (inlined code charged to the function it came from)")
print("| k instr/request | share | function |")
print("|---|---|---|")
for f in sorted(s_full, key=lambda f: -pr(s_full, s_tiny, f))[:30]:
    v = pr(s_full, s_tiny, f)
    print(f"| {v / 1e3:.1f} | {v / per_req:.1%} | `{f[:120]}` |")

print("\nTop inclusive cost per request (the function and all it calls; inlined code is part of its caller)")
print("| k instr/request | share | function |")
print("|---|---|---|")
skip = re.compile(r"^(std::|core::ops|<std::|start_thread|clone3?|\(below main\)|__libc_start|0x"
                  r"|tokio::runtime|core::iter|<core::iter|<alloc::vec::Vec<T> as alloc::vec::spec_from_iter)")
for f in [f for f in sorted(i_full, key=lambda f: -pr(i_full, i_tiny, f)) if not skip.search(f)][:30]:
    v = pr(i_full, i_tiny, f)
    print(f"| {v / 1e3:.1f} | {v / per_req:.1%} | `{f[:120]}` |")

# Who calls what, per request: the tokenizer (prompt preparation or the recorder's
# count of the output) and UTF-8 validation.
for target, label in (("servescope::workload::tokenizer::Tokenizer::encode", "Tokenizer::encode (tiktoken cl100k)"),
                      ("core::str::converts::from_utf8", "core::str::from_utf8"),
                      ("servescope::client::openai::parse_chunk", "parse_chunk")):
    print(f"\nCallers of {label}, inclusive per request")
    print("| k instr/request | share | caller |")
    print("|---|---|---|")
    callers = defaultdict(float)
    for (a, b), cost in pc_full.items():
        if b == target and a != target:
            callers[a] += (cost - pc_tiny.get((a, b), 0)) / (n - 1)
    for a, v in sorted(callers.items(), key=lambda x: -x[1])[:3]:
        print(f"| {v / 1e3:.1f} | {v / per_req:.1%} | `{a[:120]}` |")

# Components by self cost (inline pass): a function counts in the first group it matches.
groups = [
    ("tokenizer: BPE and its regex (tiktoken, fancy_regex, regex_automata)", r"tiktoken|fancy_regex|regex_automata|regex::|bstr|tokenizers|workload::tokenizer"),
    ("JSON chunk parsing (serde_json, serde, client::openai)", r"serde_json|serde::|serde_core|client::openai|IgnoredAny|PhantomData<T> as serde"),
    ("SSE parsing (client::sse)", r"client::sse"),
    ("UTF-8 validation (core::str::from_utf8)", r"from_utf8|run_utf8_validation"),
    ("allocation and copying (malloc, free, realloc, memcpy, memmove)", r"malloc|free|realloc|calloc|alloc::|__memcpy|__memmove|memcpy|memmove|__memset|memset|_int_|tcache|__memcmp|memcmp"),
    ("timestamps (clock_gettime, Instant)", r"clock_gettime|Instant|clock::|__vdso|vdso|timespec"),
    ("records: JSON lines, formatting, summaries (record, recorder, metrics, fmt)", r"recorder|record::|metrics::|stats::|core::fmt|fmt::"),
    ("prompt preparation (workload)", r"workload::|feed::"),
    ("HTTP (client::http1, chunked, pool, tls; rustls; httparse; reqwest, hyper for other calls)", r"client::http1|client::chunked|client::pool|client::tls|rustls|hyper|reqwest|http::|httparse|h1::|tower|bytes::"),
    ("tokio runtime, wakers, sync, syscalls wrappers", r"tokio|parking_lot|futures|mio|std::sync|crossbeam|syscall|epoll|__lll|pthread|__GI_|__libc_|std::sys|std::thread"),
    ("servescope's request path (client, schedule)", r"servescope::"),
]
print("\nBy component (self cost per request, inline pass; a function counts in the first group it matches)")
print("| component | k instr/request | share |")
print("|---|---|---|")
seen = set()
rows = []
for label, pat in groups:
    cost = 0.0
    for f in s_full:
        if f in seen or not re.search(pat, f):
            continue
        seen.add(f)
        cost += pr(s_full, s_tiny, f)
    rows.append((label, cost))
rows.append(("everything else", sum(pr(s_full, s_tiny, f) for f in s_full if f not in seen)))
for label, cost in rows:
    print(f"| {label} | {cost / 1e3:.1f} | {cost / per_req:.1%} |")

print("\nStartup (the 1-request run, plain pass): top inclusive")
print("| M instr | share of the 1-request run | function |")
print("|---|---|---|")
shown = 0
for f in sorted(i_tiny, key=lambda f: -i_tiny[f]):
    if skip.search(f) or f.startswith(("servescope::main", "servescope::run", "main")):
        continue
    print(f"| {i_tiny[f] / 1e6:.1f} | {i_tiny[f] / ptot_tiny:.1%} | `{f[:120]}` |")
    shown += 1
    if shown == 15:
        break
PYEOF
if [[ -n "${KEEP_WORK:-}" ]]; then
    echo "callgrind files: $WORK/callgrind.{plain,inline}.{full,tiny} (callgrind_annotate or kcachegrind)" >&2
fi
