//! Records of each run, and the tables made from them: medians and spreads per cell, ratios to
//! capacity, and smpflash against each peer.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::matrix::{Link, Tool};

/// One upload (or one cell that could not run), as `--json` writes it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub link: String,
    /// `nrf5340` (the profile's flash timing in real time) or `fast` (no flash time).
    pub flash: String,
    pub tool: String,
    pub tool_version: String,
    /// 1-based repetition; 0 for a cell that did not run.
    pub run: u32,
    /// Random payload before imgtool's header and TLVs.
    pub payload_bytes: u64,
    /// The signed image: what is uploaded.
    pub image_bytes: u64,
    pub window: Option<u64>,
    pub chunk: Option<u64>,
    pub seconds: Option<f64>,
    pub goodput_bytes_per_s: Option<f64>,
    /// `min(link, flash)`; absent when neither limits (UDP on loopback with instant flash).
    pub capacity_bytes_per_s: Option<f64>,
    pub link_bytes_per_s: Option<f64>,
    pub flash_bytes_per_s: Option<f64>,
    /// The best upload this device allows (erase first, then link and programming overlap).
    pub bound_bytes_per_s: Option<f64>,
    /// goodput / capacity.
    pub ratio: Option<f64>,
    /// goodput / bound.
    pub bound_ratio: Option<f64>,
    pub retransmits: Option<u64>,
    pub client_cpu_s: Option<f64>,
    /// Why there is no measurement: `n/a (...)` or the failure.
    pub error: Option<String>,
}

/// Records of several `--json` files together: a cell (link, flash, image, tool) measured in
/// more than one file keeps the runs of the last file that has it, so a cell re-run on its own
/// replaces the earlier one.
pub fn merge(files: Vec<Vec<Record>>) -> Vec<Record> {
    let key = |r: &Record| (r.link.clone(), r.flash.clone(), r.payload_bytes, r.tool.clone());
    let mut out: Vec<Record> = Vec::new();
    for records in files {
        let replaced: std::collections::HashSet<_> = records.iter().map(key).collect();
        out.retain(|r| !replaced.contains(&key(r)));
        out.extend(records);
    }
    out
}

/// Median, min and max of some numbers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spread {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

impl Spread {
    pub fn of(values: impl IntoIterator<Item = f64>) -> Option<Spread> {
        let mut v: Vec<f64> = values.into_iter().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 };
        Some(Spread { median, min: v[0], max: v[n - 1] })
    }
}

/// The runs of one cell.
struct Cell<'a> {
    runs: Vec<&'a Record>,
}

impl Cell<'_> {
    fn first(&self) -> &Record {
        self.runs[0]
    }

    fn measured(&self) -> impl Iterator<Item = &Record> {
        self.runs.iter().copied().filter(|r| r.seconds.is_some())
    }

    fn spread(&self, f: impl Fn(&Record) -> Option<f64>) -> Option<Spread> {
        Spread::of(self.measured().filter_map(f))
    }

    fn goodput(&self) -> Option<f64> {
        self.spread(|r| r.goodput_bytes_per_s).map(|s| s.median)
    }
}

type Key = (usize, usize, u64, usize);

fn cells<'a>(records: &'a [Record]) -> BTreeMap<Key, Cell<'a>> {
    let mut out: BTreeMap<Key, Cell<'a>> = BTreeMap::new();
    for r in records {
        // Table order: the matrix's order of links, flash models and tools, not the alphabet.
        let link = super::matrix::LINKS.iter().position(|l| l.to_string() == r.link).unwrap_or(usize::MAX);
        let flash =
            super::matrix::FLASHES.iter().position(|f| f.to_string() == r.flash).unwrap_or(usize::MAX);
        let tool = super::matrix::TOOLS.iter().position(|t| t.to_string() == r.tool).unwrap_or(usize::MAX);
        out.entry((link, flash, r.payload_bytes, tool)).or_insert(Cell { runs: Vec::new() }).runs.push(r);
    }
    out
}

fn kb(v: Option<f64>) -> String {
    v.map_or("–".into(), |v| format!("{:.1}", v / 1000.0))
}

fn size(payload: u64) -> String {
    // Shifts rather than `is_multiple_of`, which the workspace's Rust 1.85 does not have.
    let mib = payload >> 20;
    if mib << 20 == payload {
        format!("{mib} MiB")
    } else {
        format!("{} KiB", payload >> 10)
    }
}

fn spread_text(s: Option<Spread>, digits: usize) -> String {
    s.map_or("–".into(), |s| format!("{:.d$} ({:.d$}–{:.d$})", s.median, s.min, s.max, d = digits))
}

fn opt(v: Option<u64>) -> String {
    v.map_or("–".into(), |v| v.to_string())
}

/// The per-cell table in Markdown.
pub fn table(records: &[Record]) -> String {
    let mut out = String::new();
    out.push_str(
        "| link | flash | image | tool | window | chunk | seconds median (min–max) | goodput kB/s | \
         capacity kB/s | ratio median (min–max) | of bound | retx | client CPU s |\n",
    );
    out.push_str("|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for cell in cells(records).values() {
        let r = cell.first();
        let head = format!("| {} | {} | {} | {} ", r.link, r.flash, size(r.payload_bytes), r.tool);
        let failed: Vec<&str> = cell.runs.iter().filter_map(|r| r.error.as_deref()).collect();
        if cell.measured().next().is_none() {
            let why = failed.first().copied().unwrap_or("no run");
            let _ = writeln!(out, "{head}| {why} |||||||||");
            continue;
        }
        let window = cell.measured().filter_map(|r| r.window).max();
        let chunk = cell.measured().filter_map(|r| r.chunk).max();
        let retx = cell.measured().filter_map(|r| r.retransmits).max();
        let mut seconds = spread_text(cell.spread(|r| r.seconds), 3);
        if !failed.is_empty() {
            let _ = write!(seconds, " ({} of {} failed: {})", failed.len(), cell.runs.len(), failed[0]);
        }
        let _ = writeln!(
            out,
            "{head}| {} | {} | {seconds} | {} | {} | {} | {} | {} | {} |",
            opt(window),
            opt(chunk),
            kb(cell.goodput()),
            kb(r.capacity_bytes_per_s),
            spread_text(cell.spread(|r| r.ratio), 3),
            cell.spread(|r| r.bound_ratio).map_or("–".into(), |s| format!("{:.3}", s.median)),
            opt(retx),
            cell.spread(|r| r.client_cpu_s).map_or("–".into(), |s| format!("{:.2}", s.median)),
        );
    }
    out
}

/// Whether a link has the capacity target (0.9 for simulated BLE and serial).
fn has_capacity_target(link: &str) -> bool {
    link.starts_with("ble-") || link.starts_with("serial-")
}

/// smpflash's ratio to capacity per link, and its goodput against each peer's, in Markdown.
pub fn summary(records: &[Record]) -> String {
    let cells = cells(records);
    let mut groups: BTreeMap<(usize, usize, u64), BTreeMap<String, &Cell<'_>>> = BTreeMap::new();
    for ((link, flash, payload, _), cell) in &cells {
        groups.entry((*link, *flash, *payload)).or_default().insert(cell.first().tool.clone(), cell);
    }
    let mut out = String::new();
    out.push_str(
        "| link | flash | image | smpflash / capacity | smpflash-w1 / capacity | smpflash / bound | \
         smpflash / smpclient | smpflash / mcumgr-toolkit |\n|---|---|---|---|---|---|---|---|\n",
    );
    let smpflash = Tool::Smpflash.to_string();
    for ((_, _, payload), tools) in &groups {
        let any = tools.values().next().expect("groups are never empty").first();
        let flash = &any.flash;
        let ratio = |tool: &str| tools.get(tool).and_then(|c| c.spread(|r| r.ratio)).map(|s| s.median);
        let mut capacity = ratio(&smpflash).map_or("–".into(), |v| format!("{v:.3}"));
        if has_capacity_target(&any.link) {
            if let Some(v) = ratio(&smpflash) {
                capacity.push_str(if v >= 0.9 { " ✓" } else { " ✗ (< 0.9)" });
            }
        }
        let w1 = ratio(&Tool::SmpflashW1.to_string()).map_or("–".into(), |v| format!("{v:.3}"));
        let bound = tools
            .get(&smpflash)
            .and_then(|c| c.spread(|r| r.bound_ratio))
            .map_or("–".into(), |s| format!("{:.3}", s.median));
        let ours = tools.get(&smpflash).and_then(|c| c.goodput());
        let versus = |peer: Tool| {
            let theirs = tools.get(&peer.to_string()).and_then(|c| c.goodput());
            match (ours, theirs) {
                (Some(a), Some(b)) => {
                    let mut s = format!("{:.2}×", a / b);
                    if peer == Tool::Smpclient && any.link == Link::Udp(15).to_string() {
                        s.push_str(if a / b >= 3.0 { " ✓" } else { " ✗ (< 3×)" });
                    }
                    s
                }
                _ => "–".into(),
            }
        };
        let _ = writeln!(
            out,
            "| {} | {flash} | {} | {capacity} | {w1} | {bound} | {} | {} |",
            any.link,
            size(*payload),
            versus(Tool::Smpclient),
            versus(Tool::McumgrToolkit),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(tool: &str, run: u32, seconds: Option<f64>) -> Record {
        let goodput = seconds.map(|s| 1000.0 / s);
        Record {
            link: "udp-15ms".into(),
            flash: "fast".into(),
            tool: tool.into(),
            tool_version: "1".into(),
            run,
            payload_bytes: 256 * 1024,
            image_bytes: 1000,
            window: Some(3),
            chunk: Some(100),
            seconds,
            goodput_bytes_per_s: goodput,
            capacity_bytes_per_s: Some(1000.0),
            link_bytes_per_s: Some(1000.0),
            flash_bytes_per_s: None,
            bound_bytes_per_s: Some(1000.0),
            ratio: goodput.map(|g| g / 1000.0),
            bound_ratio: goodput.map(|g| g / 1000.0),
            retransmits: Some(0),
            client_cpu_s: Some(0.5),
            error: seconds.is_none().then(|| "timed out".into()),
        }
    }

    #[test]
    fn later_files_replace_whole_cells() {
        let first = vec![record("smpflash", 1, Some(1.0)), record("smpclient", 1, None)];
        let second = vec![record("smpclient", 1, Some(2.0)), record("smpclient", 2, Some(3.0))];
        let merged = merge(vec![first, second]);
        assert_eq!(merged.len(), 3);
        assert!(merged.iter().all(|r| r.seconds.is_some()));
    }

    #[test]
    fn medians_of_odd_and_even_counts() {
        assert_eq!(Spread::of([3.0, 1.0, 2.0]), Some(Spread { median: 2.0, min: 1.0, max: 3.0 }));
        assert_eq!(Spread::of([4.0, 1.0, 2.0, 3.0]).unwrap().median, 2.5);
        assert_eq!(Spread::of([]), None);
    }

    #[test]
    fn tables_show_medians_failures_and_peer_ratios() {
        let records = vec![
            record("smpflash", 1, Some(1.0)),
            record("smpflash", 2, Some(2.0)),
            record("smpflash", 3, None),
            record("smpclient", 1, Some(4.0)),
        ];
        let t = table(&records);
        assert!(t.contains("| udp-15ms | fast | 256 KiB | smpflash | 3 | 100 | 1.500 (1.000–2.000) (1 of 3 failed: timed out)"), "{t}");
        let s = summary(&records);
        // Median goodputs 750 and 250 B/s.
        assert!(s.contains("| 3.00× ✓ |"), "{s}");
    }
}
