//! A private D-Bus message bus: a `dbus-daemon` of our own, so the emulated BlueZ can own
//! `org.bluez` without touching the machine's system bus (and without root).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

/// What to install when `dbus-daemon` is missing.
pub const INSTALL_HINT: &str = "install the D-Bus daemon (Debian/Ubuntu: apt-get install dbus)";

/// A running `dbus-daemon` on a socket in a temporary directory; stopped and cleaned up when
/// dropped.
#[derive(Debug)]
pub struct PrivateBus {
    child: Child,
    address: String,
    dir: PathBuf,
    // Kept open: the daemon must never see its stdout close under it.
    _stdout: BufReader<ChildStdout>,
}

/// The session-bus policy (anyone may own any name) on a socket of our own. The system bus's
/// policy would forbid owning `org.bluez` to anyone but root.
fn config(socket: &Path) -> String {
    format!(
        r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"#,
        socket.display()
    )
}

impl PrivateBus {
    /// Starts a bus and waits until it accepts connections.
    pub fn start() -> std::io::Result<Self> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "smpflash-dbus-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir)?;
        let config_file = dir.join("bus.conf");
        std::fs::write(&config_file, config(&dir.join("socket")))?;
        let spawned = Command::new("dbus-daemon")
            .arg(format!("--config-file={}", config_file.display()))
            .args(["--nofork", "--nopidfile", "--print-address"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            // It warns when it cannot raise its fd limit, which is of no concern for a bus of
            // a few clients; a daemon that fails to start is reported below.
            .stderr(Stdio::null())
            .spawn();
        let mut child = match spawned {
            Ok(c) => c,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                return Err(std::io::Error::new(
                    e.kind(),
                    format!("cannot run dbus-daemon ({e}); {INSTALL_HINT}"),
                ));
            }
        };
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout is piped"));
        // The daemon prints its address once it listens, so reading it is the readiness check.
        let mut line = String::new();
        let read = stdout.read_line(&mut line);
        let address = line.trim().to_string();
        if read.is_err() || address.is_empty() {
            let _ = child.kill();
            let status = child.wait();
            let _ = std::fs::remove_dir_all(&dir);
            return Err(std::io::Error::other(format!(
                "dbus-daemon did not start ({status:?}); {INSTALL_HINT}"
            )));
        }
        Ok(PrivateBus { child, address, dir, _stdout: stdout })
    }

    /// The bus address, e.g. `unix:path=/tmp/smpflash-dbus-1-0/socket,guid=...`: what
    /// `DBUS_SYSTEM_BUS_ADDRESS` must be set to for BlueZ clients to use this bus.
    pub fn address(&self) -> &str {
        &self.address
    }
}

impl Drop for PrivateBus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
