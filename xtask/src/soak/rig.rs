//! What one run needs: a virtual device with the cell's fault, its front end, a connector
//! that opens links to it, and a second, fault-free way in for the final look.

use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use smpflash_ble::GattTransport;
use smpflash_core::mcuboot::ImageVersion;
use smpflash_core::session::Connector;
use smpflash_core::transport::Transport;
use smpflash_serial::SerialTransport;
use smpflash_sim::faults::{DeviceFaults, LinkFaults, Rng};
use smpflash_sim::front::ble::BleFrontEnd;
use smpflash_sim::front::ble_link::LinkParams;
use smpflash_sim::front::pty::{self, PtyOptions, SerialFaults};
use smpflash_sim::front::udp::{self, UdpOptions, UdpServer};
use smpflash_sim::image::slot;
use smpflash_sim::{Device, DeviceOptions, Profile};

use super::cell::{Cell, Fault, Link};

/// Everything a seed decides about a run, so the same seed repeats the same run.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The seed.
    pub seed: u64,
    /// Device profile name.
    pub profile: &'static str,
    /// The new image (a hash-only MCUboot image, version 2.x).
    pub image: Vec<u8>,
    /// Device-level faults.
    pub device_faults: DeviceFaults,
    /// Seed of the link's fault generator.
    pub link_seed: u64,
}

impl Plan {
    /// Draws a run of `cell` from `seed`, with an image length in `image_len`.
    pub fn new(cell: Cell, seed: u64, image_len: &RangeInclusive<usize>) -> Plan {
        let mut rng = Rng::new(seed);
        let mut pick = |range: RangeInclusive<u64>| match range.end() - range.start() {
            u64::MAX => rng.next_u64(),
            span => range.start() + rng.next_u64() % (span + 1),
        };
        let profiles = cell.profiles();
        let profile = profiles[pick(0..=profiles.len() as u64 - 1) as usize];
        let len = pick(*image_len.start() as u64..=*image_len.end() as u64) as usize;
        let minor = pick(1..=200) as u8;
        let fill = pick(0..=u64::MAX);
        // Header (32 bytes) and hash TLV (40 bytes) take 72 bytes of the length.
        let body: Vec<u8> = (0..len.saturating_sub(72) as u64)
            .map(|i| (i.wrapping_mul(0x9E37_79B9).wrapping_add(fill) >> 13) as u8)
            .collect();
        let image = slot::build(ImageVersion { major: 2, minor, revision: 0, build_num: 0 }, &body);
        let sector = 4096;
        let device_faults = match cell.fault {
            Fault::ResetInUpload => DeviceFaults {
                reset_after_upload_bytes: Some(pick(1..=image.len() as u64 - 1)),
                ..Default::default()
            },
            Fault::PowerLossInSwap => DeviceFaults {
                // The swap moves as many sectors as the larger of the two images fills.
                power_loss_after_swap_sectors: Some(
                    pick(0..=(image.len().div_ceil(sector) as u64 - 1)) as usize
                ),
                ..Default::default()
            },
            _ => DeviceFaults::default(),
        };
        let link_seed = pick(0..=u64::MAX);
        Plan { seed, profile, image, device_faults, link_seed }
    }

    /// The device-level fault point, in words.
    pub fn fault_point(&self) -> Option<String> {
        let f = &self.device_faults;
        f.reset_after_upload_bytes
            .map(|b| format!("reset after {b} upload bytes"))
            .or_else(|| f.power_loss_after_swap_sectors.map(|s| format!("power lost after {s} swap sectors")))
    }
}

/// The device of one run, served with the cell's fault.
pub struct Rig {
    /// The virtual device.
    pub device: Arc<Device>,
    /// Opens links through the faulty front end.
    pub connector: Option<Box<dyn Connector>>,
    /// A fault-free UDP front end on the same device, for checking the end state.
    pub check_addr: SocketAddr,
    // The front ends stop when dropped: kept here for the run's length.
    _front: Box<dyn std::any::Any + Send + Sync>,
    _check: UdpServer,
}

/// Builds the device and its front end for `cell` as `plan` says.
pub async fn build(cell: Cell, plan: &Plan) -> std::io::Result<Rig> {
    let profile = Profile::by_name(plan.profile).expect("a built-in profile");
    let options = DeviceOptions { time_scale: 0.0, faults: plan.device_faults.clone(), ..Default::default() };
    let device = Device::new(profile, options)?;
    let localhost: SocketAddr = "127.0.0.1:0".parse().expect("literal");
    let (front, connector): (Box<dyn std::any::Any + Send + Sync>, Box<dyn Connector>) = match cell.link {
        Link::Udp => {
            let pct = |p: u32| f64::from(p) / 100.0;
            let faults = match cell.fault {
                Fault::Loss(p) => LinkFaults { drop: pct(p), ..Default::default() },
                Fault::Duplicate(p) => LinkFaults { duplicate: pct(p), ..Default::default() },
                Fault::Reorder(p) => LinkFaults { reorder: pct(p), ..Default::default() },
                _ => LinkFaults::default(),
            };
            let faults = LinkFaults { seed: plan.link_seed, ..faults };
            let server =
                udp::serve(device.clone(), localhost, UdpOptions { faults, ..Default::default() }).await?;
            let connector = smpflash_udp::UdpConnector::new(server.local_addr().to_string());
            (Box::new(server), Box::new(connector))
        }
        Link::Serial => {
            let faults = match cell.fault {
                Fault::CorruptBytes(ppm) => {
                    SerialFaults { corrupt_byte_rate: f64::from(ppm) / 1e6, ..Default::default() }
                }
                Fault::DropLines(pm) => {
                    SerialFaults { drop_line_rate: f64::from(pm) / 1e3, ..Default::default() }
                }
                _ => SerialFaults::default(),
            };
            let faults = SerialFaults { seed: plan.link_seed, ..faults };
            let server = pty::serve(device.clone(), PtyOptions { faults, ..Default::default() }).await?;
            let connector = PtyConnector(server.path().to_string());
            (Box::new(server), Box::new(connector))
        }
        Link::Ble => {
            // A fast phone link at 50 times real speed: its flow control and fragmentation
            // stay, its waiting mostly goes.
            let mut params = LinkParams::phone_fast().with_time_scale(0.02);
            if let Fault::Disconnects(bytes) = cell.fault {
                params.disconnect_after_bytes = Some(bytes);
            }
            (Box::new(()), Box::new(BleConnector(BleFrontEnd::new(device.clone(), params))))
        }
    };
    let check = udp::serve(device.clone(), localhost, UdpOptions::default()).await?;
    Ok(Rig {
        device,
        connector: Some(connector),
        check_addr: check.local_addr(),
        _front: front,
        _check: check,
    })
}

/// Opens the pty again on every connection, as after unplugging a USB serial adapter.
struct PtyConnector(String);

#[async_trait]
impl Connector for PtyConnector {
    async fn connect(&self) -> smpflash_core::Result<Arc<dyn Transport>> {
        Ok(Arc::new(SerialTransport::open(&self.0, 1_000_000)?))
    }
}

/// Connects to the device over a new simulated BLE link, waiting while it reboots.
struct BleConnector(BleFrontEnd);

#[async_trait]
impl Connector for BleConnector {
    async fn connect(&self) -> smpflash_core::Result<Arc<dyn Transport>> {
        Ok(Arc::new(GattTransport::new(self.0.connect(Duration::from_secs(5)).await?)))
    }
}
