//! smpflash's own BLE code — `BtleplugLink` through btleplug and bluez-async, `GattTransport`,
//! the request layer and the DFU flow — against the virtual device served as `org.bluez` on a
//! private D-Bus bus. Scan, connect, service discovery, MTU, notifications, write without
//! response, the disconnect on reset and the rescan all go through the real BlueZ client code.
//!
//! Needs `dbus-daemon` (`.ci/run` installs it). This binary holds one test on purpose:
//! `DBUS_SYSTEM_BUS_ADDRESS` is process-wide and libdbus reads it once, so every BlueZ client
//! of the process must use the same bus.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use smpflash_ble::{BtleplugLink, ConnectOptions, GattTransport};
use smpflash_core::client::Client;
use smpflash_core::command::image::ImageStateRead;
use smpflash_core::command::os::{Echo, McumgrParams};
use smpflash_core::gatt::GattLink;
use smpflash_core::session::{Connector, Session};
use smpflash_core::transport::Transport;
use smpflash_core::Error;
use smpflash_sim::front::ble_link::LinkParams;
use smpflash_sim::front::bluez::{self, BluezOptions, BluezServer};
use smpflash_sim::{Device, DeviceOptions, Profile};

mod support;

struct Ble {
    target: String,
    options: ConnectOptions,
}

#[async_trait]
impl Connector for Ble {
    async fn connect(&self) -> smpflash_core::Result<Arc<dyn Transport>> {
        Ok(Arc::new(GattTransport::new(BtleplugLink::connect(&self.target, &self.options).await?)))
    }
}

fn connect_options() -> ConnectOptions {
    ConnectOptions {
        scan_timeout: Duration::from_secs(10),
        connect_timeout: Duration::from_secs(10),
        mtu: None,
    }
}

async fn wait_disconnected(server: &BluezServer) {
    for _ in 0..200 {
        if !server.is_connected() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the client did not disconnect");
}

#[test]
fn btleplug_through_emulated_bluez() {
    support::on_private_bus(|bus| async move { run(&bus).await });
}

async fn run(bus: &str) {
    let device = Device::new(
        Profile::by_name("nrf5340").unwrap(),
        DeviceOptions { time_scale: 0.0, ..Default::default() },
    )
    .unwrap();
    let options = BluezOptions {
        link: LinkParams::phone_fast().with_time_scale(0.05),
        advertising_interval: Duration::from_millis(50),
        ..Default::default()
    };
    let server = bluez::serve(device.clone(), options, bus).await.unwrap();

    // Found by name; the MTU comes from the characteristic's MTU property.
    let link = BtleplugLink::connect(server.device_name(), &connect_options()).await.unwrap();
    assert_eq!(link.mtu(), 498, "btleplug reads the link profile's MTU");
    assert!(link.describe().contains(server.device_address()), "{}", link.describe());
    let client = Client::new(Arc::new(GattTransport::new(link))).with_timeout(Duration::from_secs(10));
    let text = "x".repeat(1200); // three writes out, three notifications back
    assert_eq!(client.request(&Echo { d: text.clone() }).await.unwrap().r, text);
    let params = client.request(&McumgrParams {}).await.unwrap();
    assert_eq!((params.buf_size, params.buf_count), (2475, 4));
    assert_eq!(client.request(&ImageStateRead {}).await.unwrap().images.len(), 2);
    drop(client);
    wait_disconnected(&server).await;

    // The emulated stack refuses a value longer than the MTU allows, as BlueZ does; here the
    // client is told a larger MTU than the link has.
    let big = ConnectOptions { mtu: Some(517), ..connect_options() };
    let link = BtleplugLink::connect(server.device_address(), &big).await.unwrap();
    let client = Client::new(Arc::new(GattTransport::new(link))).with_timeout(Duration::from_secs(5));
    let refused = client.request(&Echo { d: "y".repeat(600) }).await.unwrap_err();
    assert!(matches!(&refused, Error::Transport(m) if m.to_string().contains("Invalid Length")), "{refused}");
    drop(client);
    wait_disconnected(&server).await;

    // A whole update: upload, test, reset (the link drops and the device leaves the bus),
    // rescan and reconnect through btleplug, confirm.
    let connector = Ble { target: server.device_address().to_string(), options: connect_options() };
    let mut session = Session::open(Box::new(connector), Duration::from_secs(10)).await.unwrap();
    support::dfu_example_package(&mut session).await;

    let calls = server.calls();
    println!("D-Bus calls btleplug made:");
    for (call, n) in &calls {
        println!("  {n:5}  {call}");
    }
    let called = |what: &str| calls.iter().any(|(c, _)| c == what);
    for what in [
        "ObjectManager.GetManagedObjects",
        "Adapter1.SetDiscoveryFilter",
        "Adapter1.StartDiscovery",
        "Adapter1.StopDiscovery",
        "Device1.Connect",
        "Introspectable.Introspect",
        "GattCharacteristic1.StartNotify",
        "GattCharacteristic1.WriteValue",
    ] {
        assert!(called(what), "btleplug never called {what}");
    }
    drop(session);
}
