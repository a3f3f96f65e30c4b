//! `AcquireWrite` and `AcquireNotify` of the emulated BlueZ, called as a plain D-Bus client
//! (zbus) would: the fds and MTU they return, an SMP echo through the two sockets, BlueZ's
//! refusals while a socket is out, and the release when the client closes its end, calls
//! StopNotify, or the link goes.
//!
//! Needs `dbus-daemon` (`.ci/run` installs it).

use std::collections::HashMap;
use std::io::{Read, Write};
use std::time::Duration;

use smpflash_sim::front::ble_link::LinkParams;
use smpflash_sim::front::bluez::{self, BluezOptions, PrivateBus};
use smpflash_sim::{Device, DeviceOptions, Profile};
use socket2::Socket;
use zbus::zvariant::{OwnedFd, OwnedValue};
use zbus::Connection;

const ADAPTER: &str = "/org/bluez/hci0";
const CHAR1: &str = "org.bluez.GattCharacteristic1";

async fn call<B, R>(conn: &Connection, path: &str, iface: &str, method: &str, body: &B) -> zbus::Result<R>
where
    B: serde::Serialize + zbus::zvariant::DynamicType,
    R: for<'d> zbus::zvariant::DynamicDeserialize<'d>,
{
    let reply = conn.call_method(Some("org.bluez"), path, Some(iface), method, body).await?;
    reply.body().deserialize::<R>()
}

async fn property(conn: &Connection, path: &str, iface: &str, name: &str) -> zbus::Result<OwnedValue> {
    call(conn, path, "org.freedesktop.DBus.Properties", "Get", &(iface, name)).await
}

async fn flag(conn: &Connection, path: &str, iface: &str, name: &str) -> bool {
    bool::try_from(property(conn, path, iface, name).await.unwrap()).unwrap()
}

async fn wait_for_flag(conn: &Connection, path: &str, iface: &str, name: &str, want: bool) {
    for _ in 0..300 {
        if property(conn, path, iface, name).await.ok().and_then(|v| bool::try_from(v).ok()) == Some(want) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{path} {name} did not become {want}");
}

fn no_options() -> HashMap<String, OwnedValue> {
    HashMap::new()
}

fn error_text(e: zbus::Error) -> String {
    match e {
        zbus::Error::MethodError(name, text, _) => format!("{name}: {}", text.unwrap_or_default()),
        other => panic!("not a D-Bus error reply: {other}"),
    }
}

/// An SMP v2 echo request with sequence 7.
fn echo_frame(text: &str) -> Vec<u8> {
    let mut body = Vec::new();
    ciborium::into_writer(&HashMap::from([("d", text)]), &mut body).unwrap();
    let mut frame = vec![2 | 1 << 3, 0, 0, 0, 0, 0, 7, 0];
    frame[2..4].copy_from_slice(&(body.len() as u16).to_be_bytes());
    frame.extend(body);
    frame
}

/// Reads notification packets until a whole SMP frame is in.
fn read_frame(sock: &Socket) -> Vec<u8> {
    let mut frame = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        let n = (&*sock).read(&mut buf).expect("a notification packet");
        assert!(n > 0, "the notify socket closed");
        frame.extend_from_slice(&buf[..n]);
        if frame.len() >= 8 && frame.len() == 8 + u16::from_be_bytes([frame[2], frame[3]]) as usize {
            return frame;
        }
    }
}

fn socket(fd: OwnedFd) -> Socket {
    let sock = Socket::from(std::os::fd::OwnedFd::from(fd));
    sock.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    sock
}

#[test]
fn acquired_sockets_carry_smp_like_bluez() {
    let bus = PrivateBus::start().unwrap_or_else(|e| panic!("{e}"));
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(run(bus.address()));
    drop(runtime);
}

async fn run(address: &str) {
    let device = Device::new(
        Profile::by_name("zephyr-default").unwrap(),
        DeviceOptions { time_scale: 0.0, ..Default::default() },
    )
    .unwrap();
    let options = BluezOptions {
        // MTU 247: the 300-byte echo goes out as two packets and comes back as two.
        link: LinkParams::phone_slow().with_time_scale(0.05),
        advertising_interval: Duration::from_millis(50),
        ..Default::default()
    };
    let server = bluez::serve(device, options, address).await.unwrap();
    let dev = server.device_path().to_string();
    let chr = format!("{dev}/service000a/char000b");
    let conn = zbus::connection::Builder::address(address).unwrap().build().await.unwrap();

    let () = call(&conn, ADAPTER, "org.bluez.Adapter1", "StartDiscovery", &()).await.unwrap();
    wait_for_flag(&conn, &dev, "org.bluez.Device1", "Connected", false).await;
    let () = call(&conn, &dev, "org.bluez.Device1", "Connect", &()).await.unwrap();
    wait_for_flag(&conn, &dev, "org.bluez.Device1", "ServicesResolved", true).await;
    assert!(!flag(&conn, &chr, CHAR1, "WriteAcquired").await);
    assert!(!flag(&conn, &chr, CHAR1, "NotifyAcquired").await);

    // The fds and the ATT MTU; the properties say they are out.
    let (wfd, mtu): (OwnedFd, u16) =
        call(&conn, &chr, CHAR1, "AcquireWrite", &(no_options(),)).await.unwrap();
    assert_eq!(mtu, 247);
    let (nfd, nmtu): (OwnedFd, u16) =
        call(&conn, &chr, CHAR1, "AcquireNotify", &(no_options(),)).await.unwrap();
    assert_eq!(nmtu, 247);
    assert!(flag(&conn, &chr, CHAR1, "WriteAcquired").await);
    assert!(flag(&conn, &chr, CHAR1, "NotifyAcquired").await);
    assert!(!flag(&conn, &chr, CHAR1, "Notifying").await, "AcquireNotify leaves Notifying alone, as BlueZ");

    // BlueZ's refusals while they are out.
    let refused = |r: zbus::Result<()>| error_text(r.unwrap_err());
    let e = refused(call(&conn, &chr, CHAR1, "WriteValue", &(vec![0u8], no_options())).await);
    assert_eq!(e, "org.bluez.Error.NotPermitted: Write acquired");
    let e = refused(call(&conn, &chr, CHAR1, "StartNotify", &()).await);
    assert_eq!(e, "org.bluez.Error.NotPermitted: Notify acquired");
    let again: zbus::Result<(OwnedFd, u16)> =
        call(&conn, &chr, CHAR1, "AcquireWrite", &(no_options(),)).await;
    assert_eq!(error_text(again.err().unwrap()), "org.bluez.Error.NotPermitted: Write acquired");

    // An echo through the sockets: packets of at most MTU-3 out, notifications back.
    let (w, n) = (socket(wfd), socket(nfd));
    let text = "a".repeat(300);
    let frame = echo_frame(&text);
    for piece in frame.chunks(usize::from(mtu) - 3) {
        (&w).write_all(piece).unwrap();
    }
    let (n, answer) = tokio::task::spawn_blocking(move || {
        let f = read_frame(&n);
        (n, f)
    })
    .await
    .unwrap();
    assert_eq!(answer[0] & 7, 3, "a write response");
    assert_eq!(answer[6], 7, "to our sequence number");
    let body: HashMap<String, ciborium::Value> = ciborium::from_reader(&answer[8..]).unwrap();
    assert_eq!(body["r"].as_text(), Some(text.as_str()));

    // Closing the write socket releases it; WriteValue works again.
    drop(w);
    wait_for_flag(&conn, &chr, CHAR1, "WriteAcquired", false).await;
    // StopNotify closes the notify socket: the client reads its end.
    let () = call(&conn, &chr, CHAR1, "StopNotify", &()).await.unwrap();
    assert!(!flag(&conn, &chr, CHAR1, "NotifyAcquired").await);
    let mut buf = [0u8; 16];
    assert_eq!((&n).read(&mut buf).unwrap(), 0, "the notify socket hung up");

    // The link going closes an acquired socket too.
    let (wfd, _): (OwnedFd, u16) = call(&conn, &chr, CHAR1, "AcquireWrite", &(no_options(),)).await.unwrap();
    let w = socket(wfd);
    let () = call(&conn, &dev, "org.bluez.Device1", "Disconnect", &()).await.unwrap();
    let read = tokio::task::spawn_blocking(move || (&w).read(&mut [0u8; 16]).unwrap()).await.unwrap();
    assert_eq!(read, 0, "the write socket hung up when the link went");

    let calls = server.calls();
    for call in ["GattCharacteristic1.AcquireWrite", "GattCharacteristic1.AcquireNotify"] {
        assert!(calls.iter().any(|(c, _)| c == call), "{calls:?}");
    }
}
