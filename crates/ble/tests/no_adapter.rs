//! Without Bluetooth (no controller, or on Linux no BlueZ / no D-Bus system bus) every entry
//! point must fail fast with an error that says so, not hang or fail obscurely.

use std::time::{Duration, Instant};

use smpflash_ble::{scan, BtleplugLink, ConnectOptions, NO_ADAPTER};
use smpflash_core::transport::TransportKind;
use smpflash_core::Error;

/// Generous against the 3 s adapter timeout, tight against a hang.
const FAST: Duration = Duration::from_secs(8);

fn check<T>(what: &str, result: smpflash_core::Result<T>, took: Duration) {
    assert!(took < FAST, "{what} took {took:?}");
    match result {
        Err(Error::Transport(m))
            if m.kind == TransportKind::NoAdapter && m.to_string().starts_with(NO_ADAPTER) =>
        {
            println!("{what}: {m} (after {took:?})");
        }
        Err(e) => panic!("{what}: unexpected error: {e}"),
        Ok(_) => {
            println!("{what}: this machine has a Bluetooth adapter; nothing to check");
        }
    }
}

#[tokio::test]
async fn scan_fails_fast_without_an_adapter() {
    let start = Instant::now();
    let result = scan(Duration::from_millis(500)).await;
    check("scan", result, start.elapsed());
}

#[tokio::test]
async fn connect_fails_fast_without_an_adapter() {
    let options = ConnectOptions { scan_timeout: Duration::from_millis(500), ..ConnectOptions::default() };
    let start = Instant::now();
    let result = BtleplugLink::connect("no-such-device", &options).await;
    check("connect", result.map(|_| ()), start.elapsed());
}
