//! What the BLE tests share. Each test binary uses its own subset.
#![allow(dead_code)]

use std::future::Future;
use std::sync::{Arc, Mutex};

use smpflash_core::progress::Event;
use smpflash_core::session::Session;
use smpflash_sim::front::bluez::PrivateBus;

/// Runs `test` on a fresh multi-threaded runtime with the process's system bus pointed at a
/// private `dbus-daemon`, whose address it is given.
///
/// `DBUS_SYSTEM_BUS_ADDRESS` is set before the first btleplug `Manager`, because libdbus reads
/// it once per process; that is also why each such test has a binary of its own. The runtime
/// ends before the bus, since btleplug's background tasks talk to the bus until then.
pub fn on_private_bus<F, Fut>(test: F)
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = ()>,
{
    let bus = PrivateBus::start().unwrap_or_else(|e| panic!("{e}"));
    std::env::set_var("DBUS_SYSTEM_BUS_ADDRESS", bus.address());
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(test(bus.address().to_string()));
    drop(runtime);
    drop(bus);
}

/// Updates the device on `session` with `examples/dfu_application.zip` (both nRF5340 images),
/// and checks what every BLE DFU must show: each image active with its hash and confirmed, and
/// the reset's dropped link found again.
pub async fn dfu_example_package(session: &mut Session) {
    let pkg = smpflash_core::mcuboot::load(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/dfu_application.zip"
    )))
    .unwrap();
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    let progress = move |e: &Event| sink.lock().unwrap().push(e.clone());
    let report = smpflash_core::dfu::dfu(session, &pkg, &Default::default(), &progress).await.unwrap();
    assert!(report.reset);
    for img in &pkg.images {
        let run = report.after.iter().find(|s| s.image == img.image_index && s.active).unwrap();
        assert_eq!(run.hash.as_deref().map(|h| h.to_vec()).unwrap(), img.image.hash());
        assert!(run.confirmed, "{run:?}");
    }
    assert!(session.reconnects() >= 1, "the reset dropped the link and smpflash found the device again");
    assert!(events.lock().unwrap().iter().any(|e| matches!(e, Event::Reconnecting { .. })));
}
