//! The devices of the PC, one file each. Each names its ports with constants citing where
//! they are defined.
//!
//! Conventions every device follows (so the PC bus can wire them without knowing their
//! insides):
//! - Port I/O is `read(port, size) -> u32` / `write(port, size, value)` with the absolute
//!   port number; a device ignores ports it does not own and answers all ones for them.
//! - Time is [`Nanos`], virtual nanoseconds since the machine started. Clocked devices
//!   have `advance(now)` to catch up and `next_event(now) -> Option<Nanos>` so the run loop
//!   knows how long it may run before the device needs attention.
//! - Interrupt outputs are levels or edges the bus reads after an access or `advance` and
//!   routes to the interrupt controllers; devices never call each other.
//! - Nothing a guest writes may panic a device.

pub mod debugcon;
pub mod debugexit;
pub mod dma;
pub mod fdc;
pub mod fw_cfg;
pub mod i8042;
pub mod ide;
pub mod ioapic;
pub mod lapic;
pub mod pci;
pub mod pic;
pub mod pit;
pub mod port92;
pub mod rtc;
pub mod uart;
pub mod vga;

/// Virtual time: nanoseconds since the machine started.
pub type Nanos = u64;
