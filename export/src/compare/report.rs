//! Rendering a [`CompareReport`]: the text table, CSV and the SQNR plot.

use std::fmt::Write as _;
use std::path::Path;

use super::{CompareReport, F16W_COLOR, F32_COLOR, INT8_COLOR, TensorRow};
use crate::error::Result;
use crate::plot;

impl CompareReport {
    /// Rows sorted by SQNR, lowest (largest error) first; ties in graph order.
    pub fn sorted(&self) -> Vec<&TensorRow> {
        let mut rows: Vec<&TensorRow> = self.rows.iter().collect();
        rows.sort_by(|a, b| a.sqnr_db.total_cmp(&b.sqnr_db));
        rows
    }

    /// The candidate's model output, when it was compared.
    pub fn output(&self) -> Option<&TensorRow> {
        self.rows.iter().find(|r| r.is_output)
    }

    /// The table printed by `tern compare`: rows by SQNR ascending, then the
    /// model output's figures and anything left unmatched.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{:>4}  {:<36} {:>4} {:<16} {:<5} {:>8} {:>9} {:>12}",
            "rank", "tensor", "op", "opcode", "prec", "SQNR dB", "cosine", "max abs err"
        );
        for (rank, r) in self.sorted().into_iter().enumerate() {
            let _ = writeln!(
                s,
                "{:>4}  {:<36} {:>4} {:<16} {:<5} {:>8.2} {:>9.6} {:>12.4e}{}",
                rank + 1,
                short(&r.name, 36),
                r.op_index.map_or("-".to_string(), |i| i.to_string()),
                r.opcode,
                r.precision,
                r.sqnr_db,
                r.cosine,
                r.max_abs_err,
                if r.is_output { "  (output)" } else { "" }
            );
        }
        match self.output() {
            Some(r) => {
                let _ = writeln!(
                    s,
                    "model output '{}' ({} #{}, {}): SQNR {:.2} dB, cosine {:.6}, max abs err {:.4e}",
                    r.name,
                    r.opcode,
                    r.op_index.map_or("-".to_string(), |i| i.to_string()),
                    r.precision,
                    r.sqnr_db,
                    r.cosine,
                    r.max_abs_err
                );
            }
            None => {
                let _ = writeln!(
                    s,
                    "model output: not compared (no matching reference tensor)"
                );
            }
        }
        if !self.unmatched_reference.is_empty() {
            let _ = writeln!(
                s,
                "reference tensors with no candidate counterpart (fused or removed): {}",
                self.unmatched_reference.join(", ")
            );
        }
        for (name, why) in &self.unmatched_candidate {
            let _ = writeln!(s, "not compared: '{name}': {why}");
        }
        if !self.skipped_integer.is_empty() {
            let _ = writeln!(
                s,
                "integer tensors not compared: {}",
                self.skipped_integer.join(", ")
            );
        }
        s
    }

    /// All rows in graph order as CSV (header line first).
    pub fn csv(&self) -> String {
        let mut s = String::from(
            "order,tensor,reference,op,opcode,precision,elements,sqnr_db,cosine,max_abs_err,is_output\n",
        );
        for (i, r) in self.rows.iter().enumerate() {
            let _ = writeln!(
                s,
                "{i},{},{},{},{},{},{},{:.4},{:.8},{:.6e},{}",
                csv_field(&r.name),
                csv_field(&r.reference),
                r.op_index.map_or(String::new(), |i| i.to_string()),
                r.opcode,
                r.precision,
                r.elements,
                r.sqnr_db,
                r.cosine,
                r.max_abs_err,
                r.is_output
            );
        }
        s
    }

    /// Per-tensor SQNR bars in graph order (coloured by precision, labelled with
    /// the op index; `in` for the model input).
    pub fn plot_bars(&self) -> Vec<plot::Bar> {
        self.rows
            .iter()
            .map(|r| plot::Bar {
                value: r.sqnr_db,
                label: r.op_index.map_or("in".to_string(), |i| i.to_string()),
                color: match r.precision {
                    "int8" => INT8_COLOR,
                    "f16w" => F16W_COLOR,
                    _ => F32_COLOR,
                },
            })
            .collect()
    }

    /// Renders the per-tensor SQNR bar chart (axis capped at 100 dB; exact
    /// tensors, at 200 dB, show as clipped bars).
    pub fn render_plot(&self, title: &str) -> plot::Image {
        let bars = self.plot_bars();
        let mut legend: Vec<(&str, [u8; 3])> = Vec::new();
        for (name, color) in [
            ("int8", INT8_COLOR),
            ("f16w", F16W_COLOR),
            ("f32", F32_COLOR),
        ] {
            if self.rows.iter().any(|r| r.precision == name) {
                legend.push((name, color));
            }
        }
        plot::render(&plot::BarChart {
            title,
            x_caption: "op index (graph order)",
            bars: &bars,
            legend: &legend,
            grid_step: 10.0,
            y_max_cap: 100.0,
            y_min_cap: -100.0,
        })
    }

    /// Writes [`CompareReport::render_plot`] as a PNG.
    pub fn write_plot(&self, path: &Path, title: &str) -> Result<()> {
        self.render_plot(title).write_png(path)
    }
}

/// `name` cut to `width` characters with a trailing `..`.
fn short(name: &str, width: usize) -> String {
    if name.chars().count() <= width {
        return name.to_string();
    }
    let head: String = name.chars().take(width.saturating_sub(2)).collect();
    format!("{head}..")
}

pub(super) fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}
