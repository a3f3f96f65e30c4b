//! SMP over GATT against the virtual device behind the simulated radio link: the same
//! `GattTransport` code that runs over btleplug, talking to a real SMP server.

use std::sync::Arc;
use std::time::Duration;

use smpflash_ble::GattTransport;
use smpflash_core::client::Client;
use smpflash_core::command::image::ImageStateRead;
use smpflash_core::command::os::{Echo, McumgrParams, Reset};
use smpflash_sim::front::ble::BleFrontEnd;
use smpflash_sim::front::ble_link::LinkParams;
use smpflash_sim::{Device, DeviceOptions, Profile};

async fn connect(front: &BleFrontEnd) -> Client {
    let central = front.connect(Duration::from_secs(5)).await.unwrap();
    Client::new(Arc::new(GattTransport::new(central))).with_timeout(Duration::from_secs(10))
}

fn device(profile: &str) -> Arc<Device> {
    Device::new(Profile::by_name(profile).unwrap(), DeviceOptions { time_scale: 0.0, ..Default::default() })
        .unwrap()
}

#[tokio::test]
async fn echo_params_and_state_over_each_link_profile() {
    for params in [LinkParams::phone_fast(), LinkParams::phone_slow(), LinkParams::legacy()] {
        let front = BleFrontEnd::new(device("nrf5340"), params.with_time_scale(0.05));
        let c = connect(&front).await;
        let text = "x".repeat(200); // several fragments on the legacy link
        assert_eq!(c.request(&Echo { d: text.clone() }).await.unwrap().r, text);
        let p = c.request(&McumgrParams {}).await.unwrap();
        assert_eq!((p.buf_size, p.buf_count), (2475, 4));
        // two images, each answer several notifications long at MTU 23
        assert_eq!(c.request(&ImageStateRead {}).await.unwrap().images.len(), 2);
    }
}

#[tokio::test]
async fn reset_drops_the_link_and_the_device_comes_back() {
    let front = BleFrontEnd::new(device("zephyr-default"), LinkParams::phone_fast().with_time_scale(0.05));
    let c = connect(&front).await;
    c.request(&Reset::default()).await.unwrap();
    let e = c.request(&Echo { d: "gone?".into() }).await.unwrap_err();
    assert!(e.is_link_lost(), "{e}");
    let again = connect(&front).await;
    assert_eq!(again.request(&Echo { d: "back".into() }).await.unwrap().r, "back");
}

#[tokio::test]
async fn pipelined_requests_fill_the_device_buffers() {
    let front = BleFrontEnd::new(device("nrf5340"), LinkParams::phone_fast().with_time_scale(0.05));
    let c = connect(&front).await;
    let reqs: Vec<Echo> = (0..8).map(|i| Echo { d: format!("{i}-{}", "y".repeat(1500)) }).collect();
    let answers = futures::future::join_all(reqs.iter().map(|r| c.request(r))).await;
    for (r, a) in reqs.iter().zip(answers) {
        assert_eq!(a.unwrap().r, r.d);
    }
}
