//! A reset that drops the link: `reset_and_wait` reconnects within the boot budget and leaves
//! the session's own reconnect budget as the caller set it (it used to overwrite it with what
//! was left of the boot timeout, shrinking every later reconnect).

use std::time::Duration;

use smpflash_core::command::os::{Echo, EchoResponse};
use smpflash_core::dfu::{reset_and_wait, NotApplied};
use smpflash_core::loopback::{LoopbackConnector, Reply};
use smpflash_core::progress::Event;
use smpflash_core::session::Session;
use smpflash_core::{cbor, Error};

/// A device that answers echo, and answers reset then drops the link as it reboots.
fn rebooting_device() -> LoopbackConnector {
    LoopbackConnector::new(|req| match (req.header.group, req.header.id) {
        (0, 0) => {
            let echo: Echo = cbor::from_slice(&req.body, "echo").unwrap();
            vec![Reply::answer(req, &EchoResponse { r: echo.d }).unwrap()]
        }
        (0, 5) => vec![
            Reply::answer(req, &std::collections::BTreeMap::<String, u8>::new()).unwrap(),
            Reply::close().after(Duration::from_millis(100)),
        ],
        _ => vec![],
    })
}

#[tokio::test(start_paused = true)]
async fn a_reset_reconnects_and_keeps_the_sessions_budget() {
    let connector = rebooting_device();
    let mut session = Session::open(Box::new(connector.clone()), Duration::from_secs(1)).await.unwrap();
    session.reconnect_for = Duration::from_secs(7);
    let events = std::sync::Mutex::new(Vec::new());
    let progress = |e: &Event| events.lock().unwrap().push(e.clone());
    reset_and_wait(&mut session, Duration::from_secs(120), &progress).await.unwrap();
    assert_eq!(connector.connects(), 2, "one reconnect after the link dropped");
    assert!(events.lock().unwrap().iter().any(|e| matches!(e, Event::Reconnecting { .. })));
    assert_eq!(session.reconnect_for, Duration::from_secs(7), "the caller's budget is kept");
    assert_eq!(session.client().request(&Echo { d: "after".into() }).await.unwrap().r, "after");
}

#[tokio::test(start_paused = true)]
async fn a_device_that_never_answers_again_is_reported_as_not_back() {
    // Answers the first echo (the session opens fine), then nothing at all.
    let answered = std::sync::atomic::AtomicBool::new(false);
    let connector = LoopbackConnector::new(move |req| {
        if req.header.id == 5 || answered.swap(true, std::sync::atomic::Ordering::SeqCst) {
            return vec![];
        }
        let echo: Echo = cbor::from_slice(&req.body, "echo").unwrap();
        vec![Reply::answer(req, &EchoResponse { r: echo.d }).unwrap()]
    });
    let mut session = Session::open(Box::new(connector), Duration::from_millis(500)).await.unwrap();
    session.client().request(&Echo { d: "first".into() }).await.unwrap();
    let e = reset_and_wait(&mut session, Duration::from_secs(5), &()).await.unwrap_err();
    assert!(matches!(e, Error::Dfu(ref d) if d.to_string().contains("did not come back within 5 s")), "{e}");
    assert!(matches!(
        e,
        Error::Dfu(smpflash_core::dfu::DfuError::NotApplied(NotApplied::DidNotComeBack { seconds: 5 }))
    ));
}
