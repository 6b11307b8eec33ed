//! The PC boots: SeaBIOS (Debian's `bios.bin` and `vgabios-stdvga.bin`, fetched by
//! scripts/images.sh into `.cache/images/`) prints its banner on the VGA text screen and on
//! the serial port, and boots a boot sector from a floppy, a hard disk and a CD (El Torito),
//! which reports on the serial port.
//!
//! The images and nasm come from the set-up. When they are missing the tests print why and
//! pass, unless `V386_REQUIRE_QEMU` is set (CI sets it), which makes that a failure.

mod common;
use common::*;

use std::path::Path;
use std::process::Command;

use v386::cpu::StopReason;
use v386::machine::{Machine, MachineConfig};

/// The isa-debug-exit port the boot sector ends the run with.
const DEBUG_EXIT_PORT: u16 = 0xf4;
/// What the boot sector writes there: exit value 0x10.
const BOOT_SECTOR_DONE: StopReason = StopReason::DebugExit(0x10);

/// A machine with SeaBIOS loaded, or None (skipped) when the images are not there.
fn machine_with_bios(mem_mb: u32) -> Option<Machine> {
    let (bios, vga) = (images().join("bios.bin"), images().join("vgabios-stdvga.bin"));
    let (Ok(bios), Ok(vga)) = (std::fs::read(&bios), std::fs::read(&vga)) else {
        skip("no SeaBIOS in .cache/images (run scripts/setup.sh)");
        return None;
    };
    let cfg = MachineConfig { mem_mb, debug_exit_port: Some(DEBUG_EXIT_PORT), ..Default::default() };
    let mut m = Machine::new(&cfg).unwrap();
    m.load_bios(&bios, Some(&vga)).unwrap();
    Some(m)
}

/// Run until `done` says so (checked every slice) or the budget is spent; the serial output.
fn run_until(m: &mut Machine, budget: u64, mut done: impl FnMut(&str, &Machine) -> bool) -> (String, StopReason) {
    let mut serial = Vec::new();
    let mut spent = 0;
    loop {
        let r = m.run(5_000_000);
        serial.extend(m.take_serial());
        spent += 5_000_000;
        let text = String::from_utf8_lossy(&serial).into_owned();
        if r != StopReason::BudgetSpent || done(&text, m) || spent >= budget {
            return (text, r);
        }
    }
}

#[test]
fn seabios_prints_its_banner_on_vga_and_serial() {
    let Some(mut m) = machine_with_bios(32) else { return };
    let (serial, _) = run_until(&mut m, 300_000_000, |s, m| {
        s.contains("No bootable device") && m.vga_text().to_text().contains("No bootable device")
    });
    let screen = m.vga_text().to_text();
    assert!(serial.contains("SeaBIOS (version 1.16"), "serial: {serial}");
    assert!(screen.contains("SeaBIOS (version 1.16"), "screen:\n{screen}");
    assert!(screen.contains("No bootable device"), "screen:\n{screen}");
}

/// The boot sector, assembled once (the tests run in parallel and must not race on the
/// output file); None (skipped) without nasm.
fn boot_sector() -> Option<Vec<u8>> {
    static SECTOR: std::sync::OnceLock<Option<Vec<u8>>> = std::sync::OnceLock::new();
    let s = SECTOR.get_or_init(|| {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/guests/bootsector.asm");
        let out = out_dir("pc_boot").join("bootsector.bin");
        match Command::new("nasm").args(["-f", "bin"]).arg(&src).arg("-o").arg(&out).output() {
            Ok(o) if o.status.success() => Some(std::fs::read(&out).unwrap()),
            Ok(o) => panic!("nasm failed: {}", String::from_utf8_lossy(&o.stderr)),
            Err(_) => None,
        }
    });
    if s.is_none() {
        skip("nasm is not installed");
    }
    s.clone()
}

fn boot_and_expect(m: &mut Machine, drive: &str) {
    let (serial, stop) = run_until(m, 400_000_000, |s, _| s.contains("V386 BOOT OK"));
    assert_eq!(stop, BOOT_SECTOR_DONE, "serial: {serial}");
    assert!(serial.contains(&format!("V386 BOOT OK drive={drive}")), "serial: {serial}");
}

#[test]
fn a_floppy_boot_sector_boots() {
    let Some(sector) = boot_sector() else { return };
    let Some(mut m) = machine_with_bios(32) else { return };
    let mut img = sector;
    img.resize(1_474_560, 0);
    m.insert_floppy(0, img).unwrap();
    m.set_boot_order("a").unwrap();
    boot_and_expect(&mut m, "00");
}

#[test]
fn a_hard_disk_boot_sector_boots() {
    let Some(sector) = boot_sector() else { return };
    let Some(mut m) = machine_with_bios(32) else { return };
    let mut img = sector;
    img.resize(1 << 20, 0);
    m.attach_disk(0, img).unwrap();
    m.set_boot_order("c").unwrap();
    boot_and_expect(&mut m, "80");
}

#[test]
fn a_cd_boot_image_boots_through_el_torito() {
    let Some(sector) = boot_sector() else { return };
    // An ISO 9660 image whose El Torito catalogue names the sector as a no-emulation boot
    // image (xorriso comes with the set-up).
    let dir = out_dir("pc_boot").join("cd");
    std::fs::create_dir_all(&dir).unwrap();
    let mut boot = sector;
    boot.resize(2048, 0);
    std::fs::write(dir.join("boot.bin"), &boot).unwrap();
    let iso = out_dir("pc_boot").join("boot.iso");
    let made = Command::new("xorriso")
        .args(["-as", "mkisofs", "-quiet", "-o"])
        .arg(&iso)
        .args(["-b", "boot.bin", "-no-emul-boot", "-boot-load-size", "4"])
        .arg(&dir)
        .output();
    match made {
        Ok(o) if o.status.success() => {}
        Ok(o) => panic!("xorriso failed: {}", String::from_utf8_lossy(&o.stderr)),
        Err(_) => return skip("xorriso is not installed"),
    }
    let Some(mut m) = machine_with_bios(32) else { return };
    m.attach_cdrom(std::fs::read(&iso).unwrap()).unwrap();
    m.set_boot_order("d").unwrap();
    // SeaBIOS numbers the CD after the hard disks: with none, it is drive 0x80... as
    // QEMU's SeaBIOS reports it; the test accepts what the BIOS passes in DL.
    let (serial, stop) = run_until(&mut m, 400_000_000, |s, _| s.contains("V386 BOOT OK"));
    assert_eq!(stop, BOOT_SECTOR_DONE, "serial: {serial}");
    assert!(serial.contains("Booting from DVD/CD"), "serial: {serial}");
    assert!(serial.contains("V386 BOOT OK drive="), "serial: {serial}");
}

#[test]
fn bad_images_are_clear_errors_not_panics() {
    let cfg = MachineConfig::default();
    let mut m = Machine::new(&cfg).unwrap();
    let e = m.insert_floppy(0, vec![0; 1000]).unwrap_err().to_string();
    assert!(e.contains("1000"), "{e}");
    let e = m.attach_disk(0, vec![0; 1000]).unwrap_err().to_string();
    assert!(e.contains("512") || e.contains("1000"), "{e}");
    let e = m.attach_cdrom(vec![0; 3000]).unwrap_err().to_string();
    assert!(e.contains("2048") || e.contains("3000"), "{e}");
    let e = m.load_bios(&[0; 1000], None).unwrap_err().to_string();
    assert!(e.contains("64 KiB"), "{e}");
}

#[test]
fn the_a20_gate_wraps_the_first_megabyte_when_closed() {
    use v386::machine::StartMode;
    // Real mode, no BIOS. With the 8042 (command DDh) and port 0x92 both closing A20, a
    // write to FFFF:0010 (physical 0x100000) lands at 0; with A20 open (DFh) it does not.
    let code: &[u8] = &[
        0xb0, 0xdd, 0xe6, 0x64, // mov al, 0xdd ; out 0x64, al   (8042: A20 off)
        0x30, 0xc0, 0xe6, 0x92, // xor al, al ; out 0x92, al     (port 0x92: A20 off)
        0xb8, 0xff, 0xff, 0x8e, 0xc0, // mov ax, 0xffff ; mov es, ax
        0x31, 0xdb, 0x8e, 0xdb, // xor bx, bx ; mov ds, bx
        0x26, 0xc6, 0x06, 0x10, 0x00, 0x55, // mov byte [es:0x10], 0x55
        0xa0, 0x00, 0x00, 0xe6, 0xe9, // mov al, [0] ; out 0xe9, al
        0xb0, 0xdf, 0xe6, 0x64, // mov al, 0xdf ; out 0x64, al   (8042: A20 on)
        0x26, 0xc6, 0x06, 0x10, 0x00, 0xaa, // mov byte [es:0x10], 0xaa
        0xa0, 0x00, 0x00, 0xe6, 0xe9, // mov al, [0] ; out 0xe9, al
        0x26, 0xa0, 0x10, 0x00, 0xe6, 0xe9, // mov al, [es:0x10] ; out 0xe9, al
        0xf4, // hlt
    ];
    let mut m = Machine::new(&MachineConfig::default()).unwrap();
    m.load_flat(code, 0x7c00, 0x7c00, StartMode::Real).unwrap();
    assert_eq!(m.run(1000), StopReason::Halted);
    assert_eq!(m.take_debugcon(), [0x55, 0x55, 0xaa]);
}
