//! Debian's i386 Linux kernel (6.1, "686") with a busybox initramfs boots to a shell on
//! ttyS0, and answers `uname -a` and `cat /proc/cpuinfo` typed on the serial line:
//! through the direct Linux boot path (`-kernel`/`-initrd`/`-append`) and through SeaBIOS
//! from the isolinux CD, where it also runs with its local APIC and I/O APIC on. The images come from scripts/images.sh (`.cache/images/`).
//!
//! Each test prints its boot time in retired instructions and wall seconds. Without the
//! images the tests print why and pass, unless `V386_REQUIRE_QEMU` is set (CI sets it).

mod common;
use common::*;

use std::time::Instant;

use v386::cpu::StopReason;
use v386::machine::{Machine, MachineConfig};

/// The shell prompt tests/images/init sets.
const PROMPT: &str = "v386:/# ";
/// Instructions a boot may take before the test gives up.
const BOOT_BUDGET: u64 = 30_000_000_000;

/// Serial output so far, accumulated slice by slice.
struct Console {
    text: String,
}

impl Console {
    /// Run until `pattern` appears after byte `from` of the output; the instructions spent.
    fn wait_for(&mut self, m: &mut Machine, pattern: &str, from: usize, budget: u64) -> u64 {
        let start = m.cpu.icount;
        loop {
            let r = m.run(20_000_000);
            self.text.push_str(&String::from_utf8_lossy(&m.take_serial()));
            if self.text[from.min(self.text.len())..].contains(pattern) {
                return m.cpu.icount - start;
            }
            assert!(
                matches!(r, StopReason::BudgetSpent) && m.cpu.icount - start < budget,
                "stopped ({r:?}) after {} instructions waiting for {pattern:?}; output:\n{}",
                m.cpu.icount - start,
                self.text
            );
        }
    }

    /// Type a command and return its output (up to the next prompt).
    fn command(&mut self, m: &mut Machine, cmd: &str) -> String {
        let from = self.text.len();
        m.serial_input(cmd.as_bytes());
        m.serial_input(b"\n");
        self.wait_for(m, PROMPT, from + cmd.len(), 2_000_000_000);
        self.text[from..].to_string()
    }
}

fn check_shell(m: &mut Machine, con: &mut Console) {
    let uname = con.command(m, "uname -a");
    assert!(uname.contains("Linux") && uname.contains("6.1.0") && uname.contains("i686"), "uname -a:\n{uname}");
    let cpuinfo = con.command(m, "cat /proc/cpuinfo");
    assert!(cpuinfo.contains("vendor_id\t: V386 VirtCPU"), "cpuinfo:\n{cpuinfo}");
    assert!(cpuinfo.contains("fpu\t\t: yes"), "cpuinfo:\n{cpuinfo}");
    assert!(cpuinfo.contains("cpu family\t: 6"), "cpuinfo:\n{cpuinfo}");
}

fn report(path: &str, instructions: u64, t: Instant) {
    println!(
        "{path}: shell prompt after {instructions} instructions, {:.1} s wall ({:.0} M instructions/s)",
        t.elapsed().as_secs_f64(),
        instructions as f64 / t.elapsed().as_secs_f64() / 1e6
    );
}

#[test]
fn linux_boots_to_a_shell_through_the_linux_boot_protocol() {
    let (Some(kernel), Some(initrd)) = (read_image("vmlinuz"), read_image("initramfs.cpio.gz")) else { return };
    let mut m = Machine::new(&MachineConfig { mem_mb: 128, ..Default::default() }).unwrap();
    // cryptomgr.notests: the crypto self-tests cost ~3 G instructions (30 s of guest
    // time at the deterministic clock) and test nothing of the emulator that the
    // differential suite does not.
    m.load_kernel(&kernel, Some(&initrd), "console=ttyS0 cryptomgr.notests").unwrap();
    let mut con = Console { text: String::new() };
    let t = Instant::now();
    let n = con.wait_for(&mut m, PROMPT, 0, BOOT_BUDGET);
    report("direct boot (-kernel)", n, t);
    check_shell(&mut m, &mut con);
}

#[test]
fn linux_boots_to_a_shell_through_seabios_from_a_cd() {
    let (Some(bios), Some(vga), Some(iso)) =
        (read_image("bios.bin"), read_image("vgabios-stdvga.bin"), read_image("linux.iso"))
    else {
        return;
    };
    let mut m = Machine::new(&MachineConfig { mem_mb: 128, ..Default::default() }).unwrap();
    m.load_bios(&bios, Some(&vga)).unwrap();
    m.attach_cdrom(iso).unwrap();
    m.set_boot_order("d").unwrap();
    let mut con = Console { text: String::new() };
    let t = Instant::now();
    let n = con.wait_for(&mut m, PROMPT, 0, BOOT_BUDGET);
    report("SeaBIOS + isolinux CD", n, t);
    assert!(con.text.contains("SeaBIOS (version"), "{}", con.text);
    // With SeaBIOS's MP and ACPI tables the kernel runs with its APICs on (no "noapic",
    // no "nolapic"): the local APIC, and the timer through the I/O APIC.
    assert!(con.text.contains("Enabling APIC mode:  Flat.  Using 1 I/O APICs"), "{}", con.text);
    assert!(con.text.contains("..TIMER: vector=0x30 apic1=0 pin1=2"), "{}", con.text);
    check_shell(&mut m, &mut con);
}
