//! `Vmm`: several PCs as VMs under the VMM on V386 (`www/vmm-worker.js`), the names of
//! exit reasons, and the exit log's disassembly (`disassemble`).

use super::now_ms;
use super::screen::WebScreen;
use crate::front::keys::set2_bytes;
use crate::machine::{ClockMode, MachineSpec};
use alloc::string::String;
use alloc::vec::Vec;
use wasm_bindgen::prelude::*;

/// Several machines as VMs under the VMM (`crate::vmm`), as a page drives them: each VM
/// runs under the technique its config names (on the V386 extension by default), its
/// serial line drains as bytes, its screen comes as text, its counters as an array, and
/// the exit log is read in place.
///
/// - `new Vmm({ quantum?, deterministic?, exitCostCycles?, vms: [{ name?, technique?,
///   ...MachineSpec }] })`. `technique` is a `vmm::Technique` key: "v386" (the default),
///   "paravirtual", or the software monitor's "trap-and-emulate", "trap-and-emulate-psi"
///   and "scan-before-execute", which need a guest that starts in protected mode (a
///   Multiboot `kernel`, not a BIOS boot). `vmTechnique(i)` / `vmTechniqueName(i)` give a
///   VM's key and display name.
/// - `run(n)`: about `n` guest instructions in all; "running", "stopped" when every VM
///   has stopped, "waiting" when every VM waits for real time (wall-clock VMs), or
///   "break" at an exit of a reason given to `setBreakOn` (`breakVm()`, `breakReason()`
///   tell which; the next `run` handles it and finishes the broken call).
/// - `step(i, max)`: VM `i` alone, one instruction (`max` = 1) or up to its next exit.
/// - `guestState(i)`: VM `i`'s registers as `[group, name, text]` rows (`front::vmstate`;
///   a VM under the software monitor adds a "monitor" group: the guest's view of its
///   privileged registers and the monitor's counters).
/// - `exitLogPtr()` / `exitLogLen()` / `exitLogTotal()`: the ring of `exitRecordSize()`-byte
///   records in wasm memory (layout: `vmm::log::ExitRecord`, `repr(C)`): the newest record
///   is at index `(exitLogTotal() - 1) % exitLogLen()`. `disassembleRecords(bytes)` formats
///   copies of them.
#[wasm_bindgen(js_name = Vmm)]
pub struct WebVmm {
    pub(super) vmm: crate::vmm::Vmm,
    /// Some VM follows the host's clock; host time is counted from `started_ms`.
    pub(super) wall: bool,
    pub(super) started_ms: f64,
    /// The VM index and reason of the last break.
    pub(super) last_break: Option<(usize, u16)>,
}

#[wasm_bindgen(js_class = Vmm)]
impl WebVmm {
    #[wasm_bindgen(constructor)]
    pub fn new(config: JsValue) -> Result<WebVmm, JsError> {
        use crate::vmm::{Technique, Vmm, VmmConfig};
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
        if let Some(c) = get(&config, "exitCostCycles").as_f64() {
            cfg.exit_cost_cycles = c.clamp(0.0, u32::MAX as f64) as u32;
        }
        let vms = get(&config, "vms");
        let Some(vms) = vms.dyn_ref::<js_sys::Array>() else {
            return Err(err("config: 'vms' must be an array of machine configs".into()));
        };
        let mut vmm = Vmm::new(cfg);
        for (i, v) in vms.iter().enumerate() {
            let name = get(&v, "name").as_string().unwrap_or_else(|| alloc::format!("vm{}", i + 1));
            let technique = match get(&v, "technique") {
                t if t.is_undefined() || t.is_null() => Technique::default(),
                t => {
                    let key = t.as_string().unwrap_or_else(|| alloc::format!("{t:?}"));
                    Technique::from_key(&key).ok_or_else(|| {
                        let known: Vec<&str> = Technique::ALL.iter().map(|t| t.key()).collect();
                        err(alloc::format!(
                            "config: vms[{i}] ({name}): unknown technique '{key}' (known: {})",
                            known.join(", ")
                        ))
                    })?
                }
            };
            // The machine's own fields, without the VM's name and technique.
            let spec_obj = js_sys::Object::assign(&js_sys::Object::new(), v.unchecked_ref());
            for own in ["name", "technique"] {
                let _ = js_sys::Reflect::delete_property(&spec_obj, &JsValue::from_str(own));
            }
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
            vmm.add_vm_as(&name, spec, technique)
                .map_err(|e| err(alloc::format!("config: vms[{i}] ({name}, {}): {e}", technique.key())))?;
        }
        Ok(WebVmm { vmm, wall, started_ms: now_ms(), last_break: None })
    }

    /// Run the VMs for about `instructions` guest instructions in all: "running",
    /// "stopped" when every VM has stopped, or "waiting" when every VM waits for a timer
    /// that real time must reach (wall-clock VMs: call again a little later).
    pub fn run(&mut self, instructions: f64) -> String {
        if self.wall {
            self.vmm.set_host_time(((now_ms() - self.started_ms).max(0.0) * 1e6) as u64);
        }
        let r = self.vmm.run(instructions.max(1.0) as u64);
        self.outcome(r)
    }

    /// Whether the VMs follow the host's clock (`deterministic: false`).
    #[wasm_bindgen(getter)]
    pub fn deterministic(&self) -> bool {
        !self.wall
    }

    /// Step VM `i` alone (`Vmm::step`): `max` = 1 handles its pending exit or runs one
    /// instruction; a larger `max` handles it and runs on up to the next exit, left pending
    /// (a software-monitor VM's next trap, handled). "break" when it stopped at an exit
    /// (`breakReason`), else "running" or "stopped".
    pub fn step(&mut self, i: usize, max: f64) -> String {
        let r = self.vmm.step(i, max.max(1.0) as u64);
        self.outcome(r)
    }

    /// Break on exits of these reason numbers (an empty list: never).
    #[wasm_bindgen(js_name = setBreakOn)]
    pub fn set_break_on(&mut self, reasons: &[u32]) {
        let mask = reasons.iter().filter(|&&r| r < 128).fold(0u128, |m, &r| m | 1 << r);
        self.vmm.set_break_on(mask);
    }

    /// The VM index of the last break, or -1.
    #[wasm_bindgen(js_name = breakVm)]
    pub fn break_vm(&self) -> i32 {
        self.last_break.map_or(-1, |(i, _)| i as i32)
    }

    /// The exit reason of the last break, or -1.
    #[wasm_bindgen(js_name = breakReason)]
    pub fn break_reason(&self) -> i32 {
        self.last_break.map_or(-1, |(_, r)| i32::from(r))
    }

    /// The reason number of VM `i`'s exit that waits to be handled, or -1.
    #[wasm_bindgen(js_name = pendingExit)]
    pub fn pending_exit(&self, i: usize) -> i32 {
        match (self.vmm.pending_exit(i), self.vmm.vms.get(i)) {
            (Some(_), Some(v)) => (v.vcb.exit.reason & 0xffff) as i32,
            _ => -1,
        }
    }

    /// VM `i`'s processor state (`front::vmstate`): an array of `[group, name, text]`.
    #[wasm_bindgen(js_name = guestState)]
    pub fn guest_state(&self, i: usize) -> js_sys::Array {
        let out = js_sys::Array::new();
        if let Some(v) = self.vmm.vms.get(i) {
            for r in crate::front::vmstate::rows(v, self.vmm.pending_exit(i), &self.vmm.log) {
                out.push(&js_sys::Array::of3(&r.group.into(), &r.name.into(), &r.value.into()));
            }
        }
        out
    }

    /// The modelled cycles of one exit (`VmmConfig::exit_cost_cycles`).
    #[wasm_bindgen(js_name = exitCostCycles)]
    pub fn exit_cost_cycles(&self) -> u32 {
        self.vmm.config.exit_cost_cycles
    }

    /// Copies of exit records (`exitRecordSize()` bytes each, end to end), disassembled:
    /// one string per record ("" for an exit without an instruction).
    #[wasm_bindgen(js_name = disassembleRecords)]
    pub fn disassemble_records(&self, records: &[u8]) -> Vec<String> {
        use crate::vmm::log::ExitRecord;
        records
            .chunks_exact(ExitRecord::SIZE)
            .map(|b| {
                ExitRecord::from_bytes(b).map(|r| crate::front::disasm::disassemble_record(&r)).unwrap_or_default()
            })
            .collect()
    }

    #[wasm_bindgen(js_name = vmCount)]
    pub fn vm_count(&self) -> usize {
        self.vmm.vms.len()
    }

    #[wasm_bindgen(js_name = vmName)]
    pub fn vm_name(&self, i: usize) -> String {
        self.vmm.vms.get(i).map(|v| v.name.clone()).unwrap_or_default()
    }

    /// VM `i`'s technique as its config names it ("v386", "trap-and-emulate", …; "" for
    /// no such VM).
    #[wasm_bindgen(js_name = vmTechnique)]
    pub fn vm_technique(&self, i: usize) -> String {
        self.vmm.vms.get(i).map(|v| v.technique.key().into()).unwrap_or_default()
    }

    /// VM `i`'s technique as tables and the page name it ("V386", "Trap-and-emulate", …).
    #[wasm_bindgen(js_name = vmTechniqueName)]
    pub fn vm_technique_name(&self, i: usize) -> String {
        self.vmm.vms.get(i).map(|v| v.technique.name().into()).unwrap_or_default()
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
    fn outcome(&mut self, r: crate::vmm::RunOutcome) -> String {
        use crate::vmm::RunOutcome;
        match r {
            RunOutcome::BudgetSpent => "running".into(),
            RunOutcome::AllStopped => "stopped".into(),
            RunOutcome::Waiting => "waiting".into(),
            RunOutcome::Break { vm, reason } => {
                self.last_break = self.vmm.vms.iter().position(|v| v.id == vm).map(|i| (i, reason));
                "break".into()
            }
        }
    }

    /// The VMM inside, for Rust tests of the façade.
    pub fn inner(&mut self) -> &mut crate::vmm::Vmm {
        &mut self.vmm
    }
}

/// `bytes` as one instruction of `bitness`-bit code (16 or 32) at `eip`, in nasm syntax
/// (`front::disasm`, iced-x86): "out dx, al"; "" for no bytes, "(bad)" for invalid ones.
#[wasm_bindgen]
pub fn disassemble(bytes: &[u8], eip: u32, bitness: u32) -> String {
    crate::front::disasm::disassemble(bytes, eip, bitness)
}

/// The name of exit reason `n` (docs/v386.md Table 8-1), or "" for a number no reason has.
#[wasm_bindgen(js_name = exitReasonName)]
pub fn exit_reason_name(n: u32) -> String {
    crate::cpu::v386::ExitReason::from_number(n).map(|r| r.name().into()).unwrap_or_default()
}
