//! v386: an x86 PC emulator whose CPU carries the V386 virtualization extension.
//!
//! Where behaviour lives:
//! - [`cpu`]: the processor — register file, decoder (`cpu::decode`, shared with the
//!   disassembler view and the VMM's interpreters), executor, segmentation, paging/TLB,
//!   interrupts, task switches. It reaches memory and ports only through [`bus::Bus`].
//! - [`bus`]: the narrow trait between CPU and platform, and [`bus::FlatBus`] for tests.
//! - [`addr`]: typed addresses (linear, physical, guest-physical).
//! - [`machine`]: one [`machine::Machine`] owns all emulated state (CPU, RAM, devices).
//! - [`devices`]: the devices of the PC, one file each.
//! - [`front`]: what a front end shows and sends (screen arrays, key codes), wasm-free.
//! - [`vmm`]: the virtual machine monitor on the V386 extension.
//! - [`lab`]: the technique lab: one guest under each way of virtualizing, measured.
//! - [`snapshot`]: the snapshot file format; `Machine::save`/`restore` and
//!   `Vmm::save`/`restore` write and read whole machines with it.
//! - `web`: the wasm-bindgen façade, built for `wasm32` only: the browser's `Machine` and `Vmm`,
//!   and the lab one column at a time.
//! - `src/bin/v386.rs`: the native command-line runner (QEMU's option spelling).
//!
//! Without the `std` feature the crate is `no_std` + `alloc`.
#![cfg_attr(not(feature = "std"), no_std)]
#![forbid(unsafe_op_in_unsafe_fn)]

extern crate alloc;

pub mod addr;
pub mod boot;
pub mod bus;
pub mod cpu;
pub mod devices;
pub mod front;
pub mod lab;
pub mod machine;
pub mod monitor;
pub mod snapshot;
pub mod vmm;
#[cfg(target_arch = "wasm32")]
pub mod web;
