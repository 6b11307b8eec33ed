//! The differential test against QEMU: see `tests/diff/README.md`.
#![allow(dead_code)]

pub mod asm;
pub mod gen;
pub mod masks;
pub mod rng;
pub mod run;
pub mod x87;

use gen::{Case, Mode, BLOB_LIMIT, BLOB_SZ, CODE_BASE, CODE_LIMIT};
use run::Dump;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Mutex;
use v386::cpu::decode::table::{Class, FORMS};

pub struct Config {
    pub seed: u64,
    pub cases_per_form: u32,
    pub max_cases_per_image: usize,
}

impl Config {
    pub fn from_env() -> Self {
        let seed = std::env::var("V386_DIFF_SEED").ok().and_then(|s| parse_u64(&s)).unwrap_or(0x386_d1ff);
        let cases_per_form = std::env::var("V386_DIFF_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(12);
        Config { seed, cases_per_form, max_cases_per_image: 400 }
    }
}

fn parse_u64(s: &str) -> Option<u64> {
    if let Some(h) = s.strip_prefix("0x") {
        u64::from_str_radix(h, 16).ok()
    } else {
        s.parse().ok()
    }
}

pub struct Image {
    pub mode: Mode,
    pub index: usize,
    pub cases: Vec<Case>,
}

/// Generate all cases, packed into images.
pub fn generate(cfg: &Config) -> (Vec<Image>, Vec<(usize, Mode)>) {
    let mut images = Vec::new();
    let mut failed = Vec::new();
    // Two passes per mode: the x87 forms come in images of their own, from a random
    // stream of their own, so adding them left the other images (and QEMU's cached
    // answers for them) as they were.
    for ((mi, &mode), pass) in Mode::ALL.iter().enumerate().flat_map(|m| [(m, false), (m, true)]) {
        let salt = if pass { 0x87_0000_0087 } else { 0 };
        let mut rng = rng::Rng::new(cfg.seed ^ ((mi as u64 + 1) << 40) ^ salt);
        let mut cur: Vec<Case> = Vec::new();
        let mut code_at = CODE_BASE;
        for (fi, form) in FORMS.iter().enumerate() {
            if gen::left_out(form).is_some() || (form.class == Class::Fpu) != pass {
                continue;
            }
            for _ in 0..cfg.cases_per_form {
                // start a new image when this one is full
                let full = cur.len() >= cfg.max_cases_per_image
                    || code_at + if pass { 256 } else { 128 } > CODE_LIMIT
                    || gen::BLOB_BASE as usize + (cur.len() + 1) * BLOB_SZ > BLOB_LIMIT as usize;
                if full {
                    let n = images.len();
                    images.push(Image { mode, index: n, cases: std::mem::take(&mut cur) });
                    code_at = CODE_BASE;
                }
                match gen::gen_case(fi, mode, code_at, cur.len() as u16, &mut rng) {
                    Some(c) => {
                        code_at += c.code().len() as u32;
                        cur.push(c);
                    }
                    None => failed.push((fi, mode)),
                }
            }
        }
        if !cur.is_empty() {
            let n = images.len();
            images.push(Image { mode, index: n, cases: cur });
        }
    }
    (images, failed)
}

#[derive(Default, Clone, Copy)]
pub struct Cell {
    pub cases: u32,
    pub faults: u32,
    pub mismatches: u32,
}

pub struct Mismatch {
    pub case: Case,
    pub image: usize,
    pub text: String,
}

pub struct Outcome {
    pub coverage: BTreeMap<(usize, Mode), Cell>,
    pub mismatches: Vec<Mismatch>,
    pub harness_errors: Vec<String>,
    pub qemu_cached: usize,
    pub qemu_ran: usize,
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect::<Vec<_>>().join(" ")
}

pub fn describe(c: &Case) -> String {
    let f = c.form();
    let op = if f.opcode >= 0x100 { format!("0f {:02x}", f.opcode & 0xff) } else { format!("{:02x}", f.opcode) };
    let grp = f.group_reg.map(|g| format!(" /{g}")).unwrap_or_default();
    format!("{op}{grp} {} {:?}", f.mnemonic, f.operands)
}

fn disasm(c: &Case) -> String {
    match v386::cpu::decode::decode_slice(&c.insn, c.mode.code32()) {
        Ok(i) => format!(
            "{} (len {}, o{} a{}, seg {}, rep {:?}, lock {}, modrm {:02x}, mem {}, disp {:#x}, imm {:#x})",
            i.form().mnemonic,
            i.len,
            if i.op32 { 32 } else { 16 },
            if i.ad32 { 32 } else { 16 },
            i.seg,
            i.rep,
            i.lock,
            i.modrm,
            i.is_mem,
            i.disp,
            i.imm
        ),
        Err(e) => format!("decoder: {e:?}"),
    }
}

const REGN: [&str; 8] = ["eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi"];
const SEGN: [&str; 6] = ["es", "cs", "ss", "ds", "fs", "gs"];

/// Where QEMU and the SDM disagree, the expected dump is corrected to the SDM here (see
/// README "QEMU vs SDM"; the generator avoids the other cases).
fn sdm_fixups(c: &Case, d: &mut Dump) {
    // RCL/RCR on memory whose store faults (#PF on a read-only page, vector 14, error code
    // W set): QEMU's rotate helpers update EFLAGS before the store faults. A fault leaves
    // the state as it was before the instruction (SDM Vol. 3A §6.5 "Faults"; Bochs does so),
    // so the expected arithmetic flags, in the dump and in the pushed frame, are the
    // case's input flags.
    let op = c.form().opcode;
    let rcx = matches!(op, 0xc0 | 0xc1 | 0xd0..=0xd3) && matches!(c.form().group_reg, Some(2) | Some(3));
    if rcx && d.vector == 14 && c.mode != Mode::Real {
        let arith = 0x8d5;
        let fix = |v: u32| (v & !arith) | (c.eflags & arith);
        let sp = d.regs[4];
        let off = sp.wrapping_sub(gen::SCR) as usize;
        if off + 16 <= 128 && d.mem[off] & 2 != 0 {
            d.eflags = fix(d.eflags);
            let fl = u32::from_le_bytes(d.mem[off + 12..off + 16].try_into().unwrap());
            d.mem[off + 12..off + 16].copy_from_slice(&fix(fl).to_le_bytes());
        }
    }
    // INT1 (F1): SDM Vol. 2 "INT n/INTO/INT3/INT1" — a debug trap (#DB, vector 1) whose
    // saved EIP is the next instruction; QEMU 7.2 raises #UD (vector 6, EIP of the F1).
    if c.form().opcode == 0xf1 && d.vector == 6 {
        d.vector = 1;
        let sp = if c.mode == Mode::Real { d.regs[4] & 0xffff } else { d.regs[4] };
        let off = sp.wrapping_sub(gen::SCR) as usize;
        let n = if c.mode == Mode::Real { 2 } else { 4 };
        if off + n <= 128 {
            let mut v = 0u32;
            for k in 0..n {
                v |= (d.mem[off + k] as u32) << (8 * k);
            }
            v = v.wrapping_add(c.insn.len() as u32);
            for k in 0..n {
                d.mem[off + k] = (v >> (8 * k)) as u8;
            }
        }
    }
}

/// Compare one case: `None` when equal under the mask.
pub fn compare(c: &Case, exp: &Dump, got: &Dump) -> Option<String> {
    let m = &c.mask;
    let mut s = String::new();
    if exp.vector != got.vector {
        let v = |x: u8| if x == 0xff { "none".to_string() } else { format!("#{x}") };
        let _ = writeln!(s, "    exception/vector: expected {} got {}", v(exp.vector), v(got.vector));
    }
    for (r, name) in REGN.iter().enumerate() {
        let keep = !m.regs[r];
        if exp.regs[r] & keep != got.regs[r] & keep {
            let _ = writeln!(s, "    {name}: expected {:08x} got {:08x}", exp.regs[r], got.regs[r]);
        }
    }
    let keep = !m.flags;
    if exp.eflags & keep != got.eflags & keep {
        let _ = writeln!(
            s,
            "    eflags: expected {:08x} got {:08x} (differ {:08x}, masked {:08x})",
            exp.eflags,
            got.eflags,
            (exp.eflags ^ got.eflags) & keep,
            m.flags
        );
    }
    for (k, name) in SEGN.iter().enumerate() {
        if exp.segs[k] != got.segs[k] {
            let _ = writeln!(s, "    {name}: expected {:04x} got {:04x}", exp.segs[k], got.segs[k]);
        }
    }
    for (k, n) in [(0usize, 0), (1, 2), (2, 3), (3, 4)] {
        if exp.cr[k] != got.cr[k] {
            let _ = writeln!(s, "    cr{n}: expected {:08x} got {:08x}", exp.cr[k], got.cr[k]);
        }
    }
    if exp.gdtr != got.gdtr {
        let _ = writeln!(s, "    gdtr: expected {} got {}", hex(&exp.gdtr), hex(&got.gdtr));
    }
    if exp.idtr != got.idtr {
        let _ = writeln!(s, "    idtr: expected {} got {}", hex(&exp.idtr), hex(&got.idtr));
    }
    if exp.tr != got.tr || exp.ldtr != got.ldtr {
        let _ =
            writeln!(s, "    tr/ldtr: expected {:04x}/{:04x} got {:04x}/{:04x}", exp.tr, exp.ldtr, got.tr, got.ldtr);
    }
    if exp.pte != got.pte {
        let _ = writeln!(s, "    scratch PTE: expected {:08x} got {:08x}", exp.pte, got.pte);
    }
    let mut bad = Vec::new();
    for k in 0..128 {
        if exp.mem[k] != got.mem[k] && !m.mem.contains(&k) {
            bad.push(k);
        }
    }
    if !bad.is_empty() {
        let _ = writeln!(s, "    memory differs at {} byte(s):", bad.len());
        let mut lines = std::collections::BTreeSet::new();
        for k in bad {
            lines.insert(k / 16);
        }
        for l in lines {
            let a = gen::SCR as usize + l * 16;
            let _ = writeln!(
                s,
                "      {a:05x} expected {}\n            got      {}",
                hex(&exp.mem[l * 16..l * 16 + 16]),
                hex(&got.mem[l * 16..l * 16 + 16])
            );
        }
    }
    if s.is_empty() {
        None
    } else {
        Some(s)
    }
}

fn case_header(c: &Case, img: usize) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "  [{}] image {img} case {}: {}", c.mode.name(), c.id, describe(c));
    let _ = writeln!(s, "    bytes {}  at {:#x}  = {}", hex(&c.insn), c.entry, disasm(c));
    let _ = write!(s, "    in:");
    for (name, v) in REGN.iter().zip(c.regs) {
        let _ = write!(s, " {name}={v:08x}");
    }
    let _ = writeln!(s, " eflags={:08x} cr0={:08x} es/ds/fs/gs/ss={:04x?}", c.eflags, c.cr0, c.segs);
    if !c.data.is_empty() {
        let _ = writeln!(s, "    x87 control word and ST(n-1)..ST(0) as loaded: {}", hex(&c.data));
        let _ = writeln!(s, "    area in: {}", hex(&c.mem[..64]));
    }
    if !c.mask.rules.is_empty() {
        let _ = writeln!(s, "    masked: {} (flags {:04x})", c.mask.rules.join(", "), c.mask.flags);
    }
    s
}

/// Run everything.
pub fn run_all(cfg: &Config, images: &[Image]) -> Outcome {
    let work_root = run::root().join("target/diff-work");
    let out = Mutex::new(Outcome {
        coverage: BTreeMap::new(),
        mismatches: Vec::new(),
        harness_errors: Vec::new(),
        qemu_cached: 0,
        qemu_ran: 0,
    });
    let next = Mutex::new(0usize);
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2).min(8);
    let _ = cfg;
    std::thread::scope(|sc| {
        for _ in 0..threads {
            sc.spawn(|| loop {
                let i = {
                    let mut n = next.lock().unwrap();
                    let i = *n;
                    *n += 1;
                    i
                };
                if i >= images.len() {
                    break;
                }
                let res = run_image(&images[i], &work_root.join(format!("{}-{}", std::process::id(), i)));
                let mut o = out.lock().unwrap();
                match res {
                    Ok((cells, mism, cached)) => {
                        for (k, c) in cells {
                            let e = o.coverage.entry(k).or_default();
                            e.cases += c.cases;
                            e.faults += c.faults;
                            e.mismatches += c.mismatches;
                        }
                        o.mismatches.extend(mism);
                        if cached {
                            o.qemu_cached += 1
                        } else {
                            o.qemu_ran += 1
                        }
                    }
                    Err(e) => o.harness_errors.push(format!("image {i} ({}): {e}", images[i].mode.name())),
                }
            });
        }
    });
    let mut o = out.into_inner().unwrap();
    o.mismatches.sort_by_key(|m| (m.case.form, m.case.mode, m.image, m.case.id));
    o
}

type ImageResult = (Vec<((usize, Mode), Cell)>, Vec<Mismatch>, bool);

fn run_image(img: &Image, work: &PathBuf) -> Result<ImageResult, String> {
    let bytes = run::build_image(img.mode, &img.cases, work)?;
    let (qout, cached) = run::qemu(&bytes, work).map_err(|(e, out)| {
        let n = out.len() / run::DUMP_LEN;
        match img.cases.get(n) {
            Some(c) => format!("{e}; at case:\n{}", case_header(c, img.index)),
            None => e,
        }
    })?;
    let (qd, qerr) = run::parse(&qout);
    if let Some(e) = qerr {
        return Err(format!("QEMU's dump is malformed: {e}"));
    }
    if qd.len() != img.cases.len() {
        return Err(format!("QEMU dumped {} of {} cases", qd.len(), img.cases.len()));
    }
    for (k, d) in qd.iter().enumerate() {
        if d.id as usize != k {
            return Err(format!("QEMU's dump {k} has case id {}", d.id));
        }
    }
    if std::env::var_os("V386_DIFF_KEEP").is_none() {
        let _ = std::fs::remove_dir_all(work);
    }
    let bytes = run::v386_image(&bytes, &img.cases);
    // v386: rerun from the next case whenever it stops early.
    let mut got: Vec<Option<Dump>> = vec![None; img.cases.len()];
    let mut why: Vec<String> = vec![String::new(); img.cases.len()];
    let mut first = 0;
    let mut restarts = 0;
    while first < img.cases.len() && restarts < 64 {
        let budget = 20_000_000;
        let (out, stop) = run::v386(&bytes, first, budget);
        let (d, perr) = run::parse(&out);
        let mut expect = first;
        for x in d {
            if x.id as usize != expect {
                break;
            }
            got[expect] = Some(x);
            expect += 1;
        }
        if expect >= img.cases.len() {
            break;
        }
        why[expect] = format!("v386 stopped ({stop}){}", perr.map(|e| format!("; {e}")).unwrap_or_default());
        first = expect + 1;
        restarts += 1;
    }
    let mut cells: BTreeMap<(usize, Mode), Cell> = BTreeMap::new();
    let mut mism = Vec::new();
    for (k, c) in img.cases.iter().enumerate() {
        let cell = cells.entry((c.form, c.mode)).or_default();
        cell.cases += 1;
        let mut exp = qd[k].clone();
        sdm_fixups(c, &mut exp);
        let mut got_k = got[k].clone();
        if let Some(g) = got_k.as_mut() {
            // x87 state images: what is ignored, in both dumps (x87.rs `normalize`).
            let real = c.mode == Mode::Real;
            let (e0, g0) = (exp.mem, g.mem);
            x87::normalize(&c.x87_images, real, &mut exp.mem, &g0);
            x87::normalize(&c.x87_images, real, &mut g.mem, &e0);
        }
        if exp.vector != 0xff {
            cell.faults += 1;
        }
        let diff = match &got_k {
            Some(g) => compare(c, &exp, g),
            None => Some(format!(
                "    no dump from v386: {}\n",
                if why[k].is_empty() { "skipped after too many restarts".to_string() } else { why[k].clone() }
            )),
        };
        if let Some(d) = diff {
            cell.mismatches += 1;
            mism.push(Mismatch {
                case: c.clone(),
                image: img.index,
                text: format!("{}{}", case_header(c, img.index), d),
            });
        }
    }
    Ok((cells.into_iter().collect(), mism, cached))
}

pub fn coverage_table(o: &Outcome, failed: &[(usize, Mode)]) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "Coverage: opcode forms x modes (cases / of which faulted / mismatches)");
    let _ = writeln!(s, "{:<44} {:>16} {:>16} {:>16}", "form", "real", "pm32", "pm32+pg");
    let mut tot = [Cell::default(); 3];
    let mut left = Vec::new();
    for (fi, f) in FORMS.iter().enumerate() {
        if let Some(why) = gen::left_out(f) {
            left.push((fi, why));
            continue;
        }
        let mut line = format!("{:<44}", truncate(&format!("{} {}", fi, short(fi)), 44));
        for (mi, m) in Mode::ALL.iter().enumerate() {
            let c = o.coverage.get(&(fi, *m)).copied().unwrap_or_default();
            tot[mi].cases += c.cases;
            tot[mi].faults += c.faults;
            tot[mi].mismatches += c.mismatches;
            let cell =
                if c.cases == 0 { "-".to_string() } else { format!("{}/{}/{}", c.cases, c.faults, c.mismatches) };
            let _ = write!(line, " {:>16}", cell);
        }
        if let Some(p) = gen::partly_masked(f) {
            let _ = write!(line, "  ({p})");
        }
        let _ = writeln!(s, "{line}");
    }
    let _ = writeln!(
        s,
        "{:<44} {:>16} {:>16} {:>16}",
        "TOTAL",
        format!("{}/{}/{}", tot[0].cases, tot[0].faults, tot[0].mismatches),
        format!("{}/{}/{}", tot[1].cases, tot[1].faults, tot[1].mismatches),
        format!("{}/{}/{}", tot[2].cases, tot[2].faults, tot[2].mismatches)
    );
    let _ = writeln!(s, "\nForms left out:");
    for (fi, why) in left {
        let _ = writeln!(s, "  {:<40} {}", short(fi), why);
    }
    if !failed.is_empty() {
        let _ = writeln!(s, "\nGenerator gave up on (form, mode):");
        for (fi, m) in failed {
            let _ = writeln!(s, "  {} {}", short(*fi), m.name());
        }
    }
    s
}

fn truncate(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

pub fn short(fi: usize) -> String {
    let f = &FORMS[fi];
    let op = if f.opcode >= 0x100 { format!("0f{:02x}", f.opcode & 0xff) } else { format!("{:02x}", f.opcode) };
    let grp = f.group_reg.map(|g| format!("/{g}")).unwrap_or_default();
    let ops: Vec<String> = f.operands.iter().map(|o| format!("{o:?}").replace("Reg(", "").replace(')', "")).collect();
    format!("{op}{grp} {} {}", f.mnemonic, ops.join(","))
}
