//! What the bench runs: links, flash models, tools and image sizes, and the filters that pick
//! a part of the matrix.

use std::fmt;

use anyhow::{bail, Result};

/// A way to reach the virtual device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Link {
    /// The simulated BLE radio link with one of `LinkParams::by_name`'s profiles.
    Ble(&'static str),
    /// The console framing over a pty paced at this baud rate.
    Serial(u32),
    /// UDP on loopback with this round trip (ms) added to every answer.
    Udp(u64),
}

pub const LINKS: [Link; 8] = [
    Link::Ble("phone-fast"),
    Link::Ble("phone-slow"),
    Link::Ble("legacy"),
    Link::Serial(115_200),
    Link::Serial(1_000_000),
    Link::Udp(0),
    Link::Udp(15),
    Link::Udp(50),
];

impl fmt::Display for Link {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Link::Ble(p) => write!(f, "ble-{p}"),
            Link::Serial(b) => write!(f, "serial-{b}"),
            Link::Udp(ms) => write!(f, "udp-{ms}ms"),
        }
    }
}

/// How fast the virtual device's flash is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Flash {
    /// The nrf5340 profile's flash timing in real time (`--time-scale 1`).
    Nrf5340,
    /// Flash that takes no time (`--time-scale 0`): the link alone limits.
    Fast,
}

pub const FLASHES: [Flash; 2] = [Flash::Nrf5340, Flash::Fast];

impl Flash {
    pub fn time_scale(self) -> f64 {
        match self {
            Flash::Nrf5340 => 1.0,
            Flash::Fast => 0.0,
        }
    }
}

impl fmt::Display for Flash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Flash::Nrf5340 => "nrf5340",
            Flash::Fast => "fast",
        })
    }
}

/// A client that uploads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Tool {
    /// smpflash with the window it derives from the device's buffers.
    Smpflash,
    /// smpflash with one request in flight (`--window 1`).
    SmpflashW1,
    /// intercreate's smpclient (Python).
    Smpclient,
    /// Finomnis' mcumgr-toolkit (Rust core, Python bindings).
    McumgrToolkit,
}

pub const TOOLS: [Tool; 4] = [Tool::Smpflash, Tool::SmpflashW1, Tool::Smpclient, Tool::McumgrToolkit];

impl Tool {
    pub fn is_peer(self) -> bool {
        matches!(self, Tool::Smpclient | Tool::McumgrToolkit)
    }

    /// Why the tool cannot upload over `link` here, if it cannot.
    pub fn unreachable(self, link: Link) -> Option<&'static str> {
        match link {
            // The simulated radio lives inside smpflash's process, and there is no adapter here.
            Link::Ble(_) if self.is_peer() => Some("no BLE here: the simulated radio is in smpflash"),
            _ => None,
        }
    }
}

impl fmt::Display for Tool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Tool::Smpflash => "smpflash",
            Tool::SmpflashW1 => "smpflash-w1",
            Tool::Smpclient => "smpclient",
            Tool::McumgrToolkit => "mcumgr-toolkit",
        })
    }
}

pub const KIB: u64 = 1024;

/// Payload sizes (before imgtool adds header and TLVs) uploaded over `link`. The quick matrix
/// uploads 256 KiB, and 32 KiB over legacy BLE, whose 1.6 kB/s would take almost three
/// minutes per 256 KiB run.
pub fn payload_sizes(link: Link, full: bool) -> Vec<u64> {
    match (full, link) {
        (true, _) => vec![256 * KIB, 1024 * KIB],
        (false, Link::Ble("legacy")) => vec![32 * KIB],
        (false, _) => vec![256 * KIB],
    }
}

/// Keeps the items one of the comma-separated `filter` words names: by its whole name, or, when
/// no name is the word itself, by its leading dash-separated words (`ble` selects every BLE
/// link, `smpflash` only smpflash, `smpflash-w1` its window-1 run).
pub fn select<T: Copy + fmt::Display>(all: &[T], filter: Option<&str>, what: &str) -> Result<Vec<T>> {
    let Some(filter) = filter else {
        return Ok(all.to_vec());
    };
    let names: Vec<String> = all.iter().map(T::to_string).collect();
    let mut keep = vec![false; all.len()];
    for word in filter.split(',').map(str::trim).filter(|w| !w.is_empty()) {
        let exact: Vec<usize> = (0..all.len()).filter(|&i| names[i] == word).collect();
        let family: Vec<usize> =
            (0..all.len()).filter(|&i| names[i].starts_with(&format!("{word}-"))).collect();
        let hits = if exact.is_empty() { family } else { exact };
        if hits.is_empty() {
            bail!("unknown {what} {word:?}; choose from {}", names.join(", "));
        }
        hits.into_iter().for_each(|i| keep[i] = true);
    }
    Ok(all.iter().zip(keep).filter(|(_, k)| *k).map(|(item, _)| *item).collect())
}

/// Parses image sizes such as `32k,256k,1m` (KiB and MiB) into bytes.
pub fn parse_sizes(text: &str) -> Result<Vec<u64>> {
    text.split(',')
        .map(str::trim)
        .filter(|w| !w.is_empty())
        .map(|w| {
            let lower = w.to_ascii_lowercase();
            let (digits, unit) = match lower.strip_suffix('m') {
                Some(d) => (d, 1024 * KIB),
                None => (lower.strip_suffix('k').unwrap_or(&lower), KIB),
            };
            match digits.parse::<u64>() {
                Ok(n) if n > 0 => Ok(n * unit),
                _ => bail!("image size {w:?}: give KiB as 256k or MiB as 1m"),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_take_whole_names_and_families() {
        let ble = select(&LINKS, Some("ble"), "link").unwrap();
        assert_eq!(ble, vec![Link::Ble("phone-fast"), Link::Ble("phone-slow"), Link::Ble("legacy")]);
        assert_eq!(select(&LINKS, Some("udp-15ms"), "link").unwrap(), vec![Link::Udp(15)]);
        assert_eq!(select(&TOOLS, Some("smpflash"), "tool").unwrap(), vec![Tool::Smpflash]);
        assert_eq!(
            select(&TOOLS, Some("smpclient,smpflash-w1"), "tool").unwrap(),
            vec![Tool::SmpflashW1, Tool::Smpclient]
        );
        assert!(select(&LINKS, Some("wifi"), "link").is_err());
        assert_eq!(select(&FLASHES, None, "flash").unwrap().len(), 2);
    }

    #[test]
    fn sizes_parse_in_kib_and_mib() {
        assert_eq!(parse_sizes("32k, 1m,256").unwrap(), vec![32 * KIB, 1024 * KIB, 256 * KIB]);
        assert!(parse_sizes("0k").is_err());
        assert!(parse_sizes("big").is_err());
    }
}
