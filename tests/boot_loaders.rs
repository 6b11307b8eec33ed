//! End-to-end tests of the BIOS-less kernel loaders (`v386::boot`): a tiny Multiboot kernel,
//! assembled with nasm from the source below in an a.out-kludge and an ELF32 build, is
//! loaded with `load_multiboot` into a `Machine`, started from the returned `BootState`, and
//! checks what the specification promises (EAX magic, mem_upper, the command line, a module,
//! the memory map, a zeroed bss); it reports on the debug console (port 0xE9) and leaves
//! through isa-debug-exit. When QEMU is installed the same image is booted with QEMU's own
//! `-kernel`/`-append`/`-initrd` and must print the same thing.
//!
//! With the images scripts/images.sh builds (.cache/images), the Linux loader is also run on
//! real bzImages: memtest86+ must draw its screen and find the RAM the e820 map describes,
//! Debian's kernel must start its decompressor (and, in an ignored long test, print its
//! banner with that map and the command line on COM1). Without the images these tests
//! print why and pass.
//!
//! nasm and qemu-system-i386 are external tools; when one is missing the test prints why and
//! passes, unless `V386_REQUIRE_QEMU` is set (as in tests/guests.rs).

mod common;
use common::*;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use v386::boot::linux::{load_linux, BootError, SetupHeader, ZERO_PAGE_ADDR};
use v386::boot::multiboot::{load_multiboot, Module};
use v386::boot::PC_RESERVED;
use v386::cpu::StopReason;
use v386::machine::{Machine, MachineConfig};

const DEBUG_EXIT_PORT: u16 = 0xf4;
const MEM_MB: u32 = 32;
const QEMU_TIMEOUT: Duration = Duration::from_secs(60);

/// The Multiboot kernel. Assembled with `-DELF` it is its own ELF32 executable (headers
/// written out by hand, one PT_LOAD segment whose memory size covers the bss); without, a
/// flat image whose header carries the a.out kludge's address fields. MEM_UPPER is the
/// largest mem_upper the RAM size allows; the kernel accepts up to 1 MiB less, since a BIOS
/// may keep tables at the top of RAM (SeaBIOS under QEMU does), and the test checks v386's
/// exact value itself.
const MB_KERNEL: &str = r#"
bits 32
org 0x100000
image_start:
%ifdef ELF
    db 0x7f, "ELF", 1, 1, 1, 0          ; ELFCLASS32, little-endian, version 1
    times 8 db 0
    dw 2                                ; e_type: ET_EXEC
    dw 3                                ; e_machine: EM_386
    dd 1                                ; e_version
    dd entry                            ; e_entry
    dd phdr - image_start               ; e_phoff
    dd 0                                ; e_shoff
    dd 0                                ; e_flags
    dw 52, 32, 1                        ; e_ehsize, e_phentsize, e_phnum
    dw 0, 0, 0                          ; e_shentsize, e_shnum, e_shstrndx
phdr:
    dd 1                                ; PT_LOAD
    dd 0                                ; p_offset
    dd image_start, image_start         ; p_vaddr, p_paddr
    dd file_end - image_start           ; p_filesz
    dd bss_end - image_start            ; p_memsz
    dd 7, 0x1000                        ; p_flags (RWX), p_align
%define MB_FLAGS 0x00000003
%else
%define MB_FLAGS 0x00010003
%endif

align 4
mb_header:
    dd 0x1BADB002
    dd MB_FLAGS
    dd -(0x1BADB002 + MB_FLAGS)
%ifndef ELF
    dd mb_header                        ; header_addr
    dd image_start                      ; load_addr
    dd file_end                         ; load_end_addr
    dd bss_end                          ; bss_end_addr
    dd entry                            ; entry_addr
%endif

entry:
    mov esp, stack_top
    cld
    cmp eax, 0x2BADB002
    mov esi, msg_magic
    jne fail
    mov esi, msg_bss
    cmp dword [bss_marker], 0
    jne fail
    mov ebp, ebx                        ; the information structure

    ; mem_upper (flags bit 0)
    mov esi, msg_mem
    test dword [ebp], 1
    jz fail
    mov eax, [ebp + 8]
    cmp eax, MEM_UPPER
    ja fail
    cmp eax, MEM_UPPER - 1024
    jb fail

    ; the command line (bit 2)
    mov esi, msg_cmdline
    test dword [ebp], 1 << 2
    jz fail
    call puts
    mov esi, [ebp + 16]
    call puts
    call newline

    ; one module (bit 3): its string and its contents
    mov esi, msg_mods
    test dword [ebp], 1 << 3
    jz fail
    cmp dword [ebp + 20], 1
    jne fail
    mov edi, [ebp + 24]
    test dword [edi], 0xfff             ; page aligned (header flags bit 0)
    jnz fail
    mov esi, msg_module
    call puts
    mov esi, [edi + 8]
    call puts
    call newline
    mov esi, msg_data
    call puts
    mov ecx, [edi]
.data_loop:
    cmp ecx, [edi + 4]
    jae .data_done
    mov al, [ecx]
    call putc
    inc ecx
    jmp .data_loop
.data_done:

    ; the memory map (bit 6): some available RAM starts at 1 MiB
    mov esi, msg_mmap
    test dword [ebp], 1 << 6
    jz fail
    mov ecx, [ebp + 48]                 ; mmap_addr
    mov edx, ecx
    add edx, [ebp + 44]                 ; + mmap_length
.mmap_loop:
    cmp ecx, edx
    jae fail
    cmp dword [ecx + 4], 0x100000       ; base_addr (low)
    jne .mmap_next
    cmp dword [ecx + 8], 0              ; base_addr (high)
    jne .mmap_next
    cmp dword [ecx + 20], 1             ; type: available RAM
    je .mmap_found
.mmap_next:
    add ecx, [ecx]                      ; size does not count itself
    add ecx, 4
    jmp .mmap_loop
.mmap_found:
    mov esi, msg_mmap_ok
    call puts

    mov esi, msg_ok
    call puts
    mov al, 0
    out DEBUG_EXIT, al
    hlt

fail:
    push esi
    mov esi, msg_fail
    call puts
    pop esi
    call puts
    call newline
    mov al, 1
    out DEBUG_EXIT, al
    hlt

newline:
    mov al, 10
putc:
    push edx
    mov dx, 0xe9
    out dx, al
    pop edx
    ret

puts:
    push eax
.next:
    lodsb
    test al, al
    jz .done
    call putc
    jmp .next
.done:
    pop eax
    ret

DEBUG_EXIT equ 0xf4
msg_magic:   db "EAX is not 0x2BADB002", 0
msg_bss:     db "bss not zeroed", 0
msg_mem:     db "mem_upper", 0
msg_cmdline: db "cmdline: ", 0
msg_mods:    db "mods", 0
msg_module:  db "module: ", 0
msg_data:    db "data: ", 0
msg_mmap:    db "mmap", 0
msg_mmap_ok: db "mmap: RAM at 1 MiB", 10, 0
msg_ok:      db "MB OK", 10, 0
msg_fail:    db "MB FAIL: ", 0

file_end:
absolute file_end
alignb 4
bss_marker: resd 1
            resb 4096
stack_top:
bss_end:
"#;

/// The module the kernel is given, and what it prints of it.
const MODULE_DATA: &[u8] = b"hello from a module\n";

/// Assemble [`MB_KERNEL`] into `name`.bin; None when nasm is missing.
fn assemble(name: &str, elf: bool) -> Option<(PathBuf, Vec<u8>)> {
    if !tool_available("nasm", "-v") {
        return None;
    }
    let dir = out_dir("boot_loaders");
    let src = dir.join(format!("{name}.asm"));
    let bin = dir.join(format!("{name}.bin"));
    std::fs::write(&src, MB_KERNEL).expect("write the kernel source");
    let mem_upper = (MEM_MB - 1) * 1024;
    let mut cmd = Command::new("nasm");
    cmd.args(["-f", "bin"]).arg(format!("-DMEM_UPPER={mem_upper}"));
    if elf {
        cmd.arg("-DELF");
    }
    let out = cmd.arg(&src).arg("-o").arg(&bin).output().expect("run nasm");
    assert!(out.status.success(), "nasm failed on {}:\n{}", src.display(), String::from_utf8_lossy(&out.stderr));
    let img = std::fs::read(&bin).expect("read the assembled kernel");
    Some((bin, img))
}

/// Boot the kernel on v386: its debug-console output and why it stopped.
fn run_v386(img: &[u8], cmdline: &str, module_cmdline: &str) -> (String, StopReason) {
    let cfg = MachineConfig { mem_mb: MEM_MB, debug_exit_port: Some(DEBUG_EXIT_PORT), ..Default::default() };
    let mut m = Machine::new(&cfg).expect("create the machine");
    // Garbage above 1 MiB, so the kernel's check that its bss is zero means something.
    m.bus.ram[0x10_0000..].fill(0xcc);
    let modules = [Module { data: MODULE_DATA, cmdline: module_cmdline }];
    let st = load_multiboot(&mut m.bus.ram, img, cmdline, &modules, &PC_RESERVED).expect("load the kernel");
    st.apply(&mut m.cpu);
    let stop = m.run(1_000_000);
    // mem_upper: all of RAM above 1 MiB, in KiB.
    let mem_upper = st.regs[v386::cpu::EBX] as usize + 8;
    assert_eq!(m.bus.ram[mem_upper..mem_upper + 4], ((MEM_MB - 1) * 1024).to_le_bytes());
    (String::from_utf8_lossy(&m.take_debugcon()).into_owned(), stop)
}

/// Boot the kernel on QEMU with `-kernel`: its debug-console output and exit status; None
/// when QEMU is missing.
fn run_qemu(
    name: &str,
    kernel: &Path,
    append: &str,
    module: &Path,
    module_args: &str,
) -> Option<(String, Option<i32>)> {
    if !tool_available("qemu-system-i386", "--version") {
        return None;
    }
    let log = out_dir("boot_loaders").join(format!("{name}.qemu.log"));
    let _ = std::fs::remove_file(&log);
    let mut child = Command::new("qemu-system-i386")
        .args(["-cpu", "pentium2", "-m", &MEM_MB.to_string(), "-display", "none", "-nodefaults"])
        .arg("-kernel")
        .arg(kernel)
        .args(["-append", append])
        .arg("-initrd")
        .arg(format!("{} {module_args}", module.display()))
        .arg("-debugcon")
        .arg(format!("file:{}", log.display()))
        .args(["-device", &format!("isa-debug-exit,iobase={DEBUG_EXIT_PORT:#x},iosize=4")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start qemu-system-i386");
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for QEMU") {
            break Some(status);
        }
        if start.elapsed() > QEMU_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let code = status.and_then(|s| s.code());
    if code != Some(1) {
        let mut err = String::new();
        if let Some(mut e) = child.stderr.take() {
            use std::io::Read;
            let _ = e.read_to_string(&mut err);
        }
        eprintln!("QEMU exited with {status:?}: {err}");
    }
    Some((String::from_utf8_lossy(&std::fs::read(&log).unwrap_or_default()).into_owned(), code))
}

fn check_multiboot(name: &str, elf: bool) {
    let Some((path, img)) = assemble(name, elf) else {
        skip("nasm is not installed");
        return;
    };
    let module_path = out_dir("boot_loaders").join(format!("{name}.module"));
    std::fs::write(&module_path, MODULE_DATA).expect("write the module");
    // The command lines as QEMU builds them: the kernel's file name first, and the whole
    // `-initrd` item for the module.
    let append = "console=e9 verbose";
    let cmdline = format!("{} {append}", path.display());
    let module_cmdline = format!("{} first-module", module_path.display());
    let expected = format!(
        "cmdline: {cmdline}\nmodule: {module_cmdline}\ndata: {}mmap: RAM at 1 MiB\nMB OK\n",
        String::from_utf8_lossy(MODULE_DATA)
    );

    let (out, stop) = run_v386(&img, &cmdline, &module_cmdline);
    eprintln!("--- v386 output ({stop:?}) ---\n{out}--- end ---");
    assert_eq!(stop, StopReason::DebugExit(0), "{name} failed on v386:\n{out}");
    assert_eq!(out, expected);

    let Some((qemu_out, code)) = run_qemu(name, &path, append, &module_path, "first-module") else {
        skip("qemu-system-i386 is not installed");
        return;
    };
    assert_eq!(code, Some(1), "{name} on QEMU: expected debug-exit value 0, output:\n{qemu_out}");
    assert_eq!(out, qemu_out, "{name}: v386 (left) and QEMU (right) printed different things");
}

/// A Multiboot kernel using the a.out kludge (header flags bit 16).
#[test]
fn multiboot_aout_kludge_kernel() {
    check_multiboot("mb_aout", false);
}

/// The same kernel as an ELF32 executable.
#[test]
fn multiboot_elf_kernel() {
    check_multiboot("mb_elf", true);
}

/// A file from scripts/images.sh's output, if it has been built.
fn cached_image(name: &str) -> Option<Vec<u8>> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(".cache").join("images").join(name);
    match std::fs::read(&path) {
        Ok(b) => Some(b),
        Err(_) => {
            eprintln!("SKIPPED: {} is missing (run scripts/images.sh)", path.display());
            None
        }
    }
}

/// memtest86+ (a bzImage with a 32-bit entry) started by the Linux loader draws its screen
/// on the VGA text console, sized by the zero page's screen_info, and shows the RAM it found
/// in the zero page's e820 map.
#[test]
fn linux_loader_boots_memtest86() {
    let Some(kernel) = cached_image("memtest86+.bin") else { return };
    let cfg = MachineConfig { mem_mb: 128, ..Default::default() };
    let mut m = Machine::new(&cfg).expect("create the machine");
    let st = load_linux(&mut m.bus.ram, &kernel, None, "", &PC_RESERVED).expect("load memtest86+");
    st.apply(&mut m.cpu);
    let mut screen = String::new();
    for _ in 0..100 {
        let stop = m.run(5_000_000);
        screen = m.vga_text().to_text();
        assert_eq!(stop, StopReason::BudgetSpent, "memtest86+ stopped; screen:\n{screen}");
        if screen.contains("128MB") {
            break;
        }
    }
    eprintln!("--- VGA ---\n{screen}\n--- end ---");
    assert!(screen.contains("Memtest86+"), "no memtest86+ banner");
    assert!(screen.contains("Memory  :  128MB"), "memtest86+ did not find 128 MB");
}

/// iPXE's `.lkrn` has a setup header but no 32-bit entry (code32_start 0): refused by name.
#[test]
fn linux_loader_refuses_ipxe_lkrn() {
    let Some(kernel) = cached_image("ipxe.lkrn") else { return };
    let mut ram = vec![0u8; 32 << 20];
    assert_eq!(load_linux(&mut ram, &kernel, None, "", &[]), Err(BootError::No32BitEntry { code32_start: 0 }));
}

/// Debian's kernel with the initramfs: the zero page describes both, and the decompressor
/// (silent in this build) runs and moves itself to the address it runs at, above 16 MiB.
#[test]
fn linux_loader_starts_debian_kernel() {
    let Some(kernel) = cached_image("vmlinuz") else { return };
    let Some(initrd) = cached_image("initramfs.cpio.gz") else { return };
    let h = SetupHeader::parse(&kernel).expect("parse vmlinuz");
    let (m, _) = start_debian_kernel(&kernel, &initrd, 2_000_000);
    let zp = ZERO_PAGE_ADDR as usize;
    let rd32 = |a: usize| u32::from_le_bytes(m.bus.ram[a..a + 4].try_into().unwrap());
    let image = rd32(zp + 0x218) as usize;
    assert_eq!(rd32(zp + 0x21c) as usize, initrd.len());
    assert_eq!(image % 4096, 0);
    assert!(image + initrd.len() <= (128 << 20) && image >= (h.pref_address as usize + h.init_size as usize));
    assert_eq!(m.bus.ram[zp + 0x1e8], 6, "e820 entries");
    assert!(m.cpu.eip as u64 >= h.pref_address, "EIP {:#x} is not in the relocated decompressor", m.cpu.eip);
}

/// Load Debian's kernel into a 128 MiB machine and run it for `budget` instructions: the
/// machine and what the kernel printed on COM1.
fn start_debian_kernel(kernel: &[u8], initrd: &[u8], budget: u64) -> (Machine, String) {
    let cfg = MachineConfig { mem_mb: 128, ..Default::default() };
    let mut m = Machine::new(&cfg).expect("create the machine");
    let cmdline = "earlyprintk=serial,ttyS0,115200 console=ttyS0,115200";
    let st = load_linux(&mut m.bus.ram, kernel, Some(initrd), cmdline, &PC_RESERVED).expect("load vmlinuz");
    st.apply(&mut m.cpu);
    let mut serial = Vec::new();
    let mut left = budget;
    while left > 0 {
        let n = left.min(10_000_000);
        let stop = m.run(n);
        left -= n;
        serial.extend(m.take_serial());
        assert_eq!(stop, StopReason::BudgetSpent, "the kernel stopped:\n{}", String::from_utf8_lossy(&serial));
        if serial.windows(27).any(|w| w == b"Kernel command line: early") {
            break;
        }
    }
    (m, String::from_utf8_lossy(&serial).into_owned())
}

/// The whole way to the kernel proper (a few billion instructions, so not run by default:
/// `cargo test --release --test boot_loaders -- --ignored`): Linux prints the e820 map and
/// the command line the zero page gave it.
#[test]
#[ignore]
fn linux_loader_boots_debian_kernel_to_its_banner() {
    let Some(kernel) = cached_image("vmlinuz") else { return };
    let Some(initrd) = cached_image("initramfs.cpio.gz") else { return };
    let (_, serial) = start_debian_kernel(&kernel, &initrd, 5_000_000_000);
    eprintln!("--- serial ---\n{serial}\n--- end ---");
    assert!(serial.contains("Linux version"));
    assert!(serial.contains("BIOS-e820: [mem 0x0000000000100000-0x0000000007ffffff] usable"));
    assert!(serial.contains("Kernel command line: earlyprintk=serial,ttyS0,115200 console=ttyS0,115200"));
}
