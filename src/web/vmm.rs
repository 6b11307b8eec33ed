//! `Vmm`: several PCs as VMs under the VMM on V386 (`www/vmm-worker.js`), and the names
//! of exit reasons.

use super::now_ms;
use super::screen::WebScreen;
use crate::front::keys::set2_bytes;
use crate::machine::{ClockMode, MachineSpec};
use alloc::string::String;
use alloc::vec::Vec;
use wasm_bindgen::prelude::*;

/// Several machines as VMs under the VMM on V386 (`crate::vmm`), as a page drives them:
/// each VM's serial line drains as bytes, its screen comes as text, its counters as an
/// array, and the exit log is read in place.
///
/// - `new Vmm({ quantum?, deterministic?, vms: [{ name?, ...MachineSpec }] })`.
/// - `run(n)`: about `n` guest instructions in all; "running", or "stopped" when every VM
///   has stopped.
/// - `exitLogPtr()` / `exitLogLen()` / `exitLogTotal()`: the ring of `exitRecordSize()`-byte
///   records in wasm memory (layout: `vmm::log::ExitRecord`, `repr(C)`): the newest record
///   is at index `(exitLogTotal() - 1) % exitLogLen()`.
#[wasm_bindgen(js_name = Vmm)]
pub struct WebVmm {
    pub(super) vmm: crate::vmm::Vmm,
    /// Some VM follows the host's clock; host time is counted from `started_ms`.
    pub(super) wall: bool,
    pub(super) started_ms: f64,
}

#[wasm_bindgen(js_class = Vmm)]
impl WebVmm {
    #[wasm_bindgen(constructor)]
    pub fn new(config: JsValue) -> Result<WebVmm, JsError> {
        use crate::vmm::{Vmm, VmmConfig};
        let err = |m: String| JsError::new(&m);
        let get = |o: &JsValue, k: &str| js_sys::Reflect::get(o, &JsValue::from_str(k)).unwrap_or(JsValue::UNDEFINED);
        let mut cfg = VmmConfig::default();
        if let Some(q) = get(&config, "quantum").as_f64() {
            cfg.quantum = q.clamp(1.0, u32::MAX as f64) as u32;
        }
        // `deterministic: false` gives the VMs the host's clock (a VM's own `clock` wins):
        // guest clocks keep real time, but exits differ from run to run.
        let deterministic = get(&config, "deterministic").as_bool().unwrap_or(true);
        let mut wall = false;
        let vms = get(&config, "vms");
        let Some(vms) = vms.dyn_ref::<js_sys::Array>() else {
            return Err(err("config: 'vms' must be an array of machine configs".into()));
        };
        let mut vmm = Vmm::new(cfg);
        for (i, v) in vms.iter().enumerate() {
            let name = get(&v, "name").as_string().unwrap_or_else(|| alloc::format!("vm{}", i + 1));
            // The machine's own fields, without the VM's name.
            let spec_obj = js_sys::Object::assign(&js_sys::Object::new(), v.unchecked_ref());
            let _ = js_sys::Reflect::delete_property(&spec_obj, &JsValue::from_str("name"));
            for key in js_sys::Object::keys(&spec_obj).iter().filter_map(|k| k.as_string()) {
                if !MachineSpec::FIELDS.contains(&key.as_str()) {
                    return Err(err(alloc::format!("config: vms[{i}]: unknown option '{key}'")));
                }
            }
            let spec: MachineSpec = serde_wasm_bindgen::from_value(spec_obj.into())
                .map_err(|e| err(alloc::format!("config: vms[{i}]: {e}")))?;
            let mut spec = spec;
            if spec.clock.is_none() && !deterministic {
                spec.clock = Some("wall".into());
            }
            wall |= spec.clock_mode().map_err(|e| err(alloc::format!("config: vms[{i}]: {e}")))? == ClockMode::Wall;
            vmm.add_vm(&name, spec).map_err(|e| err(alloc::format!("config: vms[{i}]: {e}")))?;
        }
        Ok(WebVmm { vmm, wall, started_ms: now_ms() })
    }

    /// Run the VMs for about `instructions` guest instructions in all: "running",
    /// "stopped" when every VM has stopped, or "waiting" when every VM waits for a timer
    /// that real time must reach (wall-clock VMs: call again a little later).
    pub fn run(&mut self, instructions: f64) -> String {
        if self.wall {
            self.vmm.set_host_time(((now_ms() - self.started_ms).max(0.0) * 1e6) as u64);
        }
        match self.vmm.run(instructions.max(1.0) as u64) {
            crate::vmm::RunOutcome::BudgetSpent => "running".into(),
            crate::vmm::RunOutcome::AllStopped => "stopped".into(),
            crate::vmm::RunOutcome::Waiting => "waiting".into(),
        }
    }

    /// Whether the VMs follow the host's clock (`deterministic: false`).
    #[wasm_bindgen(getter)]
    pub fn deterministic(&self) -> bool {
        !self.wall
    }

    #[wasm_bindgen(js_name = vmCount)]
    pub fn vm_count(&self) -> usize {
        self.vmm.vms.len()
    }

    #[wasm_bindgen(js_name = vmName)]
    pub fn vm_name(&self, i: usize) -> String {
        self.vmm.vms.get(i).map(|v| v.name.clone()).unwrap_or_default()
    }

    /// "running", "halted" or "stopped: <why>".
    #[wasm_bindgen(js_name = vmState)]
    pub fn vm_state(&self, i: usize) -> String {
        use crate::vmm::VmState;
        match self.vmm.vms.get(i).map(|v| &v.state) {
            Some(VmState::Runnable) => "running".into(),
            Some(VmState::Halted) => "halted".into(),
            Some(VmState::Stopped(why)) => alloc::format!("stopped: {why:?}"),
            None => String::new(),
        }
    }

    /// Bytes VM `i` sent on its COM1 since the last call.
    #[wasm_bindgen(js_name = takeSerial)]
    pub fn take_serial(&mut self, i: usize) -> Vec<u8> {
        self.vmm.vms.get_mut(i).map(|v| v.board.com1.take_output()).unwrap_or_default()
    }

    /// Bytes typed on VM `i`'s COM1 line.
    #[wasm_bindgen(js_name = serialInput)]
    pub fn serial_input(&mut self, i: usize, bytes: &[u8]) {
        if let Some(v) = self.vmm.vms.get_mut(i) {
            v.board.com1.receive(bytes);
        }
    }

    /// VM `i`'s screen as text, one line per row.
    #[wasm_bindgen(js_name = screenText)]
    pub fn screen_text(&self, i: usize) -> String {
        self.vmm.vms.get(i).map(|v| v.board.vga.text_snapshot().to_text()).unwrap_or_default()
    }

    /// A key on VM `i`'s PS/2 keyboard, by `KeyboardEvent.code`; false for a code the
    /// keyboard does not have.
    pub fn key(&mut self, i: usize, code: &str, down: bool) -> bool {
        let bytes = set2_bytes(code, down);
        match self.vmm.vms.get_mut(i) {
            Some(v) if !bytes.is_empty() => {
                v.board.kbd.key(&bytes);
                true
            }
            _ => false,
        }
    }

    /// Bring `screen`'s views up to date with VM `i`'s VGA (see `Screen`); true when
    /// anything changed.
    #[wasm_bindgen(js_name = refreshScreen)]
    pub fn refresh_screen(&mut self, i: usize, screen: &mut WebScreen) -> bool {
        self.vmm.vms.get(i).is_some_and(|v| screen.refresh(&v.board.vga))
    }

    /// VM `i`'s counters: exits by reason number (0–64), then retired instructions,
    /// turns, preemptions and device-memory accesses.
    pub fn counters(&self, i: usize) -> Vec<f64> {
        let Some(v) = self.vmm.vms.get(i) else { return Vec::new() };
        let c = &v.counters;
        let mut out: Vec<f64> = c.by_reason.iter().map(|&n| n as f64).collect();
        out.extend([c.retired as f64, c.turns as f64, c.preemptions as f64, c.mmio as f64]);
        out
    }

    /// Guest instructions all VMs retired.
    pub fn instructions(&self) -> f64 {
        self.vmm.vms.iter().map(|v| v.counters.retired as f64).sum()
    }

    #[wasm_bindgen(js_name = exitLogPtr)]
    pub fn exit_log_ptr(&self) -> *const u8 {
        self.vmm.log.raw().as_ptr() as *const u8
    }

    /// Records stored (at most the ring's capacity).
    #[wasm_bindgen(js_name = exitLogLen)]
    pub fn exit_log_len(&self) -> usize {
        self.vmm.log.raw().len()
    }

    /// Exits logged since the start.
    #[wasm_bindgen(js_name = exitLogTotal)]
    pub fn exit_log_total(&self) -> f64 {
        self.vmm.log.total as f64
    }

    #[wasm_bindgen(js_name = exitRecordSize)]
    pub fn exit_record_size(&self) -> usize {
        core::mem::size_of::<crate::vmm::log::ExitRecord>()
    }
}

impl WebVmm {
    /// The VMM inside, for Rust tests of the façade.
    pub fn inner(&mut self) -> &mut crate::vmm::Vmm {
        &mut self.vmm
    }
}

/// The name of exit reason `n` (docs/v386.md Table 8-1), or "" for a number no reason has.
#[wasm_bindgen(js_name = exitReasonName)]
pub fn exit_reason_name(n: u32) -> String {
    crate::cpu::v386::ExitReason::from_number(n).map(|r| r.name().into()).unwrap_or_default()
}
