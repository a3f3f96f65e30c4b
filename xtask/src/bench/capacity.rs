//! The analytic limits a measured upload is compared with: what the link can carry, what the
//! device's flash can take, and the best any client can do on this device. The formulas are
//! explained, with worked numbers, in docs/performance.md.

use smpflash_sim::front::ble_link::LinkParams;
use smpflash_sim::Profile;

use super::matrix::Link;

/// SMP header in front of every request's CBOR body.
const SMP_HEADER: usize = 8;

/// Packet bytes one full console line carries: 124 base64 characters.
const SERIAL_LINE_PAYLOAD: usize = 93;

/// Bytes a console line adds to its base64 text: the 2-byte marker and the newline.
const SERIAL_LINE_FRAMING: usize = 3;

/// Length field and CRC16 around each frame in a console packet.
const SERIAL_PACKET_OVERHEAD: usize = 4;

/// UART bits per byte (8N1: start, 8 data, stop), as the virtual device paces its pty.
const UART_BITS_PER_BYTE: f64 = 10.0;

/// Bytes of a CBOR head (major type and argument) for the value or length `v`.
fn cbor_head(v: u64) -> usize {
    match v {
        0..=23 => 1,
        24..=0xFF => 2,
        0x100..=0xFFFF => 3,
        0x1_0000..=0xFFFF_FFFF => 5,
        _ => 9,
    }
}

/// Bytes of a CBOR text string `s` used as a map key.
fn cbor_key(s: &str) -> usize {
    cbor_head(s.len() as u64) + s.len()
}

/// Bytes of an upload request around its data, for `n` data bytes at `off` of an image of
/// `len` bytes: the SMP header and a CBOR map of `off` and `data`, plus `len` on the first
/// request, which is all Zephyr requires (`image`, `sha` and `upgrade` are optional).
pub fn request_overhead(off: u64, n: usize, len: u64) -> usize {
    let first = off == 0;
    let entries = if first { 3 } else { 2 };
    let len_entry = if first { cbor_key("len") + cbor_head(len) } else { 0 };
    SMP_HEADER
        + cbor_head(entries)
        + len_entry
        + cbor_key("off")
        + cbor_head(off)
        + cbor_key("data")
        + cbor_head(n as u64)
}

/// Most data bytes a request at `off` can carry in a frame of at most `frame` bytes.
pub fn max_chunk(frame: usize, off: u64, len: u64) -> usize {
    // The data's own length head depends on the data length: try the largest that fits.
    let room = frame.saturating_sub(request_overhead(off, 0, len) - 1);
    (room.saturating_sub(9)..=room).rev().find(|&n| request_overhead(off, n, len) + n <= frame).unwrap_or(0)
}

/// The frames (whole request sizes) of an upload of `len` bytes in frames of at most `frame`
/// bytes, each carrying as much data as fits.
pub fn request_frames(len: u64, frame: usize) -> Vec<usize> {
    let mut frames = Vec::new();
    let mut off = 0u64;
    while off < len {
        let n = max_chunk(frame, off, len).min((len - off) as usize);
        assert!(n > 0, "a {frame}-byte frame cannot carry upload data");
        frames.push(request_overhead(off, n, len) + n);
        off += n as u64;
    }
    frames
}

/// Bytes on the wire for one frame in Zephyr's console framing: a packet of length, frame and
/// CRC, base64-encoded, cut into lines of at most 93 packet bytes, each with its 2-byte marker
/// and newline.
pub fn serial_wire_bytes(frame: usize) -> usize {
    let packet = frame + SERIAL_PACKET_OVERHEAD;
    4 * packet.div_ceil(3) + SERIAL_LINE_FRAMING * packet.div_ceil(SERIAL_LINE_PAYLOAD)
}

/// Image bytes per second a UART at `baud` carries from client to device when every request
/// fills a frame of `frame` bytes and requests follow each other without a gap.
pub fn serial_bytes_per_s(baud: u32, frame: usize, len: u64) -> f64 {
    let wire: usize = request_frames(len, frame).into_iter().map(serial_wire_bytes).sum();
    len as f64 * (baud as f64 / UART_BITS_PER_BYTE) / wire as f64
}

/// Image bytes per second over UDP with `window` requests in flight, each a full frame of
/// `frame` bytes, each answered one `rtt` after it was sent; `None` without a round trip.
pub fn udp_bytes_per_s(rtt_s: f64, window: usize, frame: usize, len: u64) -> Option<f64> {
    if rtt_s <= 0.0 {
        return None;
    }
    let requests = request_frames(len, frame).len();
    Some(len as f64 * window as f64 / (requests as f64 * rtt_s))
}

/// The device's flash in the time scale it runs at.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FlashModel {
    pub sector_size: usize,
    /// Seconds to erase one sector.
    pub erase_s: f64,
    /// Seconds to program one byte.
    pub program_s: f64,
}

impl FlashModel {
    pub fn of(profile: &Profile, time_scale: f64) -> Self {
        FlashModel {
            sector_size: profile.flash.sector_size,
            erase_s: profile.flash.erase_per_sector.as_secs_f64() * time_scale,
            program_s: profile.flash.program_per_byte.as_secs_f64() * time_scale,
        }
    }

    /// Bytes per second the flash takes when every sector is erased and then programmed:
    /// `sector / (erase + sector × program)`; `None` for flash that takes no time.
    pub fn bytes_per_s(&self) -> Option<f64> {
        let per_byte = self.program_s + self.erase_s / self.sector_size as f64;
        (per_byte > 0.0).then(|| 1.0 / per_byte)
    }

    /// What the device erases when an upload of `len` bytes starts on a slot that is not
    /// blank: the sectors the image will occupy and the trailer's sector.
    pub fn upfront_erase_s(&self, len: u64) -> f64 {
        (len.div_ceil(self.sector_size as u64) + 1) as f64 * self.erase_s
    }
}

/// The limits of one upload: link, flash, and what they allow together.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Image bytes per second the link carries (for BLE: ATT value bytes); `None`: no limit
    /// that can be computed (UDP without added round trip).
    pub link: Option<f64>,
    /// Bytes per second the flash takes, erase included; `None`: flash takes no time.
    pub flash: Option<f64>,
    /// `min(link, flash)`: the capacity ratios are quoted against.
    pub capacity: Option<f64>,
    /// Image bytes per second of the best upload this device allows. Erasing up front, it
    /// erases the image's sectors before taking the first chunk, then programs chunk by chunk
    /// while the link brings the next ones: `len / (erase + max(len / link, len × program))`.
    /// Erasing progressively, erasing overlaps the link too: `len / max(len / link, erase + len
    /// × program)`, which is `min(link, flash)`.
    pub bound: Option<f64>,
}

/// The device every bench run talks to, and the frame limits the capacities assume.
#[derive(Debug, Clone)]
pub struct Device {
    pub profile: Profile,
    /// Path MTU of the UDP links, the same for every tool: datagrams carry at most this minus
    /// the IPv4 and UDP headers.
    pub udp_mtu: usize,
}

/// IPv4 and UDP headers: what a datagram's payload leaves of the path MTU.
pub const IPV4_UDP_HEADERS: usize = 28;

impl Device {
    /// Largest request a serial console delivers to the device: its packet (frame, length and
    /// CRC) fills one SMP buffer.
    pub fn serial_frame(&self) -> usize {
        self.profile.buf_size - SERIAL_PACKET_OVERHEAD
    }

    /// Largest request that travels as one datagram: one SMP buffer, within the path MTU.
    pub fn udp_frame(&self) -> usize {
        self.profile.buf_size.min(self.udp_mtu - IPV4_UDP_HEADERS)
    }

    /// Requests in flight the device's buffers allow: one buffer is kept for the answer.
    pub fn window(&self) -> usize {
        self.profile.buf_count.saturating_sub(1).max(1)
    }

    pub fn limits(&self, link: Link, time_scale: f64, len: u64) -> Limits {
        let link_rate = match link {
            Link::Ble(name) => Some(
                LinkParams::by_name(name).expect("bench links are known BLE profiles").capacity_bytes_per_s(),
            ),
            Link::Serial(baud) => Some(serial_bytes_per_s(baud, self.serial_frame(), len)),
            Link::Udp(rtt_ms) => {
                udp_bytes_per_s(rtt_ms as f64 / 1000.0, self.window(), self.udp_frame(), len)
            }
        };
        let flash = FlashModel::of(&self.profile, time_scale);
        let flash_rate = flash.bytes_per_s();
        let capacity = match (link_rate, flash_rate) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let transfer = link_rate.map_or(0.0, |r| len as f64 / r);
        let program = len as f64 * flash.program_s;
        let erase = flash.upfront_erase_s(len);
        let best = if self.profile.erase_progressively {
            transfer.max(erase + program)
        } else {
            erase + transfer.max(program)
        };
        let bound = (best > 0.0).then(|| len as f64 / best);
        Limits { link: link_rate, flash: flash_rate, capacity, bound }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nrf5340() -> Device {
        let mut profile = Profile::by_name("nrf5340").unwrap();
        profile.apply_override("slot_size=0x120000").unwrap();
        Device { profile, udp_mtu: 1500 }
    }

    #[test]
    fn a_full_later_request_of_2475_bytes_carries_2449_data_bytes() {
        // 8 header + map(2) 1 + "off" 4 + off (>= 65536) 5 + "data" 5 + bstr head 3 = 26.
        assert_eq!(request_overhead(100_000, 2449, 1 << 20), 26);
        assert_eq!(max_chunk(2475, 100_000, 1 << 20), 2449);
        // Below 65536 the offset takes 3 bytes, leaving 2 more for data.
        assert_eq!(max_chunk(2475, 4096, 1 << 20), 2451);
        // The first request also says `len`: "len" 4 + 1 MiB 5 bytes.
        assert_eq!(max_chunk(2475, 0, 1 << 20), 2451 - 9 + 2);
    }

    #[test]
    fn chunk_sizes_agree_with_the_upload_engine() {
        use serde_bytes::ByteBuf;
        use smpflash_core::command::image::ImageUpload;
        for frame in [64, 256, 384, 1472, 2471, 2475, 70_000] {
            for off in [0u64, 1, 23, 24, 255, 256, 65_535, 65_536, 1 << 20, 1 << 33] {
                let len = 1u64 << 34;
                let template = ImageUpload {
                    len: (off == 0).then_some(len),
                    off,
                    data: ByteBuf::new(),
                    ..Default::default()
                };
                let engine = smpflash_core::upload::max_data_len(frame, &template).unwrap();
                assert_eq!(max_chunk(frame, off, len), engine, "frame {frame} off {off}");
            }
        }
    }

    #[test]
    fn serial_wire_bytes_match_the_worked_examples_and_the_codec() {
        // docs/serial.md: a 10-byte frame is one 23-byte line; a 500-byte frame is five full
        // lines of 127 bytes and one of 55.
        assert_eq!(serial_wire_bytes(10), 23);
        assert_eq!(serial_wire_bytes(500), 5 * 127 + 55);
        // A 2471-byte frame: 2475-byte packet, 3300 base64 characters on 27 lines.
        assert_eq!(serial_wire_bytes(2471), 3300 + 27 * 3);
        for frame in [1, 2, 89, 90, 91, 256, 2471, 65_533] {
            assert_eq!(serial_wire_bytes(frame), smpflash_serial::codec::encoded_len(frame), "{frame}");
        }
    }

    #[test]
    fn serial_capacity_for_a_known_frame_size() {
        // One 2471-byte frame of a 2442-byte image: 2442 + 29 overhead (header 8, map 1,
        // "len" 4 + 3, "off" 4 + 1, "data" 5 + 3) fills it and costs 3381 wire bytes.
        let len = 2442;
        assert_eq!(request_frames(len, 2471), vec![2471]);
        let rate = serial_bytes_per_s(115_200, 2471, len);
        assert!((rate - 2442.0 * 11_520.0 / 3381.0).abs() < 1e-6, "{rate}");
        // Over a whole 256 KiB image with the nrf5340 buffers, close to the steady state of
        // 2445 data bytes (26 overhead) per 3381 wire bytes.
        let d = nrf5340();
        let rate = serial_bytes_per_s(1_000_000, d.serial_frame(), 256 * 1024);
        assert!((rate / 100_000.0 - 2445.0 / 3381.0).abs() < 0.0005, "{rate}");
    }

    #[test]
    fn udp_capacity_is_the_window_of_full_frames_per_round_trip() {
        let d = nrf5340();
        assert_eq!(d.window(), 3);
        // 10 full requests of 2449 bytes take 4 round trips of 3 requests: 10 × 2449 / 4 / RTT
        // would be the per-round-trip view; the formula spreads requests evenly.
        let len = 10 * 2449;
        let frames = request_frames(len, 2475);
        assert_eq!(frames.len(), 10);
        let rate = udp_bytes_per_s(0.015, 3, 2475, len).unwrap();
        assert!((rate - len as f64 * 3.0 / (10.0 * 0.015)).abs() < 1e-6);
        assert_eq!(udp_bytes_per_s(0.0, 3, 2475, len), None);
        // An Ethernet path MTU keeps datagrams to 1472 bytes; a larger one lets a buffer fill.
        assert_eq!(d.udp_frame(), 1472);
        assert_eq!(Device { udp_mtu: 9000, ..d }.udp_frame(), 2475);
    }

    #[test]
    fn nrf5340_flash_takes_about_32_kb_per_second() {
        let d = nrf5340();
        let f = FlashModel::of(&d.profile, 1.0);
        // 4096 / (85 ms + 4096 × 10.25 µs) = 4096 / 126.984 ms.
        let rate = f.bytes_per_s().unwrap();
        assert!((rate - 4096.0 / 0.126_984).abs() < 1.0, "{rate}");
        assert_eq!(FlashModel::of(&d.profile, 0.0).bytes_per_s(), None);
        // 256 KiB: 64 sectors plus the trailer's.
        assert!((f.upfront_erase_s(256 * 1024) - 65.0 * 0.085).abs() < 1e-9);
    }

    #[test]
    fn capacity_is_the_lower_of_link_and_flash() {
        let d = nrf5340();
        let len = 256 * 1024;
        let fast = d.limits(Link::Ble("phone-fast"), 0.0, len);
        assert_eq!(fast.capacity, Some(99_000.0));
        assert_eq!(fast.flash, None);
        assert!((fast.bound.unwrap() - 99_000.0).abs() < 1e-6);
        let real = d.limits(Link::Ble("phone-fast"), 1.0, len);
        assert_eq!(real.capacity, real.flash);
        assert!(real.bound.unwrap() < real.capacity.unwrap());
        // Where link and flash are close (phone-slow), erasing up front leaves the link idle
        // for 5.6 s; erasing progressively overlaps it, and only the trailer's extra sector
        // keeps the bound under the flash's rate. (Where the flash is far slower than the link
        // it is the bound either way.)
        let upfront = d.limits(Link::Ble("phone-slow"), 1.0, len);
        let mut progressive = d.clone();
        progressive.profile.apply_override("erase_progressively=true").unwrap();
        let p = progressive.limits(Link::Ble("phone-slow"), 1.0, len);
        let flash = p.flash.unwrap();
        assert!(p.bound.unwrap() < flash && p.bound.unwrap() > 0.98 * flash, "{p:?}");
        assert!(upfront.bound.unwrap() < 0.6 * flash, "{upfront:?}");
        let loopback = d.limits(Link::Udp(0), 0.0, len);
        assert_eq!((loopback.link, loopback.capacity, loopback.bound), (None, None, None));
    }
}
