# shellcheck shell=bash
# A zero-latency OpenAI-compatible SSE server that is not servescope: Debian's nginx
# serving one pre-generated chat-completions stream as a static file. Sourced by
# bench/client.sh, targets.sh, profile.sh and instructions.sh (not run on its own).
#
#   sse_server_start DIR [TOKENS]   sets SSE_URL (no access log) and SSE_LOG_URL (a
#                                   second port that logs each request's arrival time);
#                                   SSE_REASONING_URL/v1 serves the reasoning stream
#   sse_server_stop                 (bench_workdir's EXIT trap runs it)
#   bench_workdir NAME              sets WORK to a new scratch directory and traps EXIT
#                                   to stop the server, run bench_on_exit if the caller
#                                   defines one, and remove WORK (KEEP_WORK=1 keeps it)
#   step TEXT                       says which stage runs, on stderr
#
# Why nginx: it answers from memory in a few µs per request with one worker, so what
# the benchmark sees is the client's own cost, not a server's. The static module
# answers POST with 405; `error_page 405 =200 $uri` turns that into a 200 with the
# file (the internal redirect is a GET), so every POST to /v1/chat/completions gets
# the whole stream, whatever the prompt or max_tokens. The body file has no
# extension, so `default_type text/event-stream` is its content type (servescope
# rejects application/json where it expects a stream).
#
# The stream, as vLLM sends it: TOKENS (default 256) chunks
#   {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":...,"model":"bench-model",
#    "choices":[{"index":0,"delta":{"content":" tok"},"logprobs":null,"finish_reason":null}]}
# then a finish_reason chunk, a usage chunk (completion_tokens = TOKENS), `data: [DONE]`.
# The id/object/model fields are not decoration: AIPerf ignores a chunk whose "object"
# is not "chat.completion.chunk", and real chunks are this size (~170 bytes).
# " tok" has a leading space like real text, so the generated text is TOKENS words; a
# bare "tok" would make one 3×TOKENS-letter word, a worst case for BPE tokenizers that
# no model emits (servescope's recorder tokenizes every response's text).
#
# The reasoning stream (POST /reasoning/v1/chat/completions), as vLLM sends a reasoning
# model's answer: the same TOKENS chunks, the first half with "reasoning_content"
# instead of "content", and usage with completion_tokens_details.reasoning_tokens.

SSE_NGINX_PID=""

bench_workdir() {
    WORK="$(mktemp -d "/tmp/servescope-$1.XXXXXX")"
    trap bench_cleanup EXIT
    trap 'exit 130' INT TERM
}

bench_cleanup() {
    sse_server_stop
    if declare -F bench_on_exit >/dev/null; then bench_on_exit; fi
    if [[ -z "${KEEP_WORK:-}" ]]; then rm -rf "$WORK"; else echo "kept $WORK" >&2; fi
}

step() { echo "== $*" >&2; }

sse_free_port() {
    # Ask the kernel for a free port; the tiny race until nginx binds is acceptable for
    # a benchmark (nginx fails loudly if it lost it).
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

sse_write_body() { # FILE TOKENS [REASONING: the first N chunks are reasoning]
    local file="$1" tokens="$2" reasoning="${3:-0}" i field details=""
    local head='"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1795000000,"model":"bench-model"'
    ((reasoning > 0)) && details=",\"completion_tokens_details\":{\"reasoning_tokens\":$reasoning}"
    {
        for ((i = 0; i < tokens; i++)); do
            field=content
            ((i < reasoning)) && field=reasoning_content
            printf 'data: {%s,"choices":[{"index":0,"delta":{"%s":" tok"},"logprobs":null,"finish_reason":null}]}\n\n' "$head" "$field"
        done
        printf 'data: {%s,"choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"length"}]}\n\n' "$head"
        printf 'data: {%s,"choices":[],"usage":{"prompt_tokens":128,"completion_tokens":%d,"total_tokens":%d%s}}\n\n' \
            "$head" "$tokens" "$((tokens + 128))" "$details"
        printf 'data: [DONE]\n\n'
    } >"$file"
}

# The Responses API variant (bench/client.sh's servescope-responses), as vLLM sends it:
# `event:` lines, `type` last; created, in_progress, the message item and its part,
# TOKENS `response.output_text.delta` events of " tok", the item's done events, then
# `response.completed` with the whole response (its text again) and usage. No [DONE].
sse_write_responses_body() {
    local file="$1" tokens="$2" i text=""
    local item='"item_id":"msg_bench"' resp='"id":"resp_bench","created_at":1795000000,"model":"bench-model","object":"response"'
    sse_responses_event() { printf 'event: %s\ndata: {%s,"sequence_number":%d,"type":"%s"}\n\n' "$1" "$2" "$3" "$1"; }
    for ((i = 0; i < tokens; i++)); do text+=" tok"; done
    local part="{\"annotations\":[],\"text\":\"$text\",\"type\":\"output_text\"}"
    local msg="{\"id\":\"msg_bench\",\"content\":[$part],\"role\":\"assistant\",\"status\":\"completed\",\"type\":\"message\"}"
    {
        sse_responses_event response.created "\"response\":{$resp,\"output\":[],\"status\":\"in_progress\",\"usage\":null}" 0
        sse_responses_event response.in_progress "\"response\":{$resp,\"output\":[],\"status\":\"in_progress\",\"usage\":null}" 1
        sse_responses_event response.output_item.added "\"item\":{\"id\":\"msg_bench\",\"content\":[],\"role\":\"assistant\",\"status\":\"in_progress\",\"type\":\"message\"},\"output_index\":0" 2
        sse_responses_event response.content_part.added "\"content_index\":0,$item,\"output_index\":0,\"part\":{\"annotations\":[],\"text\":\"\",\"type\":\"output_text\"}" 3
        for ((i = 0; i < tokens; i++)); do
            sse_responses_event response.output_text.delta "\"content_index\":0,\"delta\":\" tok\",$item,\"logprobs\":[],\"output_index\":0" $((i + 4))
        done
        sse_responses_event response.output_text.done "\"content_index\":0,$item,\"logprobs\":[],\"output_index\":0,\"text\":\"$text\"" $((tokens + 4))
        sse_responses_event response.content_part.done "\"content_index\":0,$item,\"output_index\":0,\"part\":$part" $((tokens + 5))
        sse_responses_event response.output_item.done "\"item\":$msg,\"output_index\":0" $((tokens + 6))
        sse_responses_event response.completed "\"response\":{$resp,\"incomplete_details\":{\"reason\":\"max_output_tokens\"},\"output\":[$msg],\"status\":\"incomplete\",\"usage\":{\"input_tokens\":128,\"input_tokens_details\":{\"cached_tokens\":0},\"output_tokens\":$tokens,\"output_tokens_details\":{\"reasoning_tokens\":0},\"total_tokens\":$((tokens + 128))}}" $((tokens + 7))
    } >"$file"
}

sse_server_start() {
    local dir="$1" tokens="${2:-256}"
    command -v nginx >/dev/null || {
        echo "nginx not found: apt-get install -y nginx-light (as root)" >&2
        return 1
    }
    mkdir -p "$dir/www/v1/chat" "$dir/www/reasoning/v1/chat" "$dir/tmp"
    sse_write_body "$dir/www/v1/chat/completions" "$tokens"
    sse_write_responses_body "$dir/www/v1/responses" "$tokens"
    sse_write_body "$dir/www/reasoning/v1/chat/completions" "$tokens" "$((tokens / 2))"
    # The model list servescope reads when no --model is given.
    printf '{"object":"list","data":[{"id":"bench-model","object":"model","owned_by":"bench"}]}\n' \
        >"$dir/www/v1/models"
    local port log_port
    port="$(sse_free_port)"
    log_port="$(sse_free_port)"
    # One worker: the server gets at most one of the two cores, the client the other.
    # Every path nginx writes is inside $dir, so no root-owned default is touched and
    # several copies can run at once. Huge keepalive_requests: clients keep their
    # connections for the whole run, as they would against a real server.
    # Started as root, nginx's worker would run as nobody and could not read a
    # mktemp -d directory (mode 700): keep the worker as the invoking user.
    local user_line=""
    [[ "$(id -u)" == 0 ]] && user_line="user root root;"
    cat >"$dir/nginx.conf" <<EOF
$user_line
worker_processes 1;
daemon off;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 16384; }
http {
    access_log off;
    client_body_temp_path $dir/tmp/body;
    proxy_temp_path $dir/tmp/proxy;
    fastcgi_temp_path $dir/tmp/fastcgi;
    uwsgi_temp_path $dir/tmp/uwsgi;
    scgi_temp_path $dir/tmp/scgi;
    # Mooncake prompts are up to ~0.5 MB; the default 1 MB limit would answer 413.
    client_max_body_size 0;
    keepalive_requests 10000000;
    keepalive_timeout 75s;
    sendfile on;
    tcp_nodelay on;
    log_format arrival '\$msec \$request_method \$uri \$status';
    server {
        listen 127.0.0.1:$port;
        listen 127.0.0.1:$log_port;
        root $dir/www;
        # Only the second port logs (startup measurements); logging costs server CPU.
        set \$logged 0;
        if (\$server_port = $log_port) { set \$logged 1; }
        access_log $dir/arrivals.log arrival if=\$logged;
        location = /v1/chat/completions {
            default_type text/event-stream;
            error_page 405 =200 \$uri;
        }
        location = /v1/responses {
            default_type text/event-stream;
            error_page 405 =200 \$uri;
        }
        location = /reasoning/v1/chat/completions {
            default_type text/event-stream;
            error_page 405 =200 \$uri;
        }
        location = /v1/models {
            default_type application/json;
        }
    }
}
EOF
    nginx -c "$dir/nginx.conf" -p "$dir" >"$dir/nginx.out" 2>&1 &
    SSE_NGINX_PID=$!
    SSE_URL="http://127.0.0.1:$port"
    SSE_LOG_URL="http://127.0.0.1:$log_port"
    SSE_REASONING_URL="$SSE_URL/reasoning"
    SSE_DIR="$dir"
    local i
    for ((i = 0; i < 100; i++)); do
        if curl -sf -o /dev/null "$SSE_URL/v1/models"; then
            break
        fi
        if ! kill -0 "$SSE_NGINX_PID" 2>/dev/null; then
            echo "nginx did not start:" >&2
            cat "$dir/nginx.out" "$dir/error.log" >&2 2>/dev/null || true
            return 1
        fi
        sleep 0.05
    done
    # Check the trick works: a POST must get 200, text/event-stream, and [DONE].
    local ct
    ct="$(curl -s -o "$dir/check.out" -w '%{http_code} %{content_type}' -X POST \
        -H 'content-type: application/json' -d '{"model":"bench-model"}' \
        "$SSE_URL/v1/chat/completions")"
    if [[ "$ct" != "200 text/event-stream" ]] || ! tail -n 2 "$dir/check.out" | grep -q '^data: \[DONE\]$'; then
        echo "nginx SSE check failed: got '$ct' (expected '200 text/event-stream' and a [DONE] event)" >&2
        return 1
    fi
}

sse_server_stop() {
    if [[ -n "$SSE_NGINX_PID" ]] && kill -0 "$SSE_NGINX_PID" 2>/dev/null; then
        # SIGQUIT: graceful; nginx's master ends its worker itself.
        kill -QUIT "$SSE_NGINX_PID" 2>/dev/null || true
        local i
        for ((i = 0; i < 50; i++)); do
            kill -0 "$SSE_NGINX_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$SSE_NGINX_PID" 2>/dev/null || true
        wait "$SSE_NGINX_PID" 2>/dev/null || true
    fi
    SSE_NGINX_PID=""
}
