//! `smpflash decode`: explain raw SMP bytes offline, with core's [`smpflash_core::decode`].

use std::io::{self, Write};
use std::path::Path;

use serde::Serialize;
use smpflash_core::decode::{self, Direction, FrameReport};

use crate::exit::{Code, Failure};
use crate::output::Outcome;

/// What `decode` found: one entry per input (argument or line).
#[derive(Debug, Serialize)]
pub struct DecodeReport {
    /// The inputs, in order.
    pub inputs: Vec<Input>,
}

/// One input and the frames in it.
#[derive(Debug, Serialize)]
pub struct Input {
    /// Where it came from: `argument 1`, `line 7`, `stdin line 2`, `console packet 3`.
    pub source: String,
    /// Its length in bytes.
    pub bytes: usize,
    /// Its frames (more than one when frames were captured back to back).
    pub frames: Vec<FrameReport>,
    /// A console packet the serial framing threw away, and why (no frames then).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub discarded: Option<String>,
}

/// Where the hex comes from.
pub enum Source<'a> {
    /// Command-line arguments, a frame each (or one frame when every argument is one byte).
    Args(&'a [String]),
    /// A file, a frame per line, or a raw serial capture.
    File(&'a Path),
    /// Standard input, like a file.
    Stdin,
}

fn usage(message: String) -> Failure {
    Failure { code: Code::Usage, message }
}

fn unreadable(what: String, e: io::Error) -> Failure {
    Failure { code: Code::Failure, message: format!("cannot read {what}: {e}") }
}

/// Runs the command.
pub fn run(source: Source<'_>, direction: Option<Direction>) -> Result<Outcome, Failure> {
    let (bytes, label) = match source {
        Source::Args(args) => return from_texts(args_to_inputs(args), direction),
        Source::File(path) => {
            (std::fs::read(path).map_err(|e| unreadable(path.display().to_string(), e))?, "line")
        }
        Source::Stdin => {
            let mut bytes = Vec::new();
            io::Read::read_to_end(&mut io::stdin().lock(), &mut bytes)
                .map_err(|e| unreadable("stdin".into(), e))?;
            (bytes, "stdin line")
        }
    };
    // A raw serial capture: packets in Zephyr's console framing among log lines.
    if bytes.windows(2).any(|w| w == smpflash_serial::codec::PACKET_START) {
        let inputs = console(&bytes, direction);
        if inputs.is_empty() {
            return Err(usage("the console capture holds no SMP packet".into()));
        }
        return Ok(Outcome::Decode(DecodeReport { inputs }));
    }
    from_texts(lines(&String::from_utf8_lossy(&bytes), label), direction)
}

/// The packets of a console capture, a frame each; log lines are left out.
fn console(bytes: &[u8], direction: Option<Direction>) -> Vec<Input> {
    use smpflash_serial::ConsoleItem;
    let mut inputs = Vec::new();
    for item in smpflash_serial::decode_all(bytes) {
        let source = format!("console packet {}", inputs.len() + 1);
        match item {
            ConsoleItem::Frame(frame) => inputs.push(Input {
                source,
                bytes: frame.len(),
                frames: decode::inspect(&frame, direction),
                discarded: None,
            }),
            ConsoleItem::Discarded(why) => {
                inputs.push(Input { source, bytes: 0, frames: Vec::new(), discarded: Some(why.to_string()) })
            }
            ConsoleItem::Log(_) => {}
        }
    }
    inputs
}

fn from_texts(texts: Vec<(String, String)>, direction: Option<Direction>) -> Result<Outcome, Failure> {
    if texts.is_empty() {
        return Err(usage("no frames to decode: give hex bytes, --file PATH, or - to read stdin".into()));
    }
    let mut inputs = Vec::new();
    for (source, text) in texts {
        let bytes = decode::parse_hex(&text).map_err(|e| usage(format!("{source}: {e}")))?;
        inputs.push(Input {
            frames: decode::inspect(&bytes, direction),
            bytes: bytes.len(),
            source,
            discarded: None,
        });
    }
    Ok(Outcome::Decode(DecodeReport { inputs }))
}

/// Arguments are a frame each, except that arguments of one byte each (the shell split
/// `02 00 00 02 …` at its spaces) are one frame.
fn args_to_inputs(args: &[String]) -> Vec<(String, String)> {
    let one_byte = |a: &String| {
        let digits = a.trim().trim_start_matches("0x").trim_start_matches("0X");
        !digits.is_empty() && digits.len() <= 2
    };
    if args.len() > 1 && args.iter().all(one_byte) {
        return vec![(format!("arguments 1-{}", args.len()), args.join(" "))];
    }
    args.iter().enumerate().map(|(i, a)| (format!("argument {}", i + 1), a.clone())).collect()
}

fn lines(text: &str, label: &str) -> Vec<(String, String)> {
    text.lines()
        .enumerate()
        .filter_map(|(i, line)| {
            decode::log_line(line).map(|hex| (format!("{label} {}", i + 1), hex.to_string()))
        })
        .collect()
}

/// The report as text.
pub fn text(out: &mut dyn Write, report: &DecodeReport) -> io::Result<()> {
    for (n, input) in report.inputs.iter().enumerate() {
        if n > 0 {
            writeln!(out)?;
        }
        if let Some(why) = &input.discarded {
            writeln!(out, "{}: dropped by the console framing: {why}", input.source)?;
            continue;
        }
        let several = input.frames.len() > 1;
        for (i, f) in input.frames.iter().enumerate() {
            if i > 0 {
                writeln!(out)?;
            }
            if several {
                writeln!(
                    out,
                    "{}, frame {} of {} (bytes {}-{}):",
                    input.source,
                    i + 1,
                    input.frames.len(),
                    f.offset,
                    f.offset + f.bytes - 1
                )?;
            } else {
                writeln!(out, "{} ({} bytes):", input.source, f.bytes)?;
            }
            frame(out, f)?;
        }
    }
    Ok(())
}

fn frame(out: &mut dyn Write, f: &FrameReport) -> io::Result<()> {
    if let Some(h) = &f.header {
        let raw: Vec<String> = h.raw.iter().map(|b| format!("{b:02x}")).collect();
        writeln!(out, "  header    {}", raw.join(" "))?;
        let version = match h.version {
            0 => " (SMP v1)",
            1 => " (SMP v2)",
            _ => "",
        };
        let named = |name: Option<&str>| name.map_or_else(String::new, |n| format!(" ({n})"));
        writeln!(
            out,
            "  fields    version {}{version}, op {}{}, flags {}, length {}, group {}{}, seq {}, id {}{}",
            h.version,
            h.op,
            named(h.op_name),
            h.flags,
            h.len,
            h.group,
            named(h.group_name),
            h.seq,
            h.id,
            named(h.command),
        )?;
    }
    match &f.body {
        Ok(body) => writeln!(out, "  body      {}", body.diagnostic())?,
        Err(problem) => writeln!(out, "  body      {problem}")?,
    }
    if let Some(rc) = &f.outcome {
        writeln!(out, "  result    {rc}")?;
    }
    if f.problems.is_empty() {
        if f.body.is_ok() {
            writeln!(out, "  problems  none")?;
        }
    } else {
        for (i, p) in f.problems.iter().enumerate() {
            writeln!(out, "  {:<9} {p}", if i == 0 { "problems" } else { "" })?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_byte_arguments_are_one_frame() {
        let args: Vec<String> = "02 00 00 02 00 00 00 05 bf ff".split(' ').map(String::from).collect();
        assert_eq!(args_to_inputs(&args), [("arguments 1-10".to_string(), args.join(" "))]);
        let args = vec!["0200".to_string(), "01".to_string()];
        assert_eq!(args_to_inputs(&args).len(), 2);
        let args = vec!["0x02".to_string(), "0x0".to_string()];
        assert_eq!(args_to_inputs(&args).len(), 1);
    }
}
