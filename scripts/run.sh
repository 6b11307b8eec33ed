#!/usr/bin/env bash
# scripts/run.sh — THE run command.
#
# Sets up the tools, builds the release `v386`, assembles the demo boot sector
# (tests/guests/demo.asm) and runs it:
#
#   v386 -fda target/demo/demo.img -debugcon stdio -device isa-debug-exit,iobase=0xf4
#
# The demo prints on the debug console and writes 0 to port 0xf4, so v386 exits with
# status (0 << 1) | 1 = 1, which this script treats as success. It then exits.
#
#   --serve   afterwards, serve www/ on http://127.0.0.1:8000/ (blocks until Ctrl-C).
#             The browser build arrives with the wasm issue; for now www/ is a placeholder.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

serve=0
for arg in "$@"; do
    case "$arg" in
        --serve) serve=1 ;;
        -h | --help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "run.sh: unknown argument '$arg' (only --serve)" >&2; exit 2 ;;
    esac
done

bash scripts/setup.sh
if ! command -v cargo >/dev/null 2>&1 && [ -f "$HOME/.cargo/env" ]; then
    # shellcheck disable=SC1091
    . "$HOME/.cargo/env"
fi

echo "run.sh: cargo build --release --bin v386"
cargo build --release --bin v386

mkdir -p target/demo
nasm -f bin -o target/demo/demo.img tests/guests/demo.asm

echo "run.sh: v386 -fda target/demo/demo.img -debugcon stdio -device isa-debug-exit,iobase=0xf4"
status=0
./target/release/v386 -fda target/demo/demo.img -debugcon stdio -device isa-debug-exit,iobase=0xf4 || status=$?
if [ "$status" -ne 1 ]; then
    echo "run.sh: the demo ended with status $status, expected 1 (debug-exit value 0)" >&2
    exit 1
fi
echo "run.sh: demo finished (exit status 1 = debug-exit value 0: success)"

if [ "$serve" -eq 1 ]; then
    if ! command -v python3 >/dev/null 2>&1; then
        echo "run.sh: python3 is needed for --serve; installing it"
        if [ "$(id -u)" -eq 0 ]; then sudo_cmd=(); else sudo_cmd=(sudo); fi
        "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q || true
        "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends python3
    fi
    echo "run.sh: serving www/ on http://127.0.0.1:8000/ (Ctrl-C to stop)"
    exec python3 -m http.server 8000 --bind 127.0.0.1 --directory www
fi
