//! Turning the connection options into a [`Session`]: UDP, serial, BLE, or the built-in virtual
//! device over one of its simulated media.

use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use smpflash_ble::{BleConnector, ConnectOptions};
use smpflash_core::session::{Connector, Session};
use smpflash_serial::{Framing, SerialConnector};
#[cfg(feature = "sim")]
use smpflash_sim::connect::{SimConnector, SimLink, SimOptions, SimStartError};
#[cfg(feature = "sim")]
use smpflash_sim::profile::SimProfile;
use smpflash_udp::UdpConnector;

use crate::exit::{Code, Failure};

// Without the virtual device (`--no-default-features`), `--sim` and `--sim-link` still parse, so
// that using them says what this build lacks instead of "unexpected argument".
#[cfg(not(feature = "sim"))]
type SimProfile = String;
#[cfg(not(feature = "sim"))]
type SimLink = String;

/// The device to talk to: at most one of `--udp`, `--serial`, `--ble` and `--sim` (clap
/// refuses two; commands that need a device say so when none is given).
#[derive(Args, Debug, Clone)]
#[group(id = "link", multiple = false)]
pub struct LinkArgs {
    /// UDP: HOST or HOST:PORT (port 1337 by default).
    #[arg(long, env = "SMPFLASH_UDP", value_name = "HOST[:PORT]")]
    pub udp: Option<String>,
    /// Serial: a port (/dev/ttyACM0, COM3), a pty path, or tcp://HOST:PORT.
    #[arg(long, env = "SMPFLASH_SERIAL", value_name = "PATH")]
    pub serial: Option<String>,
    /// BLE: the device's name or address.
    #[arg(long, env = "SMPFLASH_BLE", value_name = "NAME|ADDRESS")]
    pub ble: Option<String>,
    /// The built-in virtual device (no hardware): `--sim` for an nRF5340, `--sim=PROFILE` for
    /// another profile.
    #[arg(long, env = "SMPFLASH_SIM", value_name = "PROFILE", num_args = 0..=1, require_equals = true, default_missing_value = "nrf5340")]
    pub sim: Option<SimProfile>,
}

/// One chosen link, from [`LinkArgs`].
enum Link<'a> {
    Udp(&'a str),
    Serial(&'a str),
    Ble(&'a str),
    Sim(&'a SimProfile),
}

impl LinkArgs {
    /// The link given, if any; clap has already refused more than one.
    fn chosen(&self) -> Option<Link<'_>> {
        let Self { udp, serial, ble, sim } = self;
        udp.as_deref()
            .map(Link::Udp)
            .or(serial.as_deref().map(Link::Serial))
            .or(ble.as_deref().map(Link::Ble))
            .or(sim.as_ref().map(Link::Sim))
    }
}

/// How to reach the device, and how to talk over the link.
#[derive(Args, Debug, Clone)]
pub struct Connection {
    #[command(flatten)]
    link: LinkArgs,
    /// Serial baud rate.
    #[arg(long, env = "SMPFLASH_BAUD", default_value_t = 115_200)]
    pub baud: u32,
    /// Serial framing: console (base64 lines, Zephyr's UART transport, MCUboot), raw (bare
    /// frames, Zephyr's raw UART transport), shell (the console framing through Zephyr's shell).
    /// Default: detected, console first (-v says which).
    #[arg(long, env = "SMPFLASH_FRAMING", value_enum)]
    pub framing: Option<Framing>,
    /// Serial: pause this many milliseconds after each line of a multi-line packet, for devices
    /// whose UART receive buffer overflows when lines arrive back to back (USB CDC ACM, small
    /// RX pools). Off by default.
    #[arg(long, env = "SMPFLASH_LINE_DELAY", value_name = "MS")]
    pub line_delay: Option<u64>,
    /// How to reach the virtual device.
    #[arg(long, env = "SMPFLASH_SIM_LINK", default_value = "ble-phone-fast")]
    pub sim_link: SimLink,
    /// Override a field of the virtual device's profile, as `smpflash sim --set` does, e.g.
    /// --sim-set slot_size=0x120000 (repeatable).
    #[arg(long, env = "SMPFLASH_SIM_SET", value_name = "KEY=VALUE", value_delimiter = ',')]
    pub sim_set: Vec<String>,
    /// Flash time of the virtual device: 1 real time, 0 none.
    #[arg(long, env = "SMPFLASH_SIM_TIME_SCALE", default_value_t = 1.0)]
    pub sim_time_scale: f64,
    /// Keep the virtual device's flash in this file between runs.
    #[arg(long, env = "SMPFLASH_SIM_STATE", value_name = "FILE")]
    pub sim_state: Option<std::path::PathBuf>,
    /// BLE: the ATT MTU to assume when the platform does not report it. Serial: the largest
    /// SMP frame to send (default: the device's buffer size less 4). UDP: the IP MTU of the path
    /// (default 1500; more lets datagrams up to the device's buffer size be IP-fragmented).
    #[arg(long, env = "SMPFLASH_MTU")]
    pub mtu: Option<usize>,
    /// Seconds to wait for an ordinary request's answer (and for all copies of a retried read
    /// together). Slow commands wait longer by their own defaults, never less than this: image
    /// erase 60 s, image state write 10 s, an image upload's first chunk 60 s, an fs upload's 10 s
    /// (docs/cli.md, Timeouts).
    #[arg(long, env = "SMPFLASH_TIMEOUT", default_value_t = 5.0)]
    pub timeout: f64,
}

/// An open session (the in-process virtual device's servers live in its connector).
pub struct Connected {
    /// The session.
    pub session: Session,
    /// Over serial: the connector (which knows the framing it found) and whether lines are
    /// paced (`--line-delay`).
    serial: Option<(Arc<SerialConnector>, bool)>,
}

/// Said after a timeout over an unpaced serial console; see [`pacing_advice`].
pub const PACING_ADVICE: &str = "if short requests (smpflash echo) are answered and longer ones \
     are not, the device's UART loses lines that arrive back to back: try --line-delay 10";

/// What to add to a failure over a serial link: a timeout over the console framing without
/// `--line-delay` is what a UART with few receive buffers (USB CDC ACM, a small RX pool)
/// produces, as it takes a one-line request and loses the lines of a long one. `framing` is
/// what the connector found; `None` (nothing answered) is a different failure.
pub fn pacing_advice(code: Code, framing: Option<Framing>, paced: bool) -> Option<&'static str> {
    let lines = matches!(framing, Some(f) if !f.is_raw());
    (code == Code::Timeout && lines && !paced).then_some(PACING_ADVICE)
}

impl Connected {
    /// `failure`, with advice about this link when there is some ([`pacing_advice`]).
    pub fn advise(&self, mut failure: Failure) -> Failure {
        if let Some((connector, paced)) = &self.serial {
            if let Some(advice) = pacing_advice(failure.code, connector.framing(), *paced) {
                failure.message = format!("{}; {advice}", failure.message);
            }
        }
        failure
    }

    /// Ends the link (over BLE: disconnects), waiting at most `limit`. Called on every way out
    /// of a command, success, failure or Ctrl-C; a failure to close changes no outcome, so it
    /// is only logged.
    pub async fn close(self, limit: Duration) {
        match tokio::time::timeout(limit, self.session.close()).await {
            Ok(Ok(())) => tracing::debug!("link closed"),
            Ok(Err(e)) => tracing::debug!("closing the link failed: {e}"),
            Err(_) => tracing::debug!("closing the link took longer than {} s", limit.as_secs()),
        }
    }
}

fn usage(message: impl Into<String>) -> Failure {
    Failure { code: Code::Usage, message: message.into() }
}

impl Connection {
    fn timeout(&self) -> Duration {
        Duration::from_secs_f64(self.timeout.max(0.05))
    }

    /// Opens the connection the options describe.
    pub async fn open(&self) -> std::result::Result<Connected, Failure> {
        let mut serial = None;
        let connector: Box<dyn Connector> = match self.link.chosen() {
            None => {
                return Err(usage(
                    "say how to reach the device: --udp HOST, --serial PATH, --ble NAME or --sim",
                ))
            }
            Some(Link::Udp(target)) => Box::new(match self.mtu {
                // An IP MTU above the path's makes the stack fragment datagrams: opt-in only.
                Some(mtu) => UdpConnector::new(target.to_string()).with_path_mtu(mtu),
                None => UdpConnector::new(target.to_string()),
            }),
            Some(Link::Serial(path)) => {
                let connector = Arc::new(
                    SerialConnector::new(path, self.baud)
                        .with_max_frame(self.mtu)
                        .with_line_delay(self.line_delay.map(Duration::from_millis))
                        .with_framing(self.framing),
                );
                serial = Some((connector.clone(), self.line_delay.is_some_and(|ms| ms > 0)));
                Box::new(connector)
            }
            Some(Link::Ble(target)) => {
                Box::new(BleConnector::new(target, ConnectOptions { mtu: self.mtu, ..Default::default() }))
            }
            Some(Link::Sim(profile)) => self.virtual_device(profile).await?,
        };
        let session = Session::open(connector, self.timeout()).await.map_err(Failure::from)?;
        Ok(Connected { session, serial })
    }

    #[cfg(feature = "sim")]
    async fn virtual_device(&self, profile: &SimProfile) -> std::result::Result<Box<dyn Connector>, Failure> {
        let options = SimOptions {
            profile: *profile,
            overrides: self.sim_set.clone(),
            time_scale: self.sim_time_scale,
            state_file: self.sim_state.clone(),
            link: self.sim_link,
            mtu: self.mtu,
        };
        let connector = SimConnector::start(&options).await.map_err(|e| {
            let code = match e {
                SimStartError::Profile(_) | SimStartError::Device(_) => Code::Failure,
                SimStartError::Udp(_) | SimStartError::Pty(_) => Code::Connection,
            };
            Failure { code, message: e.to_string() }
        })?;
        Ok(Box::new(connector))
    }

    #[cfg(not(feature = "sim"))]
    async fn virtual_device(&self, _: &SimProfile) -> std::result::Result<Box<dyn Connector>, Failure> {
        Err(crate::exit::without_sim())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pacing_is_advised_after_a_timeout_over_an_unpaced_console() {
        for framing in [Framing::Console, Framing::Shell] {
            assert_eq!(pacing_advice(Code::Timeout, Some(framing), false), Some(PACING_ADVICE));
        }
        // Already paced, raw frames (no lines), nothing found (nothing answered at all), or
        // another failure: nothing to add.
        assert_eq!(pacing_advice(Code::Timeout, Some(Framing::Console), true), None);
        assert_eq!(pacing_advice(Code::Timeout, Some(Framing::Raw), false), None);
        assert_eq!(pacing_advice(Code::Timeout, None, false), None);
        assert_eq!(pacing_advice(Code::DeviceRejected, Some(Framing::Console), false), None);
    }
}
