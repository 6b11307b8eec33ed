#!/usr/bin/env bash
# scripts/test.sh — THE test command (CI runs it through .ci/run).
#
#   1. scripts/setup.sh            tools (nasm, QEMU, Bochs, Chromium, wasm tools) and images
#   2. cargo fmt --check           formatting
#   3. cargo clippy                lints on every target (and the wasm façade), warnings are
#                                  errors
#   4. no_std build                the core builds for x86_64-unknown-none without `std`
#   5. cargo test --all-targets    unit, CLI, guest and differential (against QEMU) tests;
#                                  V386_REQUIRE_QEMU=1 makes a missing QEMU a failure
#                                  instead of a skip
#   6. scripts/build-web.sh        pkg/ by wasm-pack, npm packages, the demo floppy
#   7. wasm tests                  the façade's wasm-bindgen tests in node and in headless
#                                  Chromium (tests/wasm_node.rs, tests/wasm_browser.rs)
#   8. end-to-end                  tests/node/e2e.mjs: playwright-core drives Debian's
#                                  chromium through the served page; screenshots in tests/out/
# Stops at the first failing step.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

step_no=0
steps=8
step() {
    step_no=$((step_no + 1))
    printf '\n\033[1m==== [%d/%d] %s ====\033[0m\n' "$step_no" "$steps" "$*"
}
trap 'rc=$?; [ $rc -ne 0 ] && printf "\n\033[1;31m==== FAILED at step %d (status %d) ====\033[0m\n" "$step_no" "$rc"; exit $rc' EXIT

step "setup (scripts/setup.sh)"
bash scripts/setup.sh
if ! command -v cargo >/dev/null 2>&1 && [ -f "$HOME/.cargo/env" ]; then
    # shellcheck disable=SC1091
    . "$HOME/.cargo/env"
fi

step "format: cargo fmt --check"
cargo fmt --check

step "lint: cargo clippy --all-targets -- -D warnings (native and wasm32)"
cargo clippy --all-targets -- -D warnings
cargo clippy --lib --tests --target wasm32-unknown-unknown -- -D warnings

step "no_std build: cargo build --lib --no-default-features --target x86_64-unknown-none"
cargo build --lib --no-default-features --target x86_64-unknown-none

step "tests: V386_REQUIRE_QEMU=1 cargo test --all-targets"
V386_REQUIRE_QEMU=1 cargo test --all-targets

step "web build: scripts/build-web.sh"
bash scripts/build-web.sh

step "wasm tests: wasm-bindgen-test in node and in headless Chromium"
export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner
cargo test --target wasm32-unknown-unknown --test wasm_node
WASM_BINDGEN_TEST_WEBDRIVER_JSON="$PWD/tests/webdriver.json" CHROMEDRIVER=/usr/bin/chromedriver \
    cargo test --target wasm32-unknown-unknown --test wasm_browser

step "end-to-end: node tests/node/e2e.mjs (the page in headless Chromium)"
node tests/node/e2e.mjs

printf '\n\033[1;32m==== all %d steps passed ====\033[0m\n' "$step_no"
