//! The cells of the matrix: a transport and the one fault it suffers.

use std::fmt;

/// The medium between client and virtual device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// One frame per datagram over loopback UDP.
    Udp,
    /// Zephyr's console framing over a pty.
    Serial,
    /// SMP over GATT through the simulated radio link.
    Ble,
}

impl Link {
    /// Lower-case name used in labels.
    pub fn name(self) -> &'static str {
        match self {
            Link::Udp => "udp",
            Link::Serial => "serial",
            Link::Ble => "ble",
        }
    }
}

/// What goes wrong in a cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// UDP: this percentage of datagrams is lost, requests and answers alike.
    Loss(u32),
    /// UDP: this percentage of datagrams arrives twice.
    Duplicate(u32),
    /// UDP: this percentage of answers is held back behind the next one.
    Reorder(u32),
    /// Serial: this many bytes per million of the device's output have a bit flipped.
    CorruptBytes(u32),
    /// Serial: this many lines per thousand of the device's output are lost.
    DropLines(u32),
    /// BLE: the link drops every time this many bytes have been written to the device.
    Disconnects(u64),
    /// The device resets (RAM lost, flash kept: a power cut) at a random point of the upload.
    ResetInUpload,
    /// Power fails at a random sector of MCUboot's swap after the DFU's reset.
    PowerLossInSwap,
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Loss(p) => write!(f, "loss-{p}%"),
            Fault::Duplicate(p) => write!(f, "duplicate-{p}%"),
            Fault::Reorder(p) => write!(f, "reorder-{p}%"),
            Fault::CorruptBytes(ppm) => write!(f, "corrupt-{ppm}ppm"),
            Fault::DropLines(pm) => write!(f, "drop-lines-{pm}permille"),
            Fault::Disconnects(bytes) => write!(f, "disconnect-every-{}KiB", bytes / 1024),
            Fault::ResetInUpload => f.write_str("reset-in-upload"),
            Fault::PowerLossInSwap => f.write_str("power-loss-in-swap"),
        }
    }
}

/// One cell: a link and its fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cell {
    /// The medium.
    pub link: Link,
    /// The fault.
    pub fault: Fault,
}

impl Cell {
    /// `link/fault`, e.g. `udp/loss-20%`: what `--cells` filters on.
    pub fn label(&self) -> String {
        format!("{}/{}", self.link.name(), self.fault)
    }

    /// Device profiles a run may pick. Uploads over lossy UDP pay a timeout per lost datagram,
    /// so those cells keep to the nRF5340's large buffers, which need few datagrams.
    pub fn profiles(&self) -> &'static [&'static str] {
        match (self.link, self.fault) {
            (Link::Udp, Fault::Loss(p)) if p >= 5 => &["nrf5340"],
            _ => &["nrf5340", "zephyr-default"],
        }
    }
}

/// Every cell of the matrix, in the order it runs.
pub fn matrix() -> Vec<Cell> {
    use Fault::*;
    use Link::*;
    [
        (Udp, Loss(1)),
        (Udp, Loss(5)),
        (Udp, Loss(20)),
        (Udp, Duplicate(10)),
        (Udp, Reorder(10)),
        (Udp, ResetInUpload),
        (Udp, PowerLossInSwap),
        (Serial, CorruptBytes(300)),
        (Serial, DropLines(10)),
        (Serial, ResetInUpload),
        (Serial, PowerLossInSwap),
        (Ble, Disconnects(64 * 1024)),
        (Ble, ResetInUpload),
        (Ble, PowerLossInSwap),
    ]
    .into_iter()
    .map(|(link, fault)| Cell { link, fault })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_unique_and_filterable() {
        let labels: Vec<String> = matrix().iter().map(Cell::label).collect();
        let mut unique = labels.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), labels.len(), "{labels:?}");
        assert!(labels.contains(&"udp/loss-20%".to_string()));
        assert!(labels.contains(&"ble/disconnect-every-64KiB".to_string()));
    }
}
