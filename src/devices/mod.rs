//! The devices of the PC, one file each. Each names its ports with constants citing where
//! they are defined.

pub mod debugcon;
pub mod debugexit;
