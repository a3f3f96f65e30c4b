//! The result table (Markdown), the list of known gaps, and their place in docs/conformance.md.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{bail, Context, Result};

use super::run::{Cell, Row, Verdict, COLUMNS};

/// Markers around the generated table in docs/conformance.md.
pub const TABLE_MARKERS: (&str, &str) =
    ("<!-- conformance-table:start -->", "<!-- conformance-table:end -->");
/// Markers around the generated list of gap cells.
pub const GAPS_MARKERS: (&str, &str) = ("<!-- conformance-gaps:start -->", "<!-- conformance-gaps:end -->");

/// A cell's text in the table.
pub fn cell_text(c: &Cell) -> String {
    match c.verdict {
        Verdict::Pass if c.note.is_empty() => "pass".into(),
        Verdict::Pass => format!("pass ({})", short_note(&c.note)),
        Verdict::ExpectedDeviceError => format!("pass: device error, expected ({})", short_note(&c.note)),
        Verdict::FixtureLimit => format!("pass: fixture limit, expected ({})", short_note(&c.note)),
        Verdict::Gap(kind) => format!("gap: {kind}"),
        Verdict::NotApplicable => format!("n/a: {}", c.note),
        Verdict::NotRun => "—".into(),
        Verdict::Fail => format!("**FAIL**: {}", c.note),
    }
}

fn short_note(note: &str) -> String {
    // The table keeps the gist; the whole note is in the run's log lines.
    let first = note.split(';').next().unwrap_or(note).trim();
    if first.chars().count() > 60 {
        format!("{}…", first.chars().take(60).collect::<String>())
    } else {
        first.to_string()
    }
}

/// The table: one row per server, one column per command.
pub fn markdown(rows: &[Row]) -> String {
    let mut s = String::new();
    s.push_str("| server | target | transport |");
    for c in COLUMNS {
        let _ = write!(s, " {} |", c.title());
    }
    s.push_str("\n|---|---|---|");
    for _ in COLUMNS {
        s.push_str("---|");
    }
    s.push('\n');
    for r in rows {
        let _ = write!(s, "| `{}` | {} | {} |", r.config, r.target, r.transport);
        for c in &r.cells {
            let _ = write!(s, " {} |", cell_text(c).replace('|', "/"));
        }
        s.push('\n');
    }
    s
}

/// Every gap cell with its reason, as a Markdown list.
pub fn gaps(rows: &[Row]) -> String {
    let mut s = String::new();
    for r in rows {
        for (col, c) in COLUMNS.iter().zip(&r.cells) {
            if let Verdict::Gap(kind) = c.verdict {
                let _ = writeln!(s, "- `{}` / {} — **{kind}**: {}", r.config, col.title(), c.note);
            }
        }
    }
    if s.is_empty() {
        s.push_str("- none\n");
    }
    s
}

/// Replaces the text between `markers` in `text`.
pub fn replace_between(text: &str, markers: (&str, &str), body: &str) -> Result<String> {
    let (Some(a), Some(b)) = (text.find(markers.0), text.find(markers.1)) else {
        bail!("the markers {} … {} are missing", markers.0, markers.1);
    };
    if b < a {
        bail!("{} comes before {}", markers.1, markers.0);
    }
    let head = &text[..a + markers.0.len()];
    Ok(format!("{head}\n{}{}", body, &text[b..]))
}

/// Writes the table and the gap list into `doc` between their markers.
pub fn write_doc(doc: &Path, rows: &[Row], footer: &str) -> Result<()> {
    let text = std::fs::read_to_string(doc).with_context(|| format!("cannot read {}", doc.display()))?;
    let table = format!("{}\n{footer}\n", markdown(rows));
    let text = replace_between(&text, TABLE_MARKERS, &table)?;
    let text = replace_between(&text, GAPS_MARKERS, &gaps(rows))?;
    std::fs::write(doc, text).with_context(|| format!("cannot write {}", doc.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_only_between_the_markers() {
        let doc = "a\n<!-- conformance-table:start -->\nold\n<!-- conformance-table:end -->\nb\n";
        let out = replace_between(doc, TABLE_MARKERS, "new\n").unwrap();
        assert_eq!(out, "a\n<!-- conformance-table:start -->\nnew\n<!-- conformance-table:end -->\nb\n");
        assert!(replace_between("no markers", TABLE_MARKERS, "x").is_err());
    }
}
