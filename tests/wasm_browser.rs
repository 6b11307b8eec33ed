//! The wasm façade's tests in headless Chromium (`wasm-bindgen-test-runner` with chromedriver; see `tests/wasm/mod.rs`).
//! Run by `scripts/test.sh`: `cargo test --target wasm32-unknown-unknown --test wasm_browser`.
#![cfg(target_arch = "wasm32")]

mod wasm;
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen_test]
fn boot_sector_reports_on_vga_and_serial() {
    wasm::boot_sector_reports_on_vga_and_serial();
}

#[wasm_bindgen_test]
fn seabios_banner_on_vga_and_serial() {
    wasm::seabios_banner_on_vga_and_serial();
}

#[wasm_bindgen_test]
fn bad_configs_are_errors_not_panics() {
    wasm::bad_configs_are_errors_not_panics();
}

#[wasm_bindgen_test]
fn keys_reach_the_keyboard_controller() {
    wasm::keys_reach_the_keyboard_controller();
}
