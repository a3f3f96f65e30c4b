//! The UDP front end's faults behave like a network and a device, not like artefacts of the
//! simulation (both found by `cargo xtask soak`):
//! - a reset loses the requests waiting in the device's buffers, so a duplicated reset request
//!   resets the device once (twice, MCUboot reverted the image under test before the client
//!   could confirm it);
//! - a reordered answer is overtaken by later ones but still arrives when none follows (it used
//!   to wait for the next answer, which a client waiting for it never provokes).

use std::sync::Arc;
use std::time::Duration;

use smpflash_core::client::Client;
use smpflash_core::command::encode_request;
use smpflash_core::command::os::{Echo, Reset};
use smpflash_core::frame::Version;
use smpflash_sim::device::DeviceEvent;
use smpflash_sim::faults::LinkFaults;
use smpflash_sim::front::udp::{self, UdpOptions, UdpServer};
use smpflash_sim::{Device, DeviceOptions, Profile};
use smpflash_udp::UdpTransport;

async fn serve(faults: LinkFaults) -> (Arc<Device>, UdpServer) {
    let device = Device::new(
        Profile::by_name("zephyr-default").unwrap(),
        DeviceOptions { time_scale: 0.0, ..Default::default() },
    )
    .unwrap();
    let options = UdpOptions { faults, ..Default::default() };
    let server = udp::serve(device.clone(), "127.0.0.1:0".parse().unwrap(), options).await.unwrap();
    (device, server)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicated_reset_request_resets_the_device_once() {
    let (device, server) = serve(LinkFaults { duplicate: 1.0, seed: 1, ..Default::default() }).await;
    let mut events = device.subscribe();
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    socket.connect(server.local_addr()).await.unwrap();
    let reset = encode_request(&Reset::default(), Version::V2, 1).unwrap().encode();
    socket.send(&reset).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut boots = 0;
    while let Ok(e) = events.try_recv() {
        boots += matches!(e, DeviceEvent::Booted(_)) as usize;
    }
    assert_eq!(boots, 1, "the second copy of the reset request was in RAM when the first reset");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reordered_answer_to_a_lone_request_still_arrives() {
    let (_device, server) = serve(LinkFaults { reorder: 1.0, seed: 1, ..Default::default() }).await;
    let client = Client::new(Arc::new(UdpTransport::connect_addr(server.local_addr()).await.unwrap()))
        .with_timeout(Duration::from_millis(500));
    for text in ["one", "two", "three"] {
        assert_eq!(client.request(&Echo { d: text.into() }).await.unwrap().r, text);
    }
}
