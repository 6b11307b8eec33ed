//! The table, in Adams & Agesen's shape: a row per nanobenchmark, a column per
//! technique, a cell per (benchmark, technique) giving the cost of one iteration. Three
//! views of the same runs: cycles under the cost model (their table), guest instructions,
//! and exits by reason.

use super::run::Column;
use super::{Bench, CostModel, LabError, Technique};
use crate::cpu::v386::ExitReason;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;
use core::fmt::Write;

/// The lab's results: each technique's column or why it has none.
pub struct Table {
    pub columns: Vec<(Technique, Result<Column, LabError>)>,
    pub cost: CostModel,
    pub iterations: u32,
}

/// `total / n`: whole when it divides, else with two decimals.
fn per_iteration(total: u64, n: u32) -> String {
    let n = n.max(1) as u64;
    if total % n == 0 {
        (total / n).to_string()
    } else {
        format!("{:.2}", total as f64 / n as f64)
    }
}

/// A reason's name in the exits table, short where the names are long.
fn short_name(r: ExitReason) -> &'static str {
    match r {
        ExitReason::ExceptionNmi => "EXC",
        ExitReason::SensitiveInstruction => "SENS",
        ExitReason::CrAccess => "CR",
        _ => r.name(),
    }
}

impl Table {
    /// Cycles per iteration under the cost model: the lab's main table.
    pub fn cycles(&self) -> String {
        let c = &self.cost;
        let title = format!(
            "Nanobenchmarks (Adams & Agesen, ASPLOS 2006): cycles per iteration, N = {}\n\
             cost model: {} cycle(s) per guest instruction, {} per VM exit, {} per device-memory access",
            self.iterations, c.instruction_cycles, c.exit_cycles, c.mmio_cycles
        );
        self.grid(&title, |col, b| per_iteration(self.cost.cycles(&col.measurements[b].cost), self.iterations))
    }

    /// Guest instructions retired per iteration.
    pub fn instructions(&self) -> String {
        let title = format!("Guest instructions per iteration, N = {}", self.iterations);
        self.grid(&title, |col, b| per_iteration(col.measurements[b].cost.instructions, self.iterations))
    }

    /// VM exits (columns 5–6) or monitor traps (2–4) per iteration by reason, and
    /// device-memory accesses.
    pub fn exits(&self) -> String {
        let title = format!(
            "VM exits and monitor traps (and device-memory accesses) per iteration, N = {}\n\
             EXC = EXCEPTION_NMI (an exception or INT n: #PF, #DE, a breakpoint), \
             SENS = SENSITIVE_INSTRUCTION (an instruction emulated), CR = CR_ACCESS",
            self.iterations
        );
        self.grid(&title, |col, b| {
            let c = &col.measurements[b].cost;
            let mut parts: Vec<String> = ExitReason::ALL
                .iter()
                .filter(|r| c.exits[**r as usize] > 0)
                .map(|r| format!("{} {}", per_iteration(c.exits[*r as usize], self.iterations), short_name(*r)))
                .collect();
            if c.mmio > 0 {
                parts.push(format!("{} MMIO", per_iteration(c.mmio, self.iterations)));
            }
            if parts.is_empty() {
                "0".into()
            } else {
                parts.join(" + ")
            }
        })
    }

    /// Each column's wrong results: what the guest's sensitive-instruction probe saw
    /// differ from the bare machine (column 2 on the classic x86; none elsewhere).
    pub fn wrong_results(&self) -> String {
        let mut s = String::from("Wrong results the guest saw (sensitive unprivileged instructions)\n");
        for (t, r) in &self.columns {
            let Ok(col) = r else { continue };
            if col.wrong.is_empty() {
                let _ = writeln!(s, "{} {}: none", t.number(), t.name());
            } else {
                let _ = writeln!(s, "{} {}: {}", t.number(), t.name(), col.wrong.len());
                for w in &col.wrong {
                    let _ = writeln!(s, "    {w}");
                }
            }
        }
        s
    }

    /// What the software monitor did over each of its runs (columns 2–4), start to end.
    pub fn monitor_work(&self) -> String {
        let mut s = String::from("The software monitor's work over the whole run (columns 2-4)\n");
        for (t, r) in &self.columns {
            let Ok(Column { monitor: Some(m), .. }) = r else { continue };
            let _ = writeln!(
                s,
                "{} {}: {} traps, {} reflected to the guest, {} shadow fills, {} traced writes, {} shadow resets, \
                 {} scans, {} breakpoint hits, {} rescans",
                t.number(),
                t.name(),
                m.all_traps(),
                m.reflected,
                m.shadow_fills,
                m.traced_writes,
                m.shadow_resets,
                m.scans,
                m.breakpoints,
                m.rescans
            );
        }
        s
    }

    /// What went wrong in the columns that have no figures.
    pub fn errors(&self) -> String {
        let mut s = String::new();
        for (t, r) in &self.columns {
            if let Err(e) = r {
                let _ = writeln!(s, "{} {}: {e}", t.number(), t.name());
            }
        }
        s
    }

    /// A title line, a header of techniques and a row per benchmark; `cell` gives a
    /// column's figure for the benchmark at an index of [`Bench::ALL`].
    fn grid(&self, title: &str, cell: impl Fn(&Column, usize) -> String) -> String {
        let mut rows: Vec<Vec<String>> = Vec::new();
        let mut header = vec![String::new()];
        header.extend(self.columns.iter().map(|(t, _)| format!("{} {}", t.number(), t.name())));
        rows.push(header);
        for (i, b) in Bench::ALL.iter().enumerate() {
            let mut row = vec![b.name().to_string()];
            for (_, r) in &self.columns {
                row.push(match r {
                    Ok(col) => cell(col, i),
                    Err(_) => "error".into(),
                });
            }
            rows.push(row);
        }
        let widths: Vec<usize> =
            (0..rows[0].len()).map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0)).collect();
        let mut s = String::new();
        let _ = writeln!(s, "{title}");
        for row in &rows {
            let mut line = String::new();
            for (c, text) in row.iter().enumerate() {
                if c == 0 {
                    let _ = write!(line, "{text:<w$}", w = widths[0]);
                } else {
                    let _ = write!(line, "  {text:>w$}", w = widths[c]);
                }
            }
            let _ = writeln!(s, "{}", line.trim_end());
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_iteration_is_whole_when_it_divides() {
        assert_eq!(per_iteration(3000, 1000), "3");
        assert_eq!(per_iteration(12_620_000, 1000), "12620");
        assert_eq!(per_iteration(2500, 1000), "2.50");
    }

    #[test]
    fn columns_without_figures_say_error_and_why() {
        let t = Table {
            columns: Technique::ALL.iter().map(|t| (*t, Err(LabError::Setup("no image".into())))).collect(),
            cost: CostModel::default(),
            iterations: 10,
        };
        let s = t.cycles();
        assert_eq!(s.lines().count(), 3 + Bench::ALL.len(), "{s}");
        assert!(s.lines().nth(3).unwrap().starts_with("syscall"), "{s}");
        assert_eq!(s.matches("error").count(), 6 * Bench::ALL.len(), "{s}");
        assert_eq!(t.errors().lines().count(), 6);
        assert!(t.errors().contains("2 Trap-and-emulate: setting up the guest: no image"), "{}", t.errors());
    }
}
