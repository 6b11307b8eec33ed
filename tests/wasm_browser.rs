//! The wasm façade's tests in headless Chromium (`wasm-bindgen-test-runner` driving
//! Debian's chromium through chromedriver, options in `tests/webdriver.json`; see
//! `tests/wasm/mod.rs`). Run by `scripts/test.sh`:
//! `cargo test --target wasm32-unknown-unknown --test wasm_browser`.
#![cfg(target_arch = "wasm32")]

#[macro_use]
mod wasm;

wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

wasm_tests!(
    boot_sector_reports_on_vga_and_serial,
    seabios_banner_on_vga_and_serial,
    bad_configs_are_errors_not_panics,
    keys_reach_the_keyboard_controller,
    vmm_runs_two_vms_and_shows_the_exit_log,
    vmm_runs_each_vm_under_its_technique,
    snapshots_save_and_restore_through_the_facade,
    lab_answers_every_column_with_a_value,
);
