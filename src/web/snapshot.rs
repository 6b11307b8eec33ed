//! Snapshots through the façade: `save()` gives the whole machine (or VMM) as a
//! `Uint8Array` in the format of `crate::snapshot`; `restore(bytes)` replaces the
//! instance's state with a snapshot's, and `fromSnapshot(bytes)` makes a new instance of
//! one. A bad file throws an `Error` whose message says what was wrong; the instance is
//! then unchanged.
//!
//! After a restore, pointers into wasm memory (`exitLogPtr()`, …) must be read again: the
//! state they pointed into was replaced. A `Screen` refreshes from the restored VGA by its
//! generation counter; one that happens to hold the restored generation already would
//! keep its picture, so the page refreshes into a new `Screen` after a restore.

use super::machine::WebMachine;
use super::now_ms;
use super::vmm::WebVmm;
use crate::machine::{ClockMode, Machine as Pc};
use crate::vmm::Vmm;
use alloc::string::ToString;
use alloc::vec::Vec;
use wasm_bindgen::prelude::*;

#[wasm_bindgen(js_class = Machine)]
impl WebMachine {
    /// The whole machine as a snapshot file.
    pub fn save(&self) -> Result<Vec<u8>, JsError> {
        self.pc.save().map_err(|e| JsError::new(&e.to_string()))
    }

    /// Replace this machine with the one a snapshot holds (clock mode included: a
    /// wall-clock machine's time goes on from where it was saved).
    pub fn restore(&mut self, bytes: &[u8]) -> Result<(), JsError> {
        let pc = Pc::restore(bytes).map_err(|e| JsError::new(&e.to_string()))?;
        self.wall = pc.bus.clock.mode() == ClockMode::Wall;
        self.pc = pc;
        self.last_run = (0, 0.0);
        Ok(())
    }

    /// A new machine from a snapshot file.
    #[wasm_bindgen(js_name = fromSnapshot)]
    pub fn from_snapshot(bytes: &[u8]) -> Result<WebMachine, JsError> {
        let pc = Pc::restore(bytes).map_err(|e| JsError::new(&e.to_string()))?;
        Ok(WebMachine::from_machine(pc))
    }
}

#[wasm_bindgen(js_class = Vmm)]
impl WebVmm {
    /// The monitor with all its VMs as a snapshot file.
    pub fn save(&self) -> Result<Vec<u8>, JsError> {
        self.vmm.save().map_err(|e| JsError::new(&e.to_string()))
    }

    /// Replace this monitor and its VMs with those a snapshot holds (each VM keeps its
    /// clock mode; wall-clock VMs go on from their own time).
    pub fn restore(&mut self, bytes: &[u8]) -> Result<(), JsError> {
        let vmm = Vmm::restore(bytes).map_err(|e| JsError::new(&e.to_string()))?;
        self.wall = any_wall_clock(&vmm);
        self.vmm = vmm;
        self.last_break = None;
        Ok(())
    }

    /// A new monitor from a snapshot file.
    #[wasm_bindgen(js_name = fromSnapshot)]
    pub fn from_snapshot(bytes: &[u8]) -> Result<WebVmm, JsError> {
        let vmm = Vmm::restore(bytes).map_err(|e| JsError::new(&e.to_string()))?;
        Ok(WebVmm { wall: any_wall_clock(&vmm), vmm, started_ms: now_ms(), last_break: None })
    }
}

/// Some VM follows the host's clock (the façade then passes host time before each run).
fn any_wall_clock(vmm: &Vmm) -> bool {
    vmm.vms.iter().any(|v| v.board.clock.mode() == ClockMode::Wall)
}
