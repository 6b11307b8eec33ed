//! The wasm façade's tests, shared by `tests/wasm_node.rs` (run in node) and
//! `tests/wasm_browser.rs` (run in headless Chromium): each boots a machine through the
//! exported `Machine` class, exactly as the page does, and reads the VGA text through the
//! zero-copy views on wasm memory and the serial port through `takeSerial`.
//!
//! The SeaBIOS images come from `.cache/images/` (built by `scripts/setup.sh`), compiled in
//! with `include_bytes!` because a browser test cannot read files.

/// One `#[wasm_bindgen_test]` per shared test, in the including test crate.
#[macro_export]
macro_rules! wasm_tests {
    ($($name:ident),* $(,)?) => {
        $(
            #[wasm_bindgen_test::wasm_bindgen_test]
            fn $name() {
                wasm::$name();
            }
        )*
    };
}

use js_sys::{Object, Reflect, Uint16Array, Uint8Array, WebAssembly};
use v386::boot::multiboot;
use v386::web::{wasm_memory, WebMachine, WebScreen};
use wasm_bindgen::{JsCast, JsValue};

const BIOS: &[u8] = include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/.cache/images/bios.bin"));
const VGA_BIOS: &[u8] = include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/.cache/images/vgabios-stdvga.bin"));

/// A boot sector that needs no BIOS: "OK" in white on blue at the top left of the text
/// screen (B800:0000), "hello\n" on COM1 (port 0x3F8), then HLT.
fn boot_sector() -> Vec<u8> {
    let mut code = vec![
        0xb8, 0x00, 0xb8, // mov ax, 0xb800
        0x8e, 0xc0, // mov es, ax
        0x26, 0xc7, 0x06, 0x00, 0x00, b'O', 0x1f, // mov word [es:0], 0x1f4f
        0x26, 0xc7, 0x06, 0x02, 0x00, b'K', 0x1f, // mov word [es:2], 0x1f4b
        0xba, 0xf8, 0x03, // mov dx, 0x3f8
        0xbe, 0x00, 0x7d, // mov si, msg (0x7d00)
        0xac, // l: lodsb
        0x84, 0xc0, // test al, al
        0x74, 0x03, // jz done
        0xee, // out dx, al
        0xeb, 0xf8, // jmp l
        0xfa, 0xf4, // done: cli ; hlt
    ];
    code.resize(0x100, 0);
    code.extend_from_slice(b"hello\n\0");
    code.resize(510, 0);
    code.extend_from_slice(&[0x55, 0xaa]);
    code
}

/// The boot sector on a whole 1.44 MB floppy, as the floppy controller takes it.
fn floppy() -> Vec<u8> {
    let mut img = boot_sector();
    img.resize(1_474_560, 0);
    img
}

fn config(pairs: &[(&str, JsValue)]) -> JsValue {
    let obj = Object::new();
    for (k, v) in pairs {
        Reflect::set(&obj, &JsValue::from_str(k), v).unwrap();
    }
    obj.into()
}

fn bytes(b: &[u8]) -> JsValue {
    Uint8Array::from(b).into()
}

/// The text cells as the page reads them: a Uint16Array on wasm memory at `textPtr()`.
fn cells_view(s: &WebScreen) -> Vec<u16> {
    let memory: WebAssembly::Memory = wasm_memory().dyn_into().unwrap();
    let len = u32::from(s.text_cols()) * u32::from(s.text_rows());
    Uint16Array::new_with_byte_offset_and_length(&memory.buffer(), s.text_ptr() as u32, len).to_vec()
}

pub fn boot_sector_reports_on_vga_and_serial() {
    let mut m = WebMachine::new(config(&[("memoryMb", 4.into()), ("fda", bytes(&boot_sector()))])).unwrap();
    assert_eq!(m.run(1000.0), "halted");
    assert_eq!(m.take_serial(), b"hello\n");
    let mut s = WebScreen::new();
    assert!(m.refresh_screen(&mut s));
    assert_eq!((s.screen_mode(), s.text_cols(), s.text_rows()), (1, 80, 25));
    let cells = cells_view(&s);
    assert_eq!(&cells[..2], &[0x1f4f, 0x1f4b]);
    // The dirty flags say row 0 changed; after clearDirty nothing is dirty.
    let memory: WebAssembly::Memory = wasm_memory().dyn_into().unwrap();
    let dirty = Uint8Array::new_with_byte_offset_and_length(&memory.buffer(), s.dirty_ptr() as u32, 25).to_vec();
    assert_eq!(dirty[0], 1);
    s.clear_dirty();
    assert!(!m.refresh_screen(&mut s));
    assert!(m.screen_text().starts_with("OK\n"));
}

pub fn seabios_banner_on_vga_and_serial() {
    let mut m = WebMachine::new(config(&[
        ("memoryMb", 16.into()),
        ("bios", bytes(BIOS)),
        ("vgaBios", bytes(VGA_BIOS)),
        ("fda", bytes(&floppy())),
    ]))
    .unwrap();
    let mut serial = Vec::new();
    let mut found = false;
    let mut s = WebScreen::new();
    for _ in 0..60 {
        m.run(2_000_000.0);
        serial.extend(m.take_serial());
        m.refresh_screen(&mut s);
        let text: String = cells_view(&s).iter().map(|c| char::from(*c as u8)).collect();
        if text.contains("SeaBIOS (version") && String::from_utf8_lossy(&serial).contains("SeaBIOS (version") {
            found = true;
            break;
        }
    }
    assert!(found, "no SeaBIOS banner after {} instructions:\n{}", m.instructions(), m.screen_text());
    // The VGA BIOS loaded its font into plane 2: glyph 'A' is not blank.
    let memory: WebAssembly::Memory = wasm_memory().dyn_into().unwrap();
    let font = Uint8Array::new_with_byte_offset_and_length(&memory.buffer(), s.font_ptr() as u32, 512 * 32).to_vec();
    assert!(font[0x41 * 32..0x41 * 32 + 16].iter().any(|&b| b != 0));
    // The floppy boots after the banner: our boot sector greets on COM1.
    for _ in 0..100 {
        if String::from_utf8_lossy(&serial).contains("hello") {
            break;
        }
        m.run(2_000_000.0);
        serial.extend(m.take_serial());
    }
    assert!(String::from_utf8_lossy(&serial).contains("hello"), "the boot sector did not run");
}

pub fn bad_configs_are_errors_not_panics() {
    let e = WebMachine::new(config(&[("memoryMb", 4.into()), ("fdaa", bytes(&boot_sector()))])).err().unwrap();
    let msg: JsValue = e.into();
    let text = Reflect::get(&msg, &JsValue::from_str("message")).unwrap().as_string().unwrap();
    assert!(text.contains("unknown option 'fdaa'"), "{text}");
    let e = WebMachine::new(config(&[("bios", bytes(&[1, 2, 3]))])).err().unwrap();
    let msg: JsValue = e.into();
    let text = Reflect::get(&msg, &JsValue::from_str("message")).unwrap().as_string().unwrap();
    assert!(text.starts_with("bios: a BIOS image of 3 bytes"), "{text}");
}

pub fn keys_reach_the_keyboard_controller() {
    let mut m = WebMachine::new(config(&[("memoryMb", 4.into()), ("fda", bytes(&boot_sector()))])).unwrap();
    assert!(m.key("KeyA", true));
    assert!(!m.key("NoSuchKey", true));
    // The 8042 now has a byte for the guest: status register bit 0 (output buffer full).
    assert_eq!(m.inner().bus.kbd.read(0x64, v386::bus::IoSize::Byte) & 1, 1);
}

/// Two VMs under the VMM through the exported `Vmm` class: each boots the boot sector
/// (no BIOS), prints on its own serial line and screen, and the exit log is read in place
/// through a `Uint8Array` on wasm memory, record by record (`vmm::log::ExitRecord`).
pub fn vmm_runs_two_vms_and_shows_the_exit_log() {
    use v386::web::WebVmm;
    let vm = |name: &str| config(&[("name", name.into()), ("memoryMb", 4.into()), ("fda", bytes(&boot_sector()))]);
    let vms = js_sys::Array::of2(&vm("left"), &vm("right"));
    let mut v = WebVmm::new(config(&[("quantum", 1000.into()), ("vms", vms.into())])).unwrap();
    assert_eq!(v.run(1_000_000.0), "stopped", "both halt with interrupts off");
    assert_eq!((v.vm_count(), v.vm_name(0), v.vm_name(1)), (2, "left".into(), "right".into()));
    for i in 0..2 {
        assert_eq!(v.take_serial(i), b"hello\n");
        assert!(v.screen_text(i).starts_with("OK"), "screen {i}: {}", v.screen_text(i));
        assert_eq!(v.vm_state(i), "stopped: DeadHalt");
        // Six OUTs to COM1 and the HLT, counted by reason number (30 = IO, 12 = HLT).
        let c = v.counters(i);
        assert_eq!((c[30], c[12]), (6.0, 1.0));
    }
    let memory: WebAssembly::Memory = wasm_memory().dyn_into().unwrap();
    let size = v.exit_record_size();
    let n = v.exit_log_len();
    assert_eq!(v.exit_log_total() as usize, n);
    let raw = Uint8Array::new_with_byte_offset_and_length(&memory.buffer(), v.exit_log_ptr() as u32, (n * size) as u32)
        .to_vec();
    let field16 = |r: &[u8], off: usize| u16::from_le_bytes([r[off], r[off + 1]]);
    // time u64, qualification u64, guest_eip u32, vm u16 (offset 20), reason u16 (22).
    let io: Vec<(u16, u16)> =
        raw.chunks(size).map(|r| (field16(r, 20), field16(r, 22))).filter(|r| r.1 == 30).collect();
    assert!(io.iter().any(|r| r.0 == 1) && io.iter().any(|r| r.0 == 2), "exits of both VMs: {io:?}");
    // Copies of the records disassemble (iced-x86 in the façade): the OUTs and the HLT.
    let text = v.disassemble_records(&raw);
    assert_eq!(text.len(), n);
    assert!(text.iter().any(|t| t == "out dx, al") && text.iter().any(|t| t == "hlt"), "{text:?}");

    // Break on HLT: run stops at the first one, the VM's exit pending; resuming finishes.
    let vms = js_sys::Array::of2(&vm("left"), &vm("right"));
    let mut v = WebVmm::new(config(&[("quantum", 1000.into()), ("vms", vms.into())])).unwrap();
    v.set_break_on(&[12]);
    assert_eq!(v.run(1_000_000.0), "break");
    let i = v.break_vm() as usize;
    assert_eq!((v.break_reason(), v.pending_exit(i)), (12, 12));
    let state = v.guest_state(i);
    let row = |name: &str| {
        state
            .iter()
            .map(|r| r.unchecked_into::<js_sys::Array>())
            .find(|r| r.get(1).as_string().as_deref() == Some(name))
    };
    assert_eq!(row("instr").and_then(|r| r.get(2).as_string()).as_deref(), Some("hlt"));
    assert_eq!(v.run(1_000_000.0), "break", "the other VM's HLT");
    assert_eq!(v.run(1_000_000.0), "stopped");
    assert!(WebVmm::new(config(&[("vms", 5.into())])).is_err());
    let bad = js_sys::Array::of1(&config(&[("memoryMB", 4.into())]));
    assert!(WebVmm::new(config(&[("vms", bad.into())])).is_err(), "a misspelt field is an error");
}

/// A Multiboot kernel (the a.out kludge: loaded at 1 MiB as it is) that writes "hello\n"
/// on COM1 and halts with interrupts off: a guest in protected mode from its first
/// instruction, as the software monitor's techniques need.
fn multiboot_kernel() -> Vec<u8> {
    let mut body = vec![
        0x66, 0xba, 0xf8, 0x03, // mov dx, 0x3f8
        0xbe, 0x40, 0x00, 0x10, 0x00, // mov esi, msg (0x100040)
        0xac, // l: lodsb
        0x84, 0xc0, // test al, al
        0x74, 0x03, // jz done
        0xee, // out dx, al
        0xeb, 0xf8, // jmp l
        0xfa, 0xf4, // done: cli ; hlt
    ];
    body.resize(0x40 - multiboot::FLAT_HEADER_SIZE as usize, 0);
    body.extend_from_slice(b"hello\n\0");
    multiboot::flat_image(0x10_0000, &body)
}

/// A VM's `technique` in the config: the same kernel on V386 and under the software
/// monitor's plain trap-and-emulate, side by side; the page reads each VM's technique,
/// and the monitor VM's registers carry the guest's view of its privileged state. An
/// unknown technique is an error that lists the known ones; a BIOS boot under the
/// monitor is an error that says why.
pub fn vmm_runs_each_vm_under_its_technique() {
    use v386::web::WebVmm;
    let message = |e: wasm_bindgen::JsError| {
        let v: JsValue = e.into();
        Reflect::get(&v, &JsValue::from_str("message")).unwrap().as_string().unwrap()
    };
    let vm = |name: &str, technique: Option<&str>| {
        let mut c = vec![("name", name.into()), ("memoryMb", 4.into()), ("kernel", bytes(&multiboot_kernel()))];
        if let Some(t) = technique {
            c.push(("technique", t.into()));
        }
        config(&c)
    };
    let vms = js_sys::Array::of2(&vm("v386", None), &vm("classic", Some("trap-and-emulate")));
    let mut v = WebVmm::new(config(&[("vms", vms.into())])).unwrap();
    assert_eq!(v.run(1_000_000.0), "stopped");
    assert_eq!((v.vm_technique(0), v.vm_technique_name(0)), ("v386".into(), "V386".into()));
    assert_eq!((v.vm_technique(1), v.vm_technique_name(1)), ("trap-and-emulate".into(), "Trap-and-emulate".into()));
    assert_eq!(v.vm_technique(2), "");
    for i in 0..2 {
        assert_eq!(v.take_serial(i), b"hello\n", "VM {i}");
    }
    let groups = |i: usize| -> Vec<String> {
        v.guest_state(i).iter().map(|r| r.unchecked_into::<js_sys::Array>().get(0).as_string().unwrap()).collect()
    };
    assert!(!groups(0).iter().any(|g| g == "monitor"), "a V386 VM has no monitor rows");
    assert!(groups(1).iter().any(|g| g == "monitor"), "{:?}", groups(1));

    let bad = js_sys::Array::of1(&vm("x", Some("trap-and-emulate-sometimes")));
    let e = message(WebVmm::new(config(&[("vms", bad.into())])).err().unwrap());
    assert!(e.contains("unknown technique 'trap-and-emulate-sometimes'") && e.contains("scan-before-execute"), "{e}");
    let bios =
        config(&[("technique", "scan-before-execute".into()), ("memoryMb", 4.into()), ("fda", bytes(&floppy()))]);
    let e = message(WebVmm::new(config(&[("vms", js_sys::Array::of1(&bios).into())])).err().unwrap());
    assert!(e.contains("not in protected mode"), "{e}");
}

/// Snapshots through the façade: a machine saved halfway through the boot sector is
/// restored into another machine and made anew with `fromSnapshot`; both finish the
/// program as the original does. A VMM round-trips too, and bad files throw.
pub fn snapshots_save_and_restore_through_the_facade() {
    use v386::web::WebVmm;
    let mut m = WebMachine::new(config(&[("memoryMb", 4.into()), ("fda", bytes(&boot_sector()))])).unwrap();
    // Through the screen writes, before the serial output.
    assert_eq!(m.run(12.0), "running");
    let snap = m.save().unwrap();
    assert!(snap.starts_with(b"V386SNAP"));
    let mut other = WebMachine::new(config(&[("memoryMb", 8.into()), ("fda", bytes(&floppy()))])).unwrap();
    other.restore(&snap).unwrap();
    let mut fresh = WebMachine::from_snapshot(&snap).unwrap();
    for x in [&mut m, &mut other, &mut fresh] {
        assert_eq!(x.run(1000.0), "halted");
        assert_eq!(x.take_serial(), b"hello\n");
        assert!(x.screen_text().starts_with("OK\n"), "{}", x.screen_text());
    }
    assert_eq!((other.instructions(), fresh.instructions()), (m.instructions(), m.instructions()));

    let message = |e: wasm_bindgen::JsError| {
        let v: JsValue = e.into();
        Reflect::get(&v, &JsValue::from_str("message")).unwrap().as_string().unwrap()
    };
    let before = other.instructions();
    let e = message(other.restore(b"not a snapshot at all").err().unwrap());
    assert!(e.contains("V386SNAP"), "{e}");
    let e = message(other.restore(&snap[..snap.len() / 2]).err().unwrap());
    assert!(e.contains("truncated"), "{e}");
    assert_eq!(other.instructions(), before, "a failed restore leaves the machine as it was");

    let vm = |name: &str| config(&[("name", name.into()), ("memoryMb", 4.into()), ("fda", bytes(&boot_sector()))]);
    let vms = js_sys::Array::of2(&vm("left"), &vm("right"));
    let mut v = WebVmm::new(config(&[("quantum", 1000.into()), ("vms", vms.into())])).unwrap();
    v.run(2000.0);
    let vsnap = v.save().unwrap();
    let e = message(WebMachine::from_snapshot(&vsnap).err().unwrap());
    assert!(e.contains("VMM"), "{e}");
    let mut w = WebVmm::from_snapshot(&vsnap).unwrap();
    for x in [&mut v, &mut w] {
        assert_eq!(x.run(1_000_000.0), "stopped");
    }
    for i in 0..2 {
        assert_eq!((v.take_serial(i), v.counters(i)), (w.take_serial(i), w.counters(i)));
    }
    assert_eq!(v.exit_log_total(), w.exit_log_total());
}

/// The lab's exports answer every call with a value the page can show, never a throw or
/// a panic: a column that does not exist, a guest image that is not one, an iteration
/// count the guest refuses. (The real guest's figures are
/// checked by `tests/lab.rs` natively and by the e2e test of `www/compare.html`.)
pub fn lab_answers_every_column_with_a_value() {
    use v386::web::lab::{lab_defaults, lab_run, lab_techniques};
    let get = |o: &JsValue, k: &str| Reflect::get(o, &JsValue::from_str(k)).unwrap();
    let list: js_sys::Array = lab_techniques().dyn_into().unwrap();
    assert_eq!(list.length(), 6);
    for (i, t) in list.iter().enumerate() {
        assert_eq!(get(&t, "number").as_f64(), Some(i as f64 + 1.0));
        let r = lab_run(i as u32 + 1, &[0xcc; 64], &[0xcc; 64], 10, 100);
        assert_eq!(get(&r, "ok").as_bool(), Some(false), "column {}: a garbage image ran", i + 1);
        assert!(!get(&r, "error").as_string().unwrap().is_empty());
    }
    let r = lab_run(7, &[], &[], 10, 0);
    assert!(get(&r, "error").as_string().unwrap().contains("1 to 6"));
    let r = lab_run(1, &[], &[], 0, 0);
    assert!(get(&r, "error").as_string().unwrap().contains("1 to 1000000"));
    assert_eq!(get(&lab_defaults(), "exitCost").as_f64(), Some(12_617.0));
}
