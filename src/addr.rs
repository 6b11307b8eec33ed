//! Typed addresses. The CPU turns an offset within a segment into a [`Linear`] address
//! (SDM Vol. 3A §3.4), paging turns that into a [`Phys`] address (§4.3). In V386 mode a
//! guest's physical address is a [`GuestPhys`] address, translated again by the VMM's
//! second-level tables. Keeping them apart in the type system stops one kind being used as
//! another by accident.

use core::fmt;

macro_rules! addr_type {
    ($(#[$m:meta])* $name:ident) => {
        $(#[$m])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, serde::Serialize, serde::Deserialize)]
        #[repr(transparent)]
        pub struct $name(pub u32);

        impl $name {
            /// The 4 KiB page number this address falls in.
            #[inline]
            pub const fn page(self) -> u32 {
                self.0 >> 12
            }
            /// The offset within its 4 KiB page.
            #[inline]
            pub const fn page_offset(self) -> u32 {
                self.0 & 0xfff
            }
            /// This address plus `n`, wrapping at 4 GiB as the 32-bit address space does.
            #[inline]
            #[must_use]
            pub const fn wrapping_add(self, n: u32) -> Self {
                Self(self.0.wrapping_add(n))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({:#010x})"), self.0)
            }
        }
    };
}

addr_type!(
    /// A linear address: segment base + offset, before paging.
    Linear
);
addr_type!(
    /// A physical address on the machine's bus (host-physical under the VMM).
    Phys
);
addr_type!(
    /// A guest-physical address: what a V386 guest believes is physical.
    GuestPhys
);
