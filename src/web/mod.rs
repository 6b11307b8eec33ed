//! The wasm façade: the only module that knows about wasm-bindgen. It wraps the core in
//! JS classes and adds nothing of its own beyond pacing by host time; everything it shows
//! comes from `crate::front` and `crate::vmm`.
//!
//! - [`machine`]: `Machine`, one bare PC (`www/worker.js`).
//! - [`screen`]: `Screen`, a machine's or a VM's VGA as arrays the page reads in place.
//! - [`vmm`]: `Vmm`, several PCs as VMs on the V386 extension (`www/vmm-worker.js`), and
//!   `exitReasonName`.
//! - [`snapshot`]: `save()`, `restore(bytes)` and `Machine.fromSnapshot(bytes)` /
//!   `Vmm.fromSnapshot(bytes)` on both classes.
//! - [`lab`]: `labTechniques()`, `labBenches()`, `labDefaults()` and `labRun(…)`, the
//!   technique lab one column at a time (`www/compare-worker.js`).
//!
//! Contract with JavaScript (see `www/worker.js` and `pkg/v386.d.ts`):
//! - `new Machine(config)`: `config` is a [`MachineSpec`](crate::machine::MachineSpec) as a plain object (images as
//!   `Uint8Array`); a bad config throws an `Error` whose message names the part.
//! - `run(n)` / `runFor(ms)` / `step()` / `reset()`; the stop reason comes back as a string.
//! - The screen is read in place: after `refreshScreen(screen)`, the `Screen`'s
//!   `textPtr()`, `dirtyPtr()`, `palettePtr()`, `fontPtr()` and `pixelsPtr()` point into
//!   `wasmMemory().buffer`. Views on them must be rebuilt when the buffer changes (wasm
//!   memory grew) and after every refresh that changes the mode or size (the arrays may
//!   have moved).
//! - Serial and debug-console output drain as bytes (`takeSerial()` → `Uint8Array`).
//! - Panics: the console_error_panic_hook prints the message with `console.error`; the
//!   worker forwards it to the page's error panel.

pub mod lab;
pub mod machine;
pub mod screen;
pub mod snapshot;
pub mod vmm;

pub use machine::WebMachine;
pub use screen::WebScreen;
pub use vmm::WebVmm;

use crate::cpu::StopReason;
use alloc::string::String;
use wasm_bindgen::prelude::*;

#[wasm_bindgen(start)]
fn start() {
    console_error_panic_hook::set_once();
}

/// The wasm module's memory, for views on the screen arrays.
#[wasm_bindgen(js_name = wasmMemory)]
pub fn wasm_memory() -> JsValue {
    wasm_bindgen::memory()
}

/// Milliseconds from the host's monotonic clock (`performance.now()` where there is one).
pub(crate) fn now_ms() -> f64 {
    let perf = js_sys::Reflect::get(&js_sys::global(), &JsValue::from_str("performance")).ok();
    if let Some(p) = perf.filter(|p| p.is_object()) {
        if let Ok(f) = js_sys::Reflect::get(&p, &JsValue::from_str("now")) {
            if let Some(f) = f.dyn_ref::<js_sys::Function>() {
                if let Some(t) = f.call0(&p).ok().and_then(|v| v.as_f64()) {
                    return t;
                }
            }
        }
    }
    js_sys::Date::now()
}

pub(crate) fn reason_str(r: StopReason) -> String {
    match r {
        // `Machine::run` continues after a yield; it never returns one.
        StopReason::BudgetSpent | StopReason::Yield => "running".into(),
        StopReason::Halted => "halted".into(),
        StopReason::Shutdown => "shutdown".into(),
        StopReason::Reset => "reset".into(),
        StopReason::PowerOff => "poweroff".into(),
        StopReason::DebugExit(v) => alloc::format!("debug-exit:{v}"),
        // Only `Cpu::vm_run` (a Rust VMM) sees a VM exit.
        StopReason::VmExit => "vm-exit".into(),
        StopReason::HostTrap => "host-trap".into(),
    }
}
