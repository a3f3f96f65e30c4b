//! Rendering what the library reports: tables, JSON documents and the upload progress bar.

use std::sync::Mutex;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;
use smpflash_core::command::image::SlotState;
use smpflash_core::progress::{Event, Progress};

/// Prints one JSON document.
pub fn json<T: Serialize>(value: &T) {
    println!("{}", serde_json::to_string_pretty(value).expect("output serializes"));
}

fn flags(s: &SlotState) -> String {
    let mut f = Vec::new();
    for (on, name) in [
        (s.active, "active"),
        (s.confirmed, "confirmed"),
        (s.pending, "pending"),
        (s.permanent, "permanent"),
        (!s.bootable, "not-bootable"),
    ] {
        if on {
            f.push(name);
        }
    }
    f.join(" ")
}

/// The image list as an aligned table.
pub fn image_table(images: &[SlotState]) {
    println!("{:<6} {:<5} {:<16} {:<18} flags", "image", "slot", "version", "hash");
    for s in images {
        let hash = s.hash.as_ref().map(|h| hex::encode(&h[..8.min(h.len())])).unwrap_or_else(|| "-".into());
        println!("{:<6} {:<5} {:<16} {:<18} {}", s.image, s.slot, s.version, hash, flags(s));
    }
    if images.is_empty() {
        println!("(no images)");
    }
}

/// Renders engine events: a progress bar on a terminal, plain lines otherwise, nothing with
/// `--json` (the final document says it all).
pub struct Reporter {
    bar: Mutex<Option<ProgressBar>>,
    quiet: bool,
    plain: bool,
    last_plain: Mutex<u64>,
}

impl Reporter {
    /// A reporter; `quiet` for JSON output.
    pub fn new(quiet: bool) -> Self {
        use std::io::IsTerminal;
        Reporter {
            bar: Mutex::new(None),
            quiet,
            plain: !std::io::stderr().is_terminal(),
            last_plain: Mutex::new(0),
        }
    }
}

impl Progress for Reporter {
    fn event(&self, e: &Event) {
        if self.quiet {
            return;
        }
        let mut bar = self.bar.lock().unwrap_or_else(|p| p.into_inner());
        match e {
            Event::Step { what } => eprintln!("• {what}"),
            Event::Note { text } => eprintln!("  note: {text}"),
            Event::UploadStarted { image, total, chunk, window, resumed_at } => {
                eprintln!(
                    "  image {image}: {total} bytes, {chunk}-byte chunks, {window} in flight{}",
                    if *resumed_at > 0 { format!(", resuming at {resumed_at}") } else { String::new() }
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
                } else {
                    // One line per 10 % on a pipe or a log.
                    let mut last = self.last_plain.lock().unwrap_or_else(|p| p.into_inner());
                    let tenth = acked * 10 / (*total).max(1);
                    if tenth > *last || *acked == *total {
                        *last = tenth;
                        eprintln!(
                            "  {acked}/{total} bytes ({}%), {:.1} KiB/s, window {window}, retransmits {retransmits}",
                            acked * 100 / (*total).max(1),
                            rate / 1024.0
                        );
                    }
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
            Event::UploadFinished { bytes, elapsed, retransmits, reconnects, .. } => {
                if let Some(b) = bar.take() {
                    b.finish_and_clear();
                }
                *self.last_plain.lock().unwrap_or_else(|p| p.into_inner()) = 0;
                let secs = elapsed.as_secs_f64().max(1e-6);
                eprintln!(
                    "  uploaded {bytes} bytes in {secs:.1} s ({:.1} KiB/s), {retransmits} retransmits, {reconnects} reconnects",
                    *bytes as f64 / secs / 1024.0
                );
            }
        }
    }
}
