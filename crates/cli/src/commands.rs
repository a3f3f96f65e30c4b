//! The device commands: each asks the library and returns what it found as an [`Outcome`];
//! the printer renders it.

use std::path::Path;

use serde_bytes::ByteBuf;
use smpflash_core::command::image::{ImageErase, ImageStateRead, ImageStateWrite};
use smpflash_core::command::os::{AppInfo, BootloaderInfo, BootloaderMode, Echo, Reset};
use smpflash_core::dfu::{self, DfuOptions};
use smpflash_core::mcuboot;
use smpflash_core::upload::{self, Limits, UploadOptions};
use smpflash_core::{rc, status, Error};

use crate::connect::Connected;
use crate::exit::{Code, Failure};
use crate::output::{Info, Outcome, StatusLine};
use crate::render::Reporter;

/// `echo TEXT`.
pub async fn echo(c: &Connected, text: &str) -> Result<Outcome, Failure> {
    let r = c.session.client().request(&Echo { d: text.into() }).await?;
    Ok(Outcome::Echo { echo: r.r })
}

/// `params`.
pub async fn params(c: &Connected) -> Result<Outcome, Failure> {
    Ok(Outcome::Params(Limits::query(c.session.client()).await?))
}

/// A query the device may not implement: "not supported" (`rc 8`), or the OS group's "query
/// yields no answer" (a bootloader-info query it does not know), is an absent answer; any other
/// device error (e.g. `rc 7`, the answer does not fit its buffer) is reported, not hidden
/// as "unknown".
fn optional<T>(r: Result<T, Error>) -> Result<Option<T>, Failure> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(Error::Device(e))
            if e.is_not_supported()
                || (e.group == Some(rc::group::OS) && e.rc == rc::os::QUERY_YIELDS_NO_ANSWER) =>
        {
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

/// `info`.
pub async fn info(c: &Connected) -> Result<Outcome, Failure> {
    let client = c.session.client();
    let bootloader = optional(client.request(&BootloaderInfo {}).await)?.map(|b| b.bootloader);
    let mode = optional(client.request(&BootloaderMode::default()).await)?;
    let application =
        optional(client.request(&AppInfo { format: Some("a".into()) }).await)?.map(|a| a.output);
    Ok(Outcome::Info(Info {
        transport: client.describe(),
        bootloader,
        mode: mode.map(|m| m.mode()),
        mode_number: mode.map(|m| m.mode),
        no_downgrade: mode.map(|m| m.no_downgrade),
        application,
    }))
}

/// `reset`.
pub async fn reset(c: &Connected, force: bool, boot_mode: Option<u8>) -> Result<Outcome, Failure> {
    c.session.client().request(&Reset { force: force.then_some(1), boot_mode }).await?;
    Ok(Outcome::Reset { reset: true })
}

/// `image list`.
pub async fn list(c: &Connected) -> Result<Outcome, Failure> {
    Ok(Outcome::images(c.session.client().request(&ImageStateRead {}).await?.images))
}

/// `status`: what the image state, the bootloader's mode and the device's kind mean for the
/// next reset.
pub async fn status(c: &Connected) -> Result<Outcome, Failure> {
    let facts = dfu::facts::inspect(&c.session).await?;
    let images = status::statuses(&facts.state, facts.mode, facts.recovery, &facts.images());
    Ok(Outcome::Status { images: images.into_iter().map(StatusLine::from).collect() })
}

/// Resolves a hash argument: full hex (any separators) or an unambiguous prefix of a hash the
/// device holds.
async fn resolve_hash(c: &Connected, text: &str) -> Result<Vec<u8>, Failure> {
    let clean: String = text.chars().filter(|ch| ch.is_ascii_hexdigit()).collect::<String>().to_lowercase();
    let bad = |m: String| Failure { code: Code::Usage, message: m };
    if clean.is_empty()
        || clean.len() != text.chars().filter(|ch| !matches!(ch, ':' | '-' | ' ' | '_')).count()
    {
        return Err(bad(format!("{text:?} is not a hex hash")));
    }
    let state = c.session.client().request(&ImageStateRead {}).await?;
    let hashes: Vec<String> = state.images.iter().filter_map(|s| s.hash.as_ref().map(hex::encode)).collect();
    let matches: Vec<&String> = hashes.iter().filter(|h| h.starts_with(&clean)).collect();
    match matches.as_slice() {
        [one] => Ok(hex::decode(one).expect("hex from hex::encode")),
        [] if clean.len() == 64 => Ok(hex::decode(&clean).expect("checked hex")),
        [] => Err(bad(format!("no image on the device has a hash starting with {clean}"))),
        _ => Err(bad(format!("{clean} matches {} images; give more digits", matches.len()))),
    }
}

/// `image test HASH` / `image confirm [HASH]`.
pub async fn mark(c: &Connected, hash: Option<&str>, confirm: bool) -> Result<Outcome, Failure> {
    let hash = match hash {
        Some(h) => Some(ByteBuf::from(resolve_hash(c, h).await?)),
        None => None,
    };
    let s = c.session.client().request(&ImageStateWrite { hash, confirm }).await?;
    Ok(Outcome::images(s.images))
}

/// `image erase`.
pub async fn erase(c: &Connected, slot: Option<u32>) -> Result<Outcome, Failure> {
    c.session.client().request(&ImageErase { slot }).await?;
    Ok(Outcome::Erased { erased: slot.unwrap_or(1) })
}

fn load(file: &Path, image: Option<u32>) -> Result<mcuboot::Package, Failure> {
    let mut package = mcuboot::load(file)?;
    if let Some(index) = image {
        if package.images.len() != 1 {
            return Err(Failure {
                code: Code::Usage,
                message: "--image applies to a single-image file; a zip says which image each file is".into(),
            });
        }
        package.images[0].image_index = index;
    }
    Ok(package)
}

/// `image upload FILE`.
pub async fn upload(
    c: &mut Connected,
    file: &Path,
    image: Option<u32>,
    opts: UploadOptions,
    reporter: &Reporter,
) -> Result<Outcome, Failure> {
    let package = load(file, image)?;
    let limits = Limits::query(c.session.client()).await?;
    let mut reports = Vec::new();
    for img in &package.images {
        let o = UploadOptions { image: img.image_index, ..opts.clone() };
        reports.push(upload::upload(&mut c.session, img.image.bytes(), &limits, &o, reporter).await?);
    }
    Ok(Outcome::Uploads { uploads: reports })
}

/// `dfu FILE`.
pub async fn dfu(
    c: &mut Connected,
    file: &Path,
    image: Option<u32>,
    opts: DfuOptions,
    reporter: &Reporter,
) -> Result<Outcome, Failure> {
    let package = load(file, image)?;
    Ok(Outcome::Dfu(dfu::dfu(&mut c.session, &package, &opts, reporter).await?))
}
