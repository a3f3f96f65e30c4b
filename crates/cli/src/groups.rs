//! The commands of the groups beside os's echo/reset/info and img's update commands: fs,
//! shell, stat, settings, enum, Zephyr basic, os tasks/mempool/datetime and image slot info.
//! Each asks the library and returns an [`Outcome`]; the printer renders it.

use std::path::Path;

use smpflash_core::command::basic::StorageErase;
use smpflash_core::command::fs::{FileClose, FileHash, FileStatus, SupportedHashes};
use smpflash_core::command::image::SlotInfo;
use smpflash_core::command::os::{DateTimeGet, DateTimeSet, MemPoolStats, TaskStats};
use smpflash_core::command::settings::{
    SettingDelete, SettingRead, SettingWrite, SettingsCommit, SettingsLoad, SettingsSave,
};
use smpflash_core::command::shell::ShellExec;
use smpflash_core::command::stat::{StatList, StatShow};
use smpflash_core::fs::{self, HashKind};
use smpflash_core::upload::{Limits, UploadOptions};

use crate::connect::Connected;
use crate::exit::{Code, Failure};
use crate::output::{FileHashOutcome, Outcome, SettingOutcome};
use crate::render::Reporter;

fn io_failure(what: &str, path: &Path, e: std::io::Error) -> Failure {
    Failure { code: Code::Usage, message: format!("cannot {what} {}: {e}", path.display()) }
}

/// `fs upload LOCAL REMOTE`.
pub async fn fs_upload(
    c: &mut Connected,
    local: &Path,
    remote: &str,
    opts: UploadOptions,
    reporter: &Reporter,
) -> Result<Outcome, Failure> {
    let bytes = std::fs::read(local).map_err(|e| io_failure("read", local, e))?;
    let limits = Limits::query(c.session.client()).await?;
    let report = fs::upload_file(&mut c.session, remote, &bytes, &limits, &opts, reporter).await?;
    Ok(Outcome::FileUpload { upload: report })
}

/// `fs download REMOTE LOCAL`: the file is written only once it is whole and checked.
pub async fn fs_download(
    c: &mut Connected,
    remote: &str,
    local: &Path,
    opts: UploadOptions,
    reporter: &Reporter,
) -> Result<Outcome, Failure> {
    let limits = Limits::query(c.session.client()).await?;
    let (bytes, report) = fs::download_file(&mut c.session, remote, &limits, &opts, reporter).await?;
    std::fs::write(local, &bytes).map_err(|e| io_failure("write", local, e))?;
    Ok(Outcome::FileDownload { download: report })
}

/// `fs stat REMOTE`.
pub async fn fs_stat(c: &Connected, remote: &str) -> Result<Outcome, Failure> {
    let s = c.session.client().request(&FileStatus { name: remote.into() }).await?;
    Ok(Outcome::FileStatus { name: remote.into(), len: s.len })
}

/// `fs hash REMOTE [--type T]`.
pub async fn fs_hash(c: &Connected, remote: &str, kind: Option<HashKind>) -> Result<Outcome, Failure> {
    let req = FileHash { name: remote.into(), kind: kind.map(|k| k.name().into()), off: None, len: None };
    let r = c.session.client().request(&req).await?;
    Ok(Outcome::FileHash(FileHashOutcome {
        name: remote.into(),
        kind: r.kind,
        len: r.len,
        output: r.output.to_hex(),
    }))
}

/// `fs types`.
pub async fn fs_types(c: &Connected) -> Result<Outcome, Failure> {
    let r = c.session.client().request(&SupportedHashes {}).await?;
    Ok(Outcome::FileHashTypes { types: r.types })
}

/// `fs close`.
pub async fn fs_close(c: &Connected) -> Result<Outcome, Failure> {
    c.session.client().request(&FileClose {}).await?;
    Ok(Outcome::FileClosed { closed: true })
}

/// `shell exec -- CMD ARGS…`.
pub async fn shell_exec(c: &Connected, argv: Vec<String>) -> Result<Outcome, Failure> {
    let r = c.session.client().request(&ShellExec { argv }).await?;
    Ok(Outcome::Shell { output: r.o, ret: r.ret })
}

/// `stat list`.
pub async fn stat_list(c: &Connected) -> Result<Outcome, Failure> {
    let r = c.session.client().request(&StatList {}).await?;
    Ok(Outcome::StatList { groups: r.stat_list })
}

/// `stat read GROUP`.
pub async fn stat_read(c: &Connected, name: &str) -> Result<Outcome, Failure> {
    let r = c.session.client().request(&StatShow { name: name.into() }).await?;
    Ok(Outcome::Stat { name: r.name, fields: r.fields })
}

/// The value of `settings set NAME HEX`: hex digits, separators allowed.
fn parse_hex(text: &str) -> Result<Vec<u8>, Failure> {
    let clean: String = text.chars().filter(|ch| !matches!(ch, ':' | '-' | ' ' | '_')).collect();
    let clean = clean.strip_prefix("0x").unwrap_or(&clean);
    hex::decode(clean)
        .map_err(|e| Failure { code: Code::Usage, message: format!("{text:?} is not a hex value: {e}") })
}

/// `settings get NAME`.
pub async fn settings_get(c: &Connected, name: &str, max_size: Option<u32>) -> Result<Outcome, Failure> {
    let r = c.session.client().request(&SettingRead { name: name.into(), max_size }).await?;
    let text =
        std::str::from_utf8(&r.val).ok().filter(|t| t.chars().all(|ch| !ch.is_control())).map(String::from);
    Ok(Outcome::Setting(SettingOutcome {
        name: name.into(),
        hex: hex::encode(&r.val),
        text,
        max_size: r.max_size,
    }))
}

/// `settings set NAME HEX`.
pub async fn settings_set(c: &Connected, name: &str, value: &str) -> Result<Outcome, Failure> {
    let val = parse_hex(value)?;
    c.session.client().request(&SettingWrite { name: name.into(), val: val.into() }).await?;
    Ok(Outcome::SettingsDone { done: "set".into(), name: Some(name.into()) })
}

/// `settings delete NAME`.
pub async fn settings_delete(c: &Connected, name: &str) -> Result<Outcome, Failure> {
    c.session.client().request(&SettingDelete { name: name.into() }).await?;
    Ok(Outcome::SettingsDone { done: "deleted".into(), name: Some(name.into()) })
}

/// `settings commit|load|save`.
pub async fn settings_action(c: &Connected, action: SettingsAction) -> Result<Outcome, Failure> {
    let client = c.session.client();
    let done = match action {
        SettingsAction::Commit => client.request(&SettingsCommit {}).await.map(|_| "committed"),
        SettingsAction::Load => client.request(&SettingsLoad {}).await.map(|_| "loaded"),
        SettingsAction::Save => client.request(&SettingsSave {}).await.map(|_| "saved"),
    }?;
    Ok(Outcome::SettingsDone { done: done.into(), name: None })
}

/// What `settings commit|load|save` asks.
#[derive(Debug, Clone, Copy)]
pub enum SettingsAction {
    /// `settings_commit`.
    Commit,
    /// `settings_load`.
    Load,
    /// `settings_save`.
    Save,
}

/// `enum`: the groups, with their details when the device has them.
pub async fn enumerate(c: &Connected) -> Result<Outcome, Failure> {
    Ok(Outcome::Groups { groups: smpflash_core::groups::list(c.session.client()).await? })
}

/// `os tasks`.
pub async fn os_tasks(c: &Connected) -> Result<Outcome, Failure> {
    Ok(Outcome::Tasks { tasks: c.session.client().request(&TaskStats {}).await?.tasks })
}

/// `os mempool`.
pub async fn os_mempool(c: &Connected) -> Result<Outcome, Failure> {
    Ok(Outcome::MemPools { mpools: c.session.client().request(&MemPoolStats {}).await?.mpools })
}

/// `os datetime [set VALUE]`.
pub async fn os_datetime(c: &Connected, set: Option<String>) -> Result<Outcome, Failure> {
    let client = c.session.client();
    if let Some(datetime) = set {
        client.request(&DateTimeSet { datetime }).await?;
    }
    Ok(Outcome::DateTime { datetime: client.request(&DateTimeGet {}).await?.datetime })
}

/// `storage erase`.
pub async fn storage_erase(c: &Connected) -> Result<Outcome, Failure> {
    c.session.client().request(&StorageErase {}).await?;
    Ok(Outcome::StorageErased { erased: true })
}

/// `image slots`.
pub async fn image_slots(c: &Connected) -> Result<Outcome, Failure> {
    Ok(Outcome::Slots { images: c.session.client().request(&SlotInfo {}).await?.images })
}
