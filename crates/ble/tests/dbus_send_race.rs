//! The D-Bus glue under btleplug sends what it queued, and says so.
//!
//! dbus-tokio 0.7.6 reports "Failed to send message" for a send made while an earlier message
//! waits for its I/O task, though the message is queued and goes out anyway (CI once lost a BLE
//! service discovery to it), and it never watches the socket for writability, so a message
//! larger than the socket buffer stalls half-written. The workspace patches both
//! (`vendor/dbus-tokio/PATCHED.md`); this test holds the patch in place, over a real
//! `dbus-daemon`.
//!
//! Needs `dbus-daemon` (`.ci/run` installs it).
#![cfg(target_os = "linux")]

use std::time::Duration;

use dbus::channel::Channel;
use dbus::nonblock::{Proxy, SyncConnection};
use smpflash_sim::front::bluez::PrivateBus;

/// Longer than a Unix socket's buffer, so libdbus cannot write it at once and leaves it queued
/// for the I/O task.
const QUEUED_ARGUMENT_LEN: usize = 1 << 20;

#[test]
fn a_call_made_while_another_waits_to_be_written_is_sent() {
    let bus = PrivateBus::start().unwrap_or_else(|e| panic!("{e}"));
    // One thread: the I/O task cannot run between the two sends below, which makes the race
    // certain instead of likely.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let mut channel = Channel::open_private(bus.address()).expect("connect to the private bus");
        channel.register().expect("register on the private bus");
        let (io, connection) = dbus_tokio::connection::from_channel::<SyncConnection>(channel).unwrap();
        tokio::spawn(io);
        let daemon = Proxy::new("org.freedesktop.DBus", "/", Duration::from_secs(10), connection);
        // One round trip first, so the I/O task has been polled and waits like it does mid-run.
        let _: (String,) = daemon.method_call("org.freedesktop.DBus", "GetId", ()).await.unwrap();

        // `method_call` sends at once, so both calls go out before this task yields: the first
        // one stays queued for the I/O task, and the second one is sent while the I/O task is
        // woken but not yet run.
        let long_name = "x".repeat(QUEUED_ARGUMENT_LEN);
        let queued =
            daemon.method_call::<(String,), _, _, _>("org.freedesktop.DBus", "GetNameOwner", (long_name,));
        let second = daemon.method_call::<(String,), _, _, _>("org.freedesktop.DBus", "GetId", ());
        let (queued, second) = tokio::join!(queued, second);

        let id = second.unwrap_or_else(|e| panic!("the second call was refused: {e}"));
        assert_eq!(id.0.len(), 32, "the daemon's id: {id:?}");
        // The long message went out whole: the daemon read it and answered that nobody owns it.
        let refusal = queued.expect_err("nobody owns a name of a million x");
        assert_eq!(refusal.name(), Some("org.freedesktop.DBus.Error.NameHasNoOwner"), "{refusal:?}");
    });
    drop(runtime);
    drop(bus);
}
