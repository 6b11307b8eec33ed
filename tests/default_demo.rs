//! The page's default demo (`www/demo.json`, the config `scripts/run.sh` serves and the
//! VMs page boots), read here as the page reads it (each VM under its `technique`) and run
//! under `v386::vmm::Vmm` with the page's deterministic switch on: two runs give identical exit logs, record for record,
//! and the same screens, serial output and counters.
//!
//! Image URLs `/images/NAME` are `.cache/images/NAME` (what scripts/serve.mjs serves; the
//! nasm-built ones are assembled from tests/guests/ when missing); a VM marked `optional`
//! whose image is missing is left out, as the page leaves it out.

mod common;
use common::*;

use serde_json::{Map, Value};
use v386::machine::MachineSpec;
use v386::vmm::{Technique, Vmm, VmmConfig};

/// Machine instructions per run (idle time counts): Linux is well into its boot, the
/// demo guests through several seconds of their guest time.
const BUDGET: u64 = 400_000_000;

const IMAGE_FIELDS: [&str; 7] = ["bios", "vgaBios", "fda", "hda", "cdrom", "kernel", "initrd"];

/// `.cache/images/NAME`; the images scripts/build-web.sh assembles from tests/guests/
/// (the demo floppy and kernels) are assembled here when it has not run yet.
fn image(file: &str) -> Option<Vec<u8>> {
    std::fs::read(images().join(file)).ok().or_else(|| {
        let stem = file.strip_suffix(".img")?;
        guests_dir().join(format!("{stem}.asm")).exists().then(|| assemble_guest(stem, "default_demo")).flatten()
    })
}

/// The VMs of www/demo.json as (name, MachineSpec, technique), images read from
/// .cache/images.
fn demo_vms() -> Option<Vec<(String, MachineSpec, Technique)>> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("www").join("demo.json");
    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("www/demo.json")).expect("valid JSON");
    let mut out = Vec::new();
    for (i, vm) in json["vms"].as_array().expect("vms: an array").iter().enumerate() {
        let mut fields: Map<String, Value> = vm.as_object().expect("a VM is an object").clone();
        let name = fields.remove("name").and_then(|n| n.as_str().map(String::from)).unwrap_or(format!("vm{}", i + 1));
        let optional = fields.remove("optional").and_then(|o| o.as_bool()).unwrap_or(false);
        // As the page's Vmm reads it (src/web/vmm.rs): a Technique key, V386 when absent.
        let technique = match fields.remove("technique") {
            Some(t) => {
                let key = t.as_str().unwrap_or_else(|| panic!("{name}: technique {t} is not a string"));
                Technique::from_key(key).unwrap_or_else(|| panic!("{name}: unknown technique '{key}'"))
            }
            None => Technique::default(),
        };
        let mut media = Vec::new();
        for f in IMAGE_FIELDS {
            if let Some(url) = fields.remove(f) {
                let url = url.as_str().expect("an image is a URL").to_string();
                let file =
                    url.strip_prefix("/images/").unwrap_or_else(|| panic!("{name}.{f}: {url} is not under /images/"));
                media.push((f, image(file), file.to_string()));
            }
        }
        if let Some((_, _, file)) = media.iter().find(|(_, bytes, _)| bytes.is_none()) {
            if optional {
                println!("{name}: left out ({file} is not in .cache/images), as the page does");
                continue;
            }
            read_image(file)?; // skips, or fails under V386_REQUIRE_QEMU
        }
        // The page's switch: deterministic time (a VM's own "clock" would win; none sets one).
        assert!(!fields.contains_key("clock"), "{name} sets its own clock");
        let mut spec: MachineSpec = serde_json::from_value(Value::Object(fields)).expect("a machine's fields");
        for (f, bytes, _) in media {
            let slot = match f {
                "bios" => &mut spec.bios,
                "vgaBios" => &mut spec.vga_bios,
                "fda" => &mut spec.fda,
                "hda" => &mut spec.hda,
                "cdrom" => &mut spec.cdrom,
                "kernel" => &mut spec.kernel,
                _ => &mut spec.initrd,
            };
            *slot = bytes;
        }
        out.push((name, spec, technique));
    }
    Some(out)
}

#[test]
fn two_deterministic_runs_of_the_default_demo_give_identical_exit_logs() {
    let Some(vms) = demo_vms() else { return };
    assert!(vms.len() >= 2, "the demo has its two small guests at least");
    let run = || {
        let mut vmm = Vmm::new(VmmConfig::default());
        for (name, spec, technique) in &vms {
            vmm.add_vm_as(name, spec.clone(), *technique).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        let t = std::time::Instant::now();
        vmm.run(BUDGET);
        let secs = t.elapsed().as_secs_f64();
        let log: Vec<_> = vmm.log.iter().copied().collect();
        let out: Vec<_> = vmm
            .vms
            .iter_mut()
            .map(|v| {
                (
                    v.name.clone(),
                    v.board.com1.take_output(),
                    v.board.vga.text_snapshot().to_text(),
                    v.counters.by_reason,
                )
            })
            .collect();
        (log, vmm.log.total, out, secs)
    };
    let (log1, n1, out1, s1) = run();
    let (log2, n2, out2, s2) = run();
    for (name, serial, _, by_reason) in &out1 {
        let exits: u64 = by_reason.iter().sum();
        println!("{name}: {exits} exits, {} bytes on COM1", serial.len());
    }
    println!("{n1} exits in all; runs took {s1:.1} s and {s2:.1} s");
    assert!(n1 > 10_000, "{n1} exits");
    assert_eq!(n1, n2, "exit totals");
    let first_diff = log1.iter().zip(&log2).position(|(a, b)| a != b);
    assert!(first_diff.is_none(), "the exit logs differ first at record {first_diff:?}");
    assert!(out1 == out2, "the screens, serial output or counters differ");
    // The sensitive demo trap-and-emulated on the classic x86 reads the monitor's GDT.
    for ((name, _, t), (_, _, screen, _)) in vms.iter().zip(&out1) {
        if *t == Technique::TrapAndEmulate {
            assert!(screen.contains("SGDT    base FFC00000"), "{name}:\n{screen}");
        }
    }
}
