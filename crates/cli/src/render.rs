//! Rendering engine events while a command runs: a progress bar on a terminal, plain lines on
//! a pipe, and with `--json` one JSON object per line on stderr (stdout keeps the one result
//! document).

use std::sync::Mutex;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use smpflash_core::progress::{Event, Progress, UploadStart};

/// Renders engine events.
pub struct Reporter {
    bar: Mutex<Option<ProgressBar>>,
    json: bool,
    plain: bool,
    /// The last progress step printed (tenths as text, hundredths as JSON lines).
    last_step: Mutex<u64>,
}

impl Reporter {
    /// A reporter; `json` for JSON lines.
    pub fn new(json: bool) -> Self {
        use std::io::IsTerminal;
        Reporter {
            bar: Mutex::new(None),
            json,
            plain: !std::io::stderr().is_terminal(),
            last_step: Mutex::new(0),
        }
    }

    /// Whether a progress event moves past the next `steps`-th of the upload, so a log gets a
    /// line per step rather than per chunk.
    fn crosses_step(&self, acked: u64, total: u64, steps: u64) -> bool {
        let mut last = self.last_step.lock().unwrap_or_else(|p| p.into_inner());
        let step = acked * steps / total.max(1);
        if step > *last || acked == total {
            *last = step;
            true
        } else {
            false
        }
    }

    fn json_line(&self, e: &Event) {
        match e {
            Event::Progress { acked, total, .. } if !self.crosses_step(*acked, *total, 100) => {}
            Event::UploadFinished { .. } | Event::UploadStarted { .. } => {
                *self.last_step.lock().unwrap_or_else(|p| p.into_inner()) = 0;
                eprintln!("{}", serde_json::to_string(e).unwrap_or_default());
            }
            _ => eprintln!("{}", serde_json::to_string(e).unwrap_or_default()),
        }
    }
}

impl Progress for Reporter {
    fn event(&self, e: &Event) {
        if self.json {
            return self.json_line(e);
        }
        let mut bar = self.bar.lock().unwrap_or_else(|p| p.into_inner());
        match e {
            Event::Step { step } => eprintln!("• {step}"),
            Event::Note { note } => eprintln!("  note: {note}"),
            Event::UploadStarted { image, total, chunk, window, start, file, .. } => {
                let what = match file {
                    Some(f) => f.path.clone(),
                    None => format!("image {image}"),
                };
                eprintln!(
                    "  {what}: {total} bytes, {chunk}-byte chunks, {window} in flight{}",
                    match start {
                        UploadStart::Fresh => String::new(),
                        other => format!("; {other}"),
                    }
                );
                if !self.plain {
                    let b = ProgressBar::with_draw_target(Some(*total), ProgressDrawTarget::stderr());
                    b.set_style(
                        ProgressStyle::with_template(
                            "  {bar:36.cyan/blue} {bytes}/{total_bytes} {percent:>3}% {bytes_per_sec} eta {eta} {msg}",
                        )
                        .expect("template is valid")
                        .progress_chars("=> "),
                    );
                    b.enable_steady_tick(Duration::from_millis(200));
                    *bar = Some(b);
                }
            }
            Event::Progress { acked, total, retransmits, window, rate, .. } => {
                if let Some(b) = bar.as_ref() {
                    b.set_position(*acked);
                    b.set_message(format!("window {window} retransmits {retransmits}"));
                } else if self.crosses_step(*acked, *total, 10) {
                    // One line per 10 % on a pipe or a log.
                    eprintln!(
                        "  {acked}/{total} bytes ({}%), {:.1} KiB/s, window {window}, retransmits {retransmits}",
                        acked * 100 / (*total).max(1),
                        rate / 1024.0
                    );
                }
            }
            Event::Reconnecting { reason } => {
                if let Some(b) = bar.as_ref() {
                    b.set_message(format!("reconnecting ({reason})"));
                } else {
                    eprintln!("  link lost ({reason}); reconnecting");
                }
            }
            Event::Restarted { reason } => eprintln!("  upload restarted from 0: {reason}"),
            Event::UploadFinished { bytes, elapsed, retransmits, reconnects, file, .. } => {
                let did = if file.as_ref().is_some_and(|f| f.download) { "downloaded" } else { "uploaded" };
                if let Some(b) = bar.take() {
                    b.finish_and_clear();
                }
                *self.last_step.lock().unwrap_or_else(|p| p.into_inner()) = 0;
                let secs = elapsed.as_secs_f64().max(1e-6);
                eprintln!(
                    "  {did} {bytes} bytes in {secs:.1} s ({:.1} KiB/s), {retransmits} retransmits, {reconnects} reconnects",
                    *bytes as f64 / secs / 1024.0
                );
            }
        }
    }
}
