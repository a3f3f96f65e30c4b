//! The shell, stat, settings, enum, Zephyr basic and os (tasks, datetime) groups of the
//! virtual device over real UDP sockets, with the answers Zephyr 4.4's `smp_svr` gives (the
//! differential test compares them with the real server).

use std::sync::Arc;
use std::time::Duration;

use smpflash_core::command::basic::StorageErase;
use smpflash_core::command::enumeration::{GroupCount, GroupDetails, GroupList, GroupSingle};
use smpflash_core::command::fs::FileStatus;
use smpflash_core::command::os::{DateTimeGet, DateTimeSet, MemPoolStats, TaskStats};
use smpflash_core::command::settings::{
    SettingDelete, SettingRead, SettingWrite, SettingsCommit, SettingsLoad, SettingsSave,
};
use smpflash_core::command::shell::ShellExec;
use smpflash_core::command::stat::{StatList, StatShow};
use smpflash_core::frame::Version;
use smpflash_core::fs;
use smpflash_core::rc;
use smpflash_core::session::Session;
use smpflash_core::upload::{Limits, UploadOptions};
use smpflash_core::Error;
use smpflash_sim::front::udp::{self, UdpOptions, UdpServer};
use smpflash_sim::{Device, DeviceOptions, Profile};
use smpflash_udp::UdpConnector;

async fn serve(profile: &str) -> (Arc<Device>, UdpServer, Session) {
    let device = Device::new(
        Profile::by_name(profile).unwrap(),
        DeviceOptions { time_scale: 0.0, ..Default::default() },
    )
    .unwrap();
    let server =
        udp::serve(device.clone(), "127.0.0.1:0".parse().unwrap(), UdpOptions::default()).await.unwrap();
    let connector = UdpConnector::new(server.local_addr().to_string());
    let session = Session::open(Box::new(connector), Duration::from_millis(500)).await.unwrap();
    (device, server, session)
}

/// The device's error as (group, rc); group `None` for an SMP-level code.
fn code(e: Error) -> (Option<u16>, i64) {
    match e {
        Error::Device(d) => (d.group, d.rc),
        other => panic!("expected a device error, got {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shell_runs_commands_like_smp_svr() {
    let (_d, _s, session) = serve("nrf5340").await;
    let c = session.client();
    let argv = |words: &[&str]| ShellExec { argv: words.iter().map(|w| w.to_string()).collect() };
    let r = c.request(&argv(&["kernel", "version"])).await.unwrap();
    assert_eq!((r.o.as_str(), r.ret), ("\r\nZephyr version 4.4.0\r\n", 0));
    let r = c.request(&argv(&["kernel", "uptime"])).await.unwrap();
    assert!(r.o.starts_with("\r\nUptime: ") && r.o.ends_with(" ms\r\n"), "{:?}", r.o);
    let r = c.request(&argv(&["bogus", "cmd"])).await.unwrap();
    assert_eq!(r.ret, -8, "Zephyr's shell: -ENOEXEC for an unknown command");
    assert!(r.o.contains("bogus: command not found"));
    let e = c.request(&argv(&[])).await.unwrap_err();
    assert_eq!(code(e), (Some(rc::group::SHELL), rc::shell::EMPTY_COMMAND));
    let long = "x".repeat(300);
    let e = c.request(&argv(&[&long])).await.unwrap_err();
    assert_eq!(code(e), (Some(rc::group::SHELL), rc::shell::COMMAND_TOO_LONG));
    // `help` fits an nRF5340's buffers but not Zephyr's default 384 bytes: MGMT_ERR_EMSGSIZE.
    assert_eq!(c.request(&argv(&["help"])).await.unwrap().ret, 0);
    let (_d, _s, small) = serve("zephyr-default").await;
    let e = small.client().request(&argv(&["help"])).await.unwrap_err();
    assert_eq!(code(e), (None, 7));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statistics_list_show_and_move() {
    let (_d, _s, session) = serve("nrf5340").await;
    let c = session.client();
    let list = c.request(&StatList {}).await.unwrap().stat_list;
    assert_eq!(list, ["flash_sim_stats", "flash_sim_thresholds", "smp_svr_stats"]);
    let ticks = |r: smpflash_core::command::stat::StatShowResponse| r.fields["ticks"];
    let first = ticks(c.request(&StatShow { name: "smp_svr_stats".into() }).await.unwrap());
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let later = ticks(c.request(&StatShow { name: "smp_svr_stats".into() }).await.unwrap());
    assert!(later > first, "ticks count seconds: {first} then {later}");
    let e = c.request(&StatShow { name: "nope".into() }).await.unwrap_err();
    assert_eq!(code(e), (Some(rc::group::STAT), rc::stat::INVALID_STAT_NAME));
    let e = c.request(&StatShow { name: "x".repeat(40) }).await.unwrap_err();
    assert_eq!(code(e), (None, rc::MGMT_ERR_EINVAL));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_are_set_saved_loaded_and_survive_a_reset_only_when_saved() {
    let (device, _s, session) = serve("nrf5340").await;
    let c = session.client();
    let write = |name: &str, val: &[u8]| SettingWrite { name: name.into(), val: val.to_vec().into() };
    let read = |name: &str| SettingRead { name: name.into(), max_size: None };
    // No handler for the root key `foo`.
    let e = c.request(&write("foo/bar", b"1")).await.unwrap_err();
    assert_eq!(code(e), (Some(rc::group::SETTINGS), rc::settings::ROOT_KEY_NOT_FOUND));
    let e = c.request(&read("app/none")).await.unwrap_err();
    assert_eq!(code(e), (Some(rc::group::SETTINGS), rc::settings::KEY_NOT_FOUND));
    let e = c.request(&read(&format!("app/{}", "x".repeat(28)))).await.unwrap_err();
    assert_eq!(code(e), (Some(rc::group::SETTINGS), rc::settings::KEY_TOO_LONG));
    c.request(&write("app/kept", b"kept")).await.unwrap();
    assert_eq!(c.request(&read("app/kept")).await.unwrap().val.as_slice(), b"kept");
    // Asking for more than the device's value limit: capped, and the limit told.
    let r = c.request(&SettingRead { name: "app/kept".into(), max_size: Some(1000) }).await.unwrap();
    assert_eq!(r.max_size, Some(32));
    c.request(&SettingsSave {}).await.unwrap();
    c.request(&write("app/lost", b"lost")).await.unwrap();
    c.request(&SettingsCommit {}).await.unwrap();
    device.reset().await;
    assert_eq!(c.request(&read("app/kept")).await.unwrap().val.as_slice(), b"kept");
    let e = c.request(&read("app/lost")).await.unwrap_err();
    assert_eq!(code(e), (Some(rc::group::SETTINGS), rc::settings::KEY_NOT_FOUND), "not saved: gone");
    // Delete removes it from storage; load does not bring it back after a reset.
    c.request(&SettingDelete { name: "app/kept".into() }).await.unwrap();
    let e = c.request(&SettingDelete { name: "app/kept".into() }).await.unwrap_err();
    assert_eq!(code(e), (Some(rc::group::SETTINGS), rc::settings::KEY_NOT_FOUND));
    device.reset().await;
    c.request(&SettingsLoad {}).await.unwrap();
    assert!(c.request(&read("app/kept")).await.is_err());
    // A v1 client sees the group code translated (settings_mgmt_translate_error_code).
    c.set_version(Version::V1);
    let e = c.request(&write("foo/bar", b"1")).await.unwrap_err();
    assert_eq!(code(e), (None, rc::MGMT_ERR_EUNKNOWN));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enumeration_lists_the_groups_in_zephyrs_order() {
    let (_d, _s, session) = serve("nrf5340").await;
    let c = session.client();
    let list = c.request(&GroupList {}).await.unwrap().groups;
    assert_eq!(list, [10, 8, 1, 0, 3, 9, 2, 63]);
    assert_eq!(c.request(&GroupCount {}).await.unwrap().count as usize, list.len());
    let last = c.request(&GroupSingle { index: list.len() as u32 - 1 }).await.unwrap();
    assert_eq!((last.group, last.end), (63, true));
    assert!(!c.request(&GroupSingle { index: 0 }).await.unwrap().end);
    let e = c.request(&GroupSingle { index: 99 }).await.unwrap_err();
    assert_eq!(code(e), (Some(rc::group::ENUM), rc::enumeration::INDEX_TOO_LARGE));
    let d = c.request(&GroupDetails { groups: Some(vec![9]) }).await.unwrap().groups;
    assert_eq!(d.len(), 1);
    assert_eq!((d[0].name.as_deref(), d[0].handlers), (Some("shell mgmt"), Some(1)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_erase_clears_files_and_saved_settings() {
    let (device, _s, mut session) = serve("nrf5340").await;
    let limits = Limits::query(session.client()).await.unwrap();
    fs::upload_file(&mut session, "/lfs1/a", b"abc", &limits, &UploadOptions::default(), &()).await.unwrap();
    let c = session.client();
    c.request(&SettingWrite { name: "app/x".into(), val: b"1".to_vec().into() }).await.unwrap();
    c.request(&SettingsSave {}).await.unwrap();
    c.request(&StorageErase {}).await.unwrap();
    let e = c.request(&FileStatus { name: "/lfs1/a".into() }).await.unwrap_err();
    assert_eq!(code(e), (Some(rc::group::FS), rc::fs::FILE_NOT_FOUND));
    device.reset().await;
    assert!(c.request(&SettingRead { name: "app/x".into(), max_size: None }).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn os_tasks_datetime_and_no_memory_pools() {
    let (_d, _s, session) = serve("nrf5340").await;
    let c = session.client();
    let tasks = c.request(&TaskStats {}).await.unwrap().tasks;
    assert!(tasks.contains_key("main") && tasks.contains_key("idle"), "{tasks:?}");
    let e = c.request(&MemPoolStats {}).await.unwrap_err();
    assert_eq!(code(e), (None, rc::MGMT_ERR_ENOTSUP), "Zephyr has no memory pool command");
    let e = c.request(&DateTimeGet {}).await.unwrap_err();
    assert_eq!(code(e), (Some(rc::group::OS), 4), "OS_MGMT_ERR_RTC_NOT_SET until set");
    c.request(&DateTimeSet { datetime: "2026-12-02T01:02:03".into() }).await.unwrap();
    let now = c.request(&DateTimeGet {}).await.unwrap().datetime;
    assert!(now.starts_with("2026-12-02T01:0"), "{now}");
    for bad in ["2026-13-02T01:02:03", "2026-12-02", "yesterday at noon!!", "2026-12-02T01:02:03.000000000"] {
        let e = c.request(&DateTimeSet { datetime: bad.into() }).await.unwrap_err();
        assert_eq!(code(e), (None, rc::MGMT_ERR_EINVAL), "{bad}");
    }
}
