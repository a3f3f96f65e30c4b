//! `NativeSim`: the virtual device in-process, served over UDP and, on request, a pty and as a
//! BlueZ peripheral on a private D-Bus bus, for tests that need a device (the Python
//! `VirtualDevice`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use smpflash_sim::faults::DeviceFaults;
use smpflash_sim::front::ble_link::{BleLinkProfile, LinkParams};
use smpflash_sim::front::bluez::{self, BluezOptions, BluezServer, PrivateBus};
use smpflash_sim::front::pty::{self, PtyOptions, PtyServer};
use smpflash_sim::front::udp::{self, UdpOptions, UdpServer};
use smpflash_sim::profile::SimProfile;
use smpflash_sim::{Device, DeviceOptions, Profile};

use crate::runtime;

struct Servers {
    _udp: Option<UdpServer>,
    _pty: Option<PtyServer>,
    // The server leaves the bus before the bus (a dbus-daemon child) stops: fields drop in order.
    _bluez: Option<BluezServer>,
    _bus: Option<PrivateBus>,
}

/// A running virtual device (`smpflash._native.NativeSim`); it stops at `close()` or when
/// dropped.
#[pyclass(module = "smpflash._native", frozen)]
pub struct NativeSim {
    device: Arc<Device>,
    servers: Mutex<Option<Servers>>,
    udp: Option<String>,
    pty: Option<String>,
    dbus: Option<String>,
    ble_name: Option<String>,
}

impl Drop for NativeSim {
    fn drop(&mut self) {
        // The servers' sockets belong to the runtime's reactor: let go of them inside it.
        let _guard = runtime().enter();
        drop(self.servers.get_mut().unwrap_or_else(|e| e.into_inner()).take());
    }
}

#[pymethods]
impl NativeSim {
    /// Builds the device from `profile` (with `overrides`, `KEY=VALUE` as `smpflash sim --set`)
    /// and serves it on `udp` (an address, port 0 for a free one), with `pty` on a pty, and with
    /// `bluez` (a BLE link name, `ble-phone-fast`, …) as `org.bluez` on a private D-Bus bus, as
    /// `smpflash sim --bluez` does.
    #[new]
    #[pyo3(signature = (profile, udp, pty, pty_baud=None, time_scale=1.0, overrides=Vec::new(), state=None,
        test_image_crashes=false, reset_after_upload_bytes=None, power_loss_after_swap_sectors=None,
        bluez=None, ble_name=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        profile: &str,
        udp: Option<String>,
        pty: bool,
        pty_baud: Option<u32>,
        time_scale: f64,
        overrides: Vec<String>,
        state: Option<PathBuf>,
        test_image_crashes: bool,
        reset_after_upload_bytes: Option<u64>,
        power_loss_after_swap_sectors: Option<usize>,
        bluez: Option<String>,
        ble_name: Option<String>,
    ) -> PyResult<Self> {
        let bluez = bluez
            .map(|name| {
                let profile = name.strip_prefix("ble-").unwrap_or(&name);
                LinkParams::by_name(profile).ok_or_else(|| {
                    let names: Vec<String> = BleLinkProfile::ALL.iter().map(|p| format!("ble-{p}")).collect();
                    PyValueError::new_err(format!("unknown BLE link {name:?}: {}", names.join(", ")))
                })
            })
            .transpose()?;
        let kind: SimProfile = profile.parse().map_err(|e| PyValueError::new_err(format!("profile: {e}")))?;
        let profile = Profile::with_overrides(kind, &overrides).map_err(PyValueError::new_err)?;
        let bind: Option<SocketAddr> = udp
            .map(|a| a.parse().map_err(|e| PyValueError::new_err(format!("udp address {a:?}: {e}"))))
            .transpose()?;
        let options = DeviceOptions {
            time_scale,
            state_file: state,
            faults: DeviceFaults {
                reset_after_upload_bytes,
                power_loss_after_swap_sectors,
                test_image_crashes,
            },
        };
        let device = Device::new(profile, options)
            .map_err(|e| PyValueError::new_err(format!("cannot start the virtual device: {e}")))?;
        let served = py.detach(|| {
            runtime().block_on(async {
                let udp = match bind {
                    Some(addr) => Some(
                        udp::serve(device.clone(), addr, UdpOptions::default())
                            .await
                            .map_err(|e| format!("cannot serve UDP on {addr}: {e}"))?,
                    ),
                    None => None,
                };
                let pty = if pty {
                    let options = PtyOptions { baud: pty_baud, ..Default::default() };
                    Some(
                        pty::serve(device.clone(), options)
                            .await
                            .map_err(|e| format!("cannot open a pty: {e}"))?,
                    )
                } else {
                    None
                };
                let (bluez, bus) = match bluez {
                    Some(link) => {
                        let bus = PrivateBus::start()
                            .map_err(|e| format!("cannot start a private D-Bus bus: {e}"))?;
                        let mut options = BluezOptions { link, ..Default::default() };
                        if let Some(name) = ble_name {
                            options.device_name = name;
                        }
                        let server = bluez::serve(device.clone(), options, bus.address())
                            .await
                            .map_err(|e| format!("cannot serve org.bluez on {}: {e}", bus.address()))?;
                        (Some(server), Some(bus))
                    }
                    None => (None, None),
                };
                Ok::<_, String>(Servers { _udp: udp, _pty: pty, _bluez: bluez, _bus: bus })
            })
        });
        let servers = served.map_err(PyRuntimeError::new_err)?;
        let udp = servers._udp.as_ref().map(|s| s.local_addr().to_string());
        let pty = servers._pty.as_ref().map(|s| s.path().to_string());
        let dbus = servers._bus.as_ref().map(|b| b.address().to_string());
        let ble_name = servers._bluez.as_ref().map(|b| b.device_name().to_string());
        Ok(NativeSim { device, servers: Mutex::new(Some(servers)), udp, pty, dbus, ble_name })
    }

    /// `HOST:PORT` of the UDP server.
    #[getter]
    fn udp_address(&self) -> Option<String> {
        self.udp.clone()
    }

    /// The pty's path.
    #[getter]
    fn pty_path(&self) -> Option<String> {
        self.pty.clone()
    }

    /// The private bus's address, for `DBUS_SYSTEM_BUS_ADDRESS`.
    #[getter]
    fn dbus_address(&self) -> Option<String> {
        self.dbus.clone()
    }

    /// The name the device advertises over the emulated BlueZ.
    #[getter]
    fn ble_name(&self) -> Option<String> {
        self.ble_name.clone()
    }

    /// The profile's name.
    #[getter]
    fn profile(&self) -> String {
        self.device.profile().name.to_string()
    }

    /// Whether the SMP server is up (false while the device resets and boots).
    fn is_up(&self) -> bool {
        self.device.is_up()
    }

    /// Stops serving. Closing twice is harmless.
    fn close(&self, py: Python<'_>) {
        let servers = self.servers.lock().unwrap_or_else(|e| e.into_inner()).take();
        py.detach(|| {
            let _guard = runtime().enter();
            drop(servers);
        });
    }
}
