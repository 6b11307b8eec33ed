#!/usr/bin/env bash
# scripts/build-web.sh — build everything the page and the browser tests need.
#
#   pkg/                 the wasm package: wasm-pack build --target web --mode no-install
#                        (with the pinned wasm-bindgen-cli that setup.sh installs)
#                        (no wasm-opt: binaryen 132 -O3 re-inlines the interpreter loop
#                        and made it 4x slower in V8, 216 -> 53 M instr/s, while saving 8%)
#   www/node_modules/    the page's npm packages (@xterm/xterm)
#   tests/node/node_modules/  playwright-core and v86 for the node tests and benchmark
#   .cache/images/webdemo.img  the default machine's demo floppy (tests/guests/webdemo.asm)
#   .cache/images/vmdemo_clock.img, vmdemo_sensitive.img  the VMM demo's guests, Multiboot
#                        kernels (tests/guests/vmdemo_clock.asm, vmdemo_sensitive.asm)
#   .cache/images/nanobench.img, nanobench-pv.img  the technique lab's guest, native and
#                        paravirtual (-DPARAVIRT) builds, for the compare page (www/compare.html)
#
# Idempotent: npm installs run only when package-lock.json is newer than node_modules.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if ! command -v cargo >/dev/null 2>&1 && [ -f "$HOME/.cargo/env" ]; then
    # shellcheck disable=SC1091
    . "$HOME/.cargo/env"
fi
log() { printf 'build-web: %s\n' "$*"; }

npm_ci() {
    local dir=$1
    if [ ! -d "$dir/node_modules" ] || [ "$dir/package.json" -nt "$dir/node_modules" ] \
        || { [ -f "$dir/package-lock.json" ] && [ "$dir/package-lock.json" -nt "$dir/node_modules" ]; }; then
        log "npm install in $dir"
        (cd "$dir" && npm install --no-audit --no-fund --loglevel=error)
        touch "$dir/node_modules"
    fi
}
npm_ci www
npm_ci tests/node

log "wasm-pack build --target web --release"
wasm-pack --quiet build --target web --mode no-install --release --out-dir pkg --out-name v386 >/dev/null

mkdir -p .cache/images
# The demo floppy and the VMM demo's Multiboot kernels, each rebuilt when its source is newer.
for name in webdemo vmdemo_clock vmdemo_sensitive; do
    if [ "tests/guests/$name.asm" -nt ".cache/images/$name.img" ] || [ ! -f ".cache/images/$name.img" ]; then
        log "nasm tests/guests/$name.asm"
        nasm -f bin -I tests/guests/ -o ".cache/images/$name.img" "tests/guests/$name.asm"
    fi
done
# The lab's guest in its two builds; either is rebuilt when the source or an include
# it uses is newer (the includes are shared with the other guests).
for build in native pv; do
    img=".cache/images/nanobench.img" flags=()
    if [ "$build" = pv ]; then img=".cache/images/nanobench-pv.img" flags=(-DPARAVIRT); fi
    stale=0
    [ -f "$img" ] || stale=1
    for src in tests/guests/nanobench.asm tests/guests/*.inc; do
        [ "$src" -nt "$img" ] && stale=1
    done
    if [ "$stale" = 1 ]; then
        log "nasm ${flags[*]} tests/guests/nanobench.asm"
        nasm -f bin -I tests/guests/ "${flags[@]}" -o "$img" tests/guests/nanobench.asm
    fi
done
log "ok: pkg/v386_bg.wasm $(stat -c %s pkg/v386_bg.wasm) bytes"
