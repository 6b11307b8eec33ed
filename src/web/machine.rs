//! `Machine`: one bare PC as the page drives it (`www/worker.js`).

use super::screen::WebScreen;
use super::{now_ms, reason_str};
use crate::cpu::StopReason;
use crate::front::keys::set2_bytes;
use crate::machine::{ClockMode, Machine as Pc, MachineSpec};
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use wasm_bindgen::prelude::*;

/// Instructions per inner slice of `runFor`: about 0.3-1 ms of guest time, so the host
/// clock is read a few thousand times a second at most.
const RUN_FOR_CHUNK: u64 = 100_000;

/// One emulated PC, as the page drives it.
#[wasm_bindgen(js_name = Machine)]
pub struct WebMachine {
    pub(super) pc: Pc,
    pub(super) wall: bool,
    started_ms: f64,
    /// Retired instructions and host milliseconds of the last `runFor`, for `mips()`.
    pub(super) last_run: (u64, f64),
}

#[wasm_bindgen(js_class = Machine)]
impl WebMachine {
    /// Build a machine from a config object (see `MachineSpec` for its fields).
    #[wasm_bindgen(constructor)]
    pub fn new(config: JsValue) -> Result<WebMachine, JsError> {
        if let Some(obj) = config.dyn_ref::<js_sys::Object>() {
            for key in js_sys::Object::keys(obj).iter().filter_map(|k| k.as_string()) {
                if !MachineSpec::FIELDS.contains(&key.as_str()) {
                    let known = MachineSpec::FIELDS.join(", ");
                    return Err(JsError::new(&alloc::format!("config: unknown option '{key}' (known: {known})")));
                }
            }
        }
        let spec: MachineSpec =
            serde_wasm_bindgen::from_value(config).map_err(|e| JsError::new(&alloc::format!("config: {e}")))?;
        spec.clock_mode().map_err(|e| JsError::new(&e.to_string()))?;
        let pc = spec.build().map_err(|e| JsError::new(&e.to_string()))?;
        Ok(WebMachine::from_machine(pc))
    }

    /// Run up to `instructions` instructions; returns why it stopped ("running" when the
    /// budget was spent, "halted", "shutdown", "poweroff", "debug-exit:N").
    pub fn run(&mut self, instructions: f64) -> String {
        self.sync_wall_clock();
        reason_str(self.pc.run(instructions.max(0.0) as u64))
    }

    /// Run for about `ms` milliseconds of host time (or until the machine stops or halts
    /// with nothing to wake it); returns the stop reason as `run` does.
    #[wasm_bindgen(js_name = runFor)]
    pub fn run_for(&mut self, ms: f64) -> String {
        let t0 = now_ms();
        let i0 = self.pc.cpu.icount;
        let mut reason = StopReason::BudgetSpent;
        while now_ms() - t0 < ms {
            self.sync_wall_clock();
            reason = self.pc.run(RUN_FOR_CHUNK);
            if reason != StopReason::BudgetSpent || (self.wall && self.pc.is_idle()) {
                break;
            }
        }
        self.last_run = (self.pc.cpu.icount - i0, now_ms() - t0);
        reason_str(reason)
    }

    /// One instruction.
    pub fn step(&mut self) -> String {
        self.run(1.0)
    }

    /// Press the reset button: the CPU restarts in the BIOS, memory and disks stay.
    pub fn reset(&mut self) {
        self.pc.reset();
    }

    /// Panic on purpose, so a page (and the end-to-end test) can check that a panic's
    /// message reaches its error panel. Nothing a guest does can get here.
    #[wasm_bindgen(js_name = panicForTest)]
    pub fn panic_for_test(&self) {
        panic!("panicForTest: a deliberate panic from the v386 wasm façade");
    }

    /// The CPU is halted waiting for an interrupt.
    #[wasm_bindgen(js_name = isIdle)]
    pub fn is_idle(&self) -> bool {
        self.pc.is_idle()
    }

    /// Retired instructions since power-on.
    pub fn instructions(&self) -> f64 {
        self.pc.cpu.icount as f64
    }

    /// Millions of instructions per second of host time in the last `runFor`.
    pub fn mips(&self) -> f64 {
        let (n, ms) = self.last_run;
        if ms > 0.0 {
            n as f64 / ms / 1000.0
        } else {
            0.0
        }
    }

    /// A key went down or up; `code` is `KeyboardEvent.code`. Returns false for keys the
    /// PS/2 keyboard does not have.
    pub fn key(&mut self, code: &str, down: bool) -> bool {
        let bytes = set2_bytes(code, down);
        if !bytes.is_empty() {
            self.pc.bus.kbd.key(&bytes);
        }
        !bytes.is_empty()
    }

    /// Type ASCII text on the keyboard; returns how many characters were taken.
    #[wasm_bindgen(js_name = typeText)]
    pub fn type_text(&mut self, text: &str) -> usize {
        self.pc.bus.kbd.key_text(text.as_bytes())
    }

    /// Bytes for the guest's first serial port.
    #[wasm_bindgen(js_name = serialInput)]
    pub fn serial_input(&mut self, bytes: &[u8]) {
        self.pc.serial_input(bytes);
    }

    /// What the guest sent on its first serial port since the last call.
    #[wasm_bindgen(js_name = takeSerial)]
    pub fn take_serial(&mut self) -> Vec<u8> {
        self.pc.take_serial()
    }

    /// What the guest wrote to the debug console (port 0xE9) since the last call.
    #[wasm_bindgen(js_name = takeDebugcon)]
    pub fn take_debugcon(&mut self) -> Vec<u8> {
        self.pc.take_debugcon()
    }

    /// The screen as text, one line per row (CP437 as Unicode), for tests and copy/paste.
    #[wasm_bindgen(js_name = screenText)]
    pub fn screen_text(&self) -> String {
        self.pc.vga_text().to_text()
    }

    /// Bring `screen`'s views up to date with this machine's VGA; returns true when
    /// anything changed.
    #[wasm_bindgen(js_name = refreshScreen)]
    pub fn refresh_screen(&mut self, screen: &mut WebScreen) -> bool {
        screen.refresh(&self.pc.bus.vga)
    }
}

impl WebMachine {
    /// Wall-clock machines follow the host clock; deterministic ones ignore it.
    fn sync_wall_clock(&mut self) {
        if self.wall {
            let ns = ((now_ms() - self.started_ms).max(0.0) * 1e6) as u64;
            self.pc.set_host_time(ns);
        }
    }

    /// The façade around a built (or restored) machine; pacing by host time follows its
    /// clock mode.
    pub(super) fn from_machine(pc: Pc) -> WebMachine {
        let wall = pc.bus.clock.mode() == ClockMode::Wall;
        WebMachine { pc, wall, started_ms: now_ms(), last_run: (0, 0.0) }
    }

    /// The machine inside, for Rust tests of the façade.
    pub fn inner(&mut self) -> &mut Pc {
        &mut self.pc
    }
}
