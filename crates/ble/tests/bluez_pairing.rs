//! A device that requires pairing, behind the emulated BlueZ: smpflash's btleplug link reports
//! "device requires pairing" when BlueZ relays the ATT authentication error, and works once the
//! device is paired (here by calling `Device1.Pair` as bluetoothctl does).
//!
//! A binary of its own: `DBUS_SYSTEM_BUS_ADDRESS` is process-wide and libdbus reads it once.

use std::sync::Arc;
use std::time::Duration;

use smpflash_ble::{BtleplugLink, ConnectOptions, GattTransport};
use smpflash_core::client::Client;
use smpflash_core::command::os::Echo;
use smpflash_core::transport::TransportKind;
use smpflash_core::Error;
use smpflash_sim::front::bluez::{self, BluezOptions, BLUEZ_NAME};
use smpflash_sim::{Device, DeviceOptions, Profile};

mod support;

#[test]
fn pairing_is_required_then_works() {
    support::on_private_bus(|bus| async move { run(&bus).await });
}

async fn run(bus: &str) {
    let device = Device::new(
        Profile::by_name("zephyr-default").unwrap(),
        DeviceOptions { time_scale: 0.0, ..Default::default() },
    )
    .unwrap();
    let options = BluezOptions {
        require_pairing: true,
        advertising_interval: Duration::from_millis(50),
        ..Default::default()
    };
    let server = bluez::serve(device, options, bus).await.unwrap();
    let connect = ConnectOptions { scan_timeout: Duration::from_secs(10), ..Default::default() };

    let refused = BtleplugLink::connect(server.device_name(), &connect).await.err().expect("refused");
    assert!(matches!(&refused, Error::Transport(m) if m.kind == TransportKind::PairingRequired), "{refused}");
    assert!(refused.to_string().starts_with("device requires pairing"), "{refused}");

    // What `bluetoothctl pair` does.
    let ctl = zbus::connection::Builder::address(bus).unwrap().build().await.unwrap();
    ctl.call_method(Some(BLUEZ_NAME), server.device_path(), Some("org.bluez.Device1"), "Pair", &())
        .await
        .unwrap();

    let link = BtleplugLink::connect(server.device_name(), &connect).await.unwrap();
    let client = Client::new(Arc::new(GattTransport::new(link))).with_timeout(Duration::from_secs(10));
    assert_eq!(client.request(&Echo { d: "paired".into() }).await.unwrap().r, "paired");
}
