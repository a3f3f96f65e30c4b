//! The commands of the groups beside os and img (fs, and the rest as they come): each asks the
//! library and returns an [`Outcome`]; the printer renders it.

use std::path::Path;

use smpflash_core::command::fs::{FileClose, FileHash, FileStatus, SupportedHashes};
use smpflash_core::fs::{self, HashKind};
use smpflash_core::upload::{Limits, UploadOptions};

use crate::connect::Connected;
use crate::exit::{Code, Failure};
use crate::output::{FileHashOutcome, Outcome};
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
