#!/usr/bin/env bash
# scripts/run.sh — THE run command: the demo page with its built-in default machine.
#
# Sets up the tools (scripts/setup.sh), builds the wasm package and the page's npm
# packages (scripts/build-web.sh), then serves the page on http://127.0.0.1:8000/
# (scripts/serve.mjs) until Ctrl-C. The default machine, SeaBIOS booting the demo floppy
# tests/guests/webdemo.asm, starts by itself when the page opens.
#
#   --port N   serve on another port
#   --cli      instead of serving, build the native runner and run the CLI demo
#              (tests/guests/demo.asm on the debug console; exits when it ends)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

port=8000 cli=0
while [ $# -gt 0 ]; do
    case "$1" in
        --port) port=${2:?--port needs a number}; shift ;;
        --cli) cli=1 ;;
        -h | --help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "run.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
    shift
done

bash scripts/setup.sh
if ! command -v cargo >/dev/null 2>&1 && [ -f "$HOME/.cargo/env" ]; then
    # shellcheck disable=SC1091
    . "$HOME/.cargo/env"
fi

if [ "$cli" -eq 1 ]; then
    echo "run.sh: cargo build --release --bin v386"
    cargo build --release --bin v386
    mkdir -p target/demo
    nasm -f bin -o target/demo/demo.img tests/guests/demo.asm
    echo "run.sh: v386 -fda target/demo/demo.img -debugcon stdio -device isa-debug-exit,iobase=0xf4"
    status=0
    ./target/release/v386 -fda target/demo/demo.img -debugcon stdio -device isa-debug-exit,iobase=0xf4 || status=$?
    # The demo writes 0 to the isa-debug-exit port: exit status (0 << 1) | 1 = 1.
    if [ "$status" -ne 1 ]; then
        echo "run.sh: the demo ended with status $status, expected 1 (debug-exit value 0)" >&2
        exit 1
    fi
    echo "run.sh: demo finished (exit status 1 = debug-exit value 0: success)"
    exit 0
fi

bash scripts/build-web.sh
echo "run.sh: serving the demo page on http://127.0.0.1:$port/ (Ctrl-C to stop)"
exec node scripts/serve.mjs --port "$port"
