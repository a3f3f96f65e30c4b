//! Running a DFU again after one that stopped half-way must finish the job. Found by
//! `cargo xtask soak`: when the confirm request (or its answer) was lost, the new image ran
//! under test, and a second DFU said "already runs, nothing to do" — leaving an image that the
//! next reset reverts.

use std::time::Duration;

use smpflash_core::command::image::{ImageStateRead, SlotState};
use smpflash_core::command::os::Reset;
use smpflash_core::dfu::{self, DfuOptions, DfuReport, Mode};
use smpflash_core::mcuboot::{self, Package};
use smpflash_core::progress::Skip;
use smpflash_core::session::Session;
use smpflash_sim::front::udp::{self, UdpOptions, UdpServer};
use smpflash_sim::{Device, DeviceOptions, Profile};
use smpflash_udp::UdpConnector;

fn package() -> Package {
    mcuboot::load(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/app-update-v1.1.0.bin"
    )))
    .unwrap()
}

async fn run(server: &UdpServer, mode: Option<Mode>) -> DfuReport {
    let connector = UdpConnector::new(server.local_addr().to_string());
    let mut session = Session::open(Box::new(connector), Duration::from_secs(2)).await.unwrap();
    let opts = DfuOptions { mode, boot_timeout: Duration::from_secs(10), ..Default::default() };
    dfu::dfu(&mut session, &package(), &opts, &()).await.unwrap()
}

fn running(state: &[SlotState]) -> &SlotState {
    state.iter().find(|s| s.image == 0 && s.active).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dfu_run_again_confirms_an_image_left_under_test() {
    let device = Device::new(
        Profile::by_name("zephyr-default").unwrap(),
        DeviceOptions { time_scale: 0.0, ..Default::default() },
    )
    .unwrap();
    let server =
        udp::serve(device.clone(), "127.0.0.1:0".parse().unwrap(), UdpOptions::default()).await.unwrap();
    let hash = package().images[0].image.hash().to_vec();

    // Where a DFU whose confirm got lost stops: the new image runs, unconfirmed.
    let first = run(&server, Some(Mode::TestOnly)).await;
    let now = running(&first.after);
    assert_eq!((now.hash.as_deref().map(|h| h.to_vec()), now.confirmed), (Some(hash.clone()), false));

    let again = run(&server, None).await;
    assert!(again.uploads.is_empty(), "nothing to upload: the image runs already");
    assert!(
        again.skipped.iter().any(|s| matches!(s, Skip::ConfirmedUnderTest { image: 0, .. })
            && s.to_string().contains("under test; confirmed it")),
        "{:?}",
        again.skipped
    );
    assert!(running(&again.after).confirmed, "{:?}", again.after);

    // And it stays across a reset.
    let connector = UdpConnector::new(server.local_addr().to_string());
    let session = Session::open(Box::new(connector), Duration::from_secs(2)).await.unwrap();
    let _ = session.client().request(&Reset::default()).await;
    let mut state = None;
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if let Ok(r) = session.client().request(&ImageStateRead {}).await {
            state = Some(r.images);
            break;
        }
    }
    let state = state.expect("the device came back");
    assert_eq!(running(&state).hash.as_deref().map(|h| h.to_vec()), Some(hash));

    // A third run has nothing left to do.
    let third = run(&server, None).await;
    assert!(
        third
            .skipped
            .iter()
            .any(|s| matches!(s, Skip::AlreadyRunning { image: 0, .. })
                && s.to_string().contains("nothing to do")),
        "{:?}",
        third.skipped
    );
    drop(device);
}
