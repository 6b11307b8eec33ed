//! The technique lab for the browser (`www/compare.html`, run in `www/compare-worker.js`):
//! the columns of `crate::lab` one technique at a time, so the page can fill the table
//! column by column while the next one runs. Everything measured and every error comes
//! from `crate::lab`; this file only converts to plain JS objects.
//!
//! - `labTechniques()` → `[{number, name}]`, the six columns in order.
//! - `labBenches()` → `["syscall", …]`, the eight rows in order (seven nanobenchmarks, then forkwait).
//! - `labDefaults()` → `{iterations, exitCost, mmioCost}`, the CLI's defaults.
//! - `labRun(technique, native, paravirtual, iterations, exitCost)` → one column:
//!   `{ok: true, technique, name, iterations, exitCost, serial, rows: [{bench,
//!   instructions, exits, exitsByReason: {NAME: n}, mmio, cycles}], wrong: ["SGDT base:
//!   got …", …], monitor: {traps, reflected, shadowFills, tracedWrites, shadowResets,
//!   scans, breakpoints, rescans} | null}` with every count the
//!   total over `iterations` iterations (the page divides), `exits` the charged ones
//!   (`Cost::charged_exits`), `exitsByReason` every non-zero reason (scheduling exits
//!   included, as the CLI's exits table shows them); or `{ok: false, technique, name,
//!   error}` with the `LabError`'s text.

use crate::cpu::v386::ExitReason;
use crate::lab::{self, Bench, CostModel, Images, LabConfig, Technique, DEFAULT_EXIT_CYCLES};
use alloc::collections::BTreeMap;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use serde::Serialize;
use wasm_bindgen::prelude::*;

#[derive(Serialize)]
struct TechniqueInfo {
    number: u8,
    name: &'static str,
}

/// The software monitor's counts over the run (columns 2–4).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct MonitorWork {
    traps: u64,
    reflected: u64,
    shadow_fills: u64,
    traced_writes: u64,
    shadow_resets: u64,
    scans: u64,
    breakpoints: u64,
    rescans: u64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Row {
    bench: &'static str,
    instructions: u64,
    exits: u64,
    exits_by_reason: BTreeMap<&'static str, u64>,
    mmio: u64,
    cycles: u64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Done {
    ok: bool,
    technique: u8,
    name: &'static str,
    iterations: u32,
    exit_cost: u64,
    serial: String,
    rows: Vec<Row>,
    /// The wrong results the guest's probe saw (column 2's list).
    wrong: Vec<String>,
    monitor: Option<MonitorWork>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Failed {
    ok: bool,
    technique: u8,
    name: String,
    error: String,
}

/// Plain objects (maps too), numbers as numbers: what the page can read and post on.
fn to_js<T: Serialize>(v: &T) -> JsValue {
    let s = serde_wasm_bindgen::Serializer::json_compatible();
    // Counts stay far below 2^53 (the guest's budget), so this does not fail in
    // practice; if it did, the page still gets an answer it can show.
    v.serialize(&s).unwrap_or_else(|e| {
        let o = js_sys::Object::new();
        let _ = js_sys::Reflect::set(&o, &"ok".into(), &false.into());
        let _ = js_sys::Reflect::set(&o, &"error".into(), &alloc::format!("{e}").into());
        o.into()
    })
}

/// The six techniques, in column order.
#[wasm_bindgen(js_name = labTechniques)]
pub fn lab_techniques() -> JsValue {
    let list: Vec<TechniqueInfo> =
        Technique::ALL.iter().map(|t| TechniqueInfo { number: t.number(), name: t.name() }).collect();
    to_js(&list)
}

/// The rows: the seven nanobenchmarks and the forkwait macro workload (Adams & Agesen's
/// names).
#[wasm_bindgen(js_name = labBenches)]
pub fn lab_benches() -> Vec<String> {
    Bench::ALL.iter().map(|b| b.name().to_string()).collect()
}

/// The lab's defaults: `{iterations, exitCost, mmioCost}` (`LabConfig::default()`).
#[wasm_bindgen(js_name = labDefaults)]
pub fn lab_defaults() -> JsValue {
    let d = LabConfig::default();
    let o = js_sys::Object::new();
    let _ = js_sys::Reflect::set(&o, &"iterations".into(), &d.iterations.into());
    let _ = js_sys::Reflect::set(&o, &"exitCost".into(), &(DEFAULT_EXIT_CYCLES as f64).into());
    let _ = js_sys::Reflect::set(&o, &"mmioCost".into(), &(d.cost.mmio_cycles as f64).into());
    o.into()
}

/// Run technique `technique` (its column number, 1–6) on the two builds of the guest.
/// Never throws: a bad number, a guest that misbehaves or a column not built yet all
/// come back as `{ok: false, error}`.
#[wasm_bindgen(js_name = labRun)]
pub fn lab_run(technique: u32, native: &[u8], paravirtual: &[u8], iterations: u32, exit_cost: u32) -> JsValue {
    let Some(t) = Technique::ALL.iter().copied().find(|t| u32::from(t.number()) == technique) else {
        return to_js(&Failed {
            ok: false,
            technique: 0,
            name: alloc::format!("technique {technique}"),
            error: alloc::format!("no technique {technique}: the columns are 1 to 6"),
        });
    };
    let cost = CostModel { exit_cycles: u64::from(exit_cost), ..CostModel::default() };
    let cfg = LabConfig { iterations, cost };
    let images = Images { native: native.to_vec(), paravirtual: paravirtual.to_vec() };
    match lab::run(t, &images, &cfg) {
        Ok(col) => {
            let rows = col
                .measurements
                .iter()
                .map(|m| {
                    let c = &m.cost;
                    let exits_by_reason = ExitReason::ALL
                        .iter()
                        .filter(|r| c.exits[**r as usize] > 0)
                        .map(|r| (r.name(), c.exits[*r as usize]))
                        .collect();
                    Row {
                        bench: m.bench.name(),
                        instructions: c.instructions,
                        exits: c.charged_exits(),
                        exits_by_reason,
                        mmio: c.mmio,
                        cycles: cost.cycles(c),
                    }
                })
                .collect();
            to_js(&Done {
                ok: true,
                technique: t.number(),
                name: t.name(),
                iterations,
                exit_cost: cost.exit_cycles,
                serial: col.serial,
                rows,
                wrong: col.wrong,
                monitor: col.monitor.map(|m| MonitorWork {
                    traps: m.all_traps(),
                    reflected: m.reflected,
                    shadow_fills: m.shadow_fills,
                    traced_writes: m.traced_writes,
                    shadow_resets: m.shadow_resets,
                    scans: m.scans,
                    breakpoints: m.breakpoints,
                    rescans: m.rescans,
                }),
            })
        }
        Err(e) => to_js(&Failed { ok: false, technique: t.number(), name: t.name().into(), error: e.to_string() }),
    }
}
