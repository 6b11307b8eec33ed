//! Snapshots through the façade: `save()` gives the whole machine (or VMM) as a
//! `Uint8Array` in the format of `crate::snapshot`; `restore(bytes)` replaces the
//! instance's state with a snapshot's, and `fromSnapshot(bytes)` makes a new instance of
//! one. A bad file throws an `Error` whose message says what was wrong; the instance is
//! then unchanged.
//!
//! After a restore, pointers into wasm memory (`textPtr()`, `exitLogPtr()`, …) must be
//! read again: the state they pointed into was replaced.

use super::machine::WebMachine;
use super::vmm::WebVmm;
use crate::front::screen::ScreenView;
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
        // A new view: the next refresh draws the whole restored screen.
        self.screen = ScreenView::new();
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

    /// Replace this monitor and its VMs with those a snapshot holds.
    pub fn restore(&mut self, bytes: &[u8]) -> Result<(), JsError> {
        self.vmm = Vmm::restore(bytes).map_err(|e| JsError::new(&e.to_string()))?;
        Ok(())
    }

    /// A new monitor from a snapshot file.
    #[wasm_bindgen(js_name = fromSnapshot)]
    pub fn from_snapshot(bytes: &[u8]) -> Result<WebVmm, JsError> {
        let vmm = Vmm::restore(bytes).map_err(|e| JsError::new(&e.to_string()))?;
        Ok(WebVmm { vmm })
    }
}
