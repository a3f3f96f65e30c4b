//! A D-Bus system bus socket that accepts connections but never answers makes libdbus block;
//! connecting must still give up within the adapter timeout with the "no adapter" error.
//!
//! Its own test binary because it points the whole process at a fake bus.
#![cfg(target_os = "linux")]

use std::os::unix::net::UnixListener;
use std::time::{Duration, Instant};

use smpflash_ble::{scan, ADAPTER_TIMEOUT, NO_ADAPTER};
use smpflash_core::transport::TransportKind;
use smpflash_core::Error;

#[tokio::test]
async fn a_silent_system_bus_fails_within_the_adapter_timeout() {
    let dir = std::env::temp_dir().join(format!("smpflash-ble-silent-bus-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let socket = dir.join("bus");
    let _ = std::fs::remove_file(&socket);
    // Listening without ever accepting: the client's connect succeeds through the backlog and
    // then waits forever for the authentication reply.
    let _listener = UnixListener::bind(&socket).unwrap();
    std::env::set_var("DBUS_SYSTEM_BUS_ADDRESS", format!("unix:path={}", socket.display()));

    let start = Instant::now();
    let result = scan(Duration::from_millis(100)).await;
    let took = start.elapsed();
    let _ = std::fs::remove_file(&socket);
    let _ = std::fs::remove_dir(&dir);

    match result {
        Err(Error::Transport(m)) => {
            assert_eq!(m.kind, TransportKind::NoAdapter, "{m}");
            assert!(m.to_string().starts_with(NO_ADAPTER), "{m}");
            println!("{m} (after {took:?})");
        }
        Err(e) => panic!("unexpected error: {e}"),
        Ok(_) => panic!("a silent bus cannot list devices"),
    }
    assert!(took < ADAPTER_TIMEOUT + Duration::from_secs(2), "took {took:?}");
}
