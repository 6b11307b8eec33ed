#!/usr/bin/env bash
# scripts/setup.sh — install what building and testing v386 needs, on Debian 12 (root).
#
# Idempotent and fast when everything is present: each tool is checked before anything is
# installed, and `apt-get update` runs only when a package is missing.
#
#   apt:    nasm, qemu-system-x86 (differential tests), bochs + bochsbios, gcc (the linker)
#   apt:    chromium + chromium-driver (headless browser tests: Debian's, never a download),
#           nodejs + npm when node is missing
#   rustup: targets x86_64-unknown-none (the no_std build) and wasm32-unknown-unknown,
#           components clippy and rustfmt
#   cargo:  wasm-bindgen-cli at exactly the wasm-bindgen version in Cargo.lock, wasm-pack
#   npm:    the page's and the node tests' packages (scripts/build-web.sh installs them)
set -euo pipefail

log() { printf 'setup: %s\n' "$*"; }

# Run as root, or through sudo when it exists.
as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null 2>&1; then sudo "$@"; else
        log "need root to run: $*"; return 1
    fi
}

apt_updated=0
apt_update() {
    [ "$apt_updated" -eq 1 ] && return 0
    log "apt-get update"
    # Exit status 100 means some list failed to download (e.g. an extra architecture's list)
    # while the others may be fine: carry on and let the install decide.
    local rc=0
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q || rc=$?
    if [ "$rc" -ne 0 ] && [ "$rc" -ne 100 ]; then
        log "apt-get update failed with status $rc"; return "$rc"
    fi
    [ "$rc" -eq 100 ] && log "apt-get update reported status 100 (some list failed); continuing"
    apt_updated=1
}

apt_install() {
    apt_update
    log "apt-get install $*"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@"
}

# --- Debian packages: "package:check", check = a command on PATH or an absolute file path ---
# (`dpkg --add-architecture i386` and 32-bit libraries come with a later issue.)
wanted=(
    "nasm:nasm"
    "qemu-system-x86:qemu-system-i386"
    "bochs:bochs"
    "bochsbios:/usr/share/bochs/BIOS-bochs-latest"
    "gcc:cc"
    "libc6-dev:/usr/include/stdio.h"
    "chromium:/usr/bin/chromium"
    "chromium-driver:/usr/bin/chromedriver"
    "nodejs:node"
    "npm:npm"
)
missing=()
for w in "${wanted[@]}"; do
    pkg=${w%%:*} check=${w#*:}
    if [ "${check#/}" != "$check" ]; then
        [ -e "$check" ] || missing+=("$pkg")
    else
        command -v "$check" >/dev/null 2>&1 || missing+=("$pkg")
    fi
done
if [ "${#missing[@]}" -gt 0 ]; then
    if command -v apt-get >/dev/null 2>&1; then
        apt_install "${missing[@]}"
    else
        log "missing ${missing[*]} and no apt-get here: install them by hand"; exit 1
    fi
fi

# --- Rust ------------------------------------------------------------------------------------
if ! command -v cargo >/dev/null 2>&1 && [ -f "$HOME/.cargo/env" ]; then
    # shellcheck disable=SC1091
    . "$HOME/.cargo/env"
fi
if ! command -v rustup >/dev/null 2>&1; then
    log "installing rustup (stable toolchain, minimal profile)"
    command -v curl >/dev/null 2>&1 || apt_install curl ca-certificates
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs \
        | sh -s -- -y --profile minimal --default-toolchain stable
    # shellcheck disable=SC1091
    . "$HOME/.cargo/env"
fi

installed_targets=$(rustup target list --installed)
for t in x86_64-unknown-none wasm32-unknown-unknown; do
    if ! grep -qx "$t" <<<"$installed_targets"; then
        log "rustup target add $t"
        rustup target add "$t"
    fi
done
installed_components=$(rustup component list --installed)
for c in clippy rustfmt; do
    if ! grep -q "^$c" <<<"$installed_components"; then
        log "rustup component add $c"
        rustup component add "$c"
    fi
done

# --- wasm tools --------------------------------------------------------------------------------
# wasm-bindgen-cli must be the very version of the wasm-bindgen crate in Cargo.lock (the
# generated glue and the runtime speak one protocol). `--locked` is left out on purpose: the
# CLI's own lock file pins crates this toolchain may not build.
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
wb_version=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' "$root/Cargo.lock")
if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$wb_version" ]; then
    log "cargo install wasm-bindgen-cli --version $wb_version"
    cargo install -q wasm-bindgen-cli --version "$wb_version" --force
fi
wasm_pack_version=0.15.1
if [ "$(wasm-pack --version 2>/dev/null | awk '{print $2}')" != "$wasm_pack_version" ]; then
    log "cargo install wasm-pack --version $wasm_pack_version"
    cargo install -q wasm-pack --version "$wasm_pack_version" --force
fi

# --- Guest images: SeaBIOS, memtest86+, Debian's i386 kernel + busybox, linux.iso/.img ------
bash "$(dirname "${BASH_SOURCE[0]}")/images.sh"   # builds .cache/images/ (see that script)

log "ok"
