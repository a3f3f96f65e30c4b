//! Exit codes and the one-sentence error report.

use std::process::ExitCode;

use smpflash_core::dfu::DfuError;
use smpflash_core::mcuboot::ImageError;
use smpflash_core::Error;

/// Exit codes, documented in docs/cli.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// Anything not covered below.
    Failure = 1,
    /// The command line is wrong.
    Usage = 2,
    /// Could not reach the device.
    Connection = 3,
    /// The device answered with an error.
    DeviceRejected = 4,
    /// A file or an image on the device is not what it must be.
    Verification = 5,
    /// The device did not answer in time.
    Timeout = 6,
    /// Ctrl-C (128 + SIGINT, as shells report it).
    Interrupted = 130,
}

/// A failed command: what to tell the user and how to exit.
#[derive(Debug)]
pub struct Failure {
    /// Exit code.
    pub code: Code,
    /// One sentence for the user.
    pub message: String,
}

impl Failure {
    /// Prints the failure (text on stderr, or a JSON document on stdout) and returns the code.
    /// Every failure a user sees goes through here, so nothing but this sentence reaches them.
    pub fn report(&self, json: bool) -> ExitCode {
        if json {
            let mut doc = serde_json::json!({ "error": self.message, "exit_code": self.code as u8 });
            if self.code == Code::Verification {
                doc["verdict"] = "invalid".into();
            }
            println!("{doc}");
        } else {
            eprintln!("error: {}", self.message);
        }
        ExitCode::from(self.code as u8)
    }
}

/// Ctrl-C during a command: it stopped, the link was closed.
pub fn interrupted() -> Failure {
    Failure { code: Code::Interrupted, message: "interrupted (the link to the device was closed)".into() }
}

/// Where a panic happened: our own code (workspace-relative paths, `crates/...`) or a
/// dependency's (a registry path).
fn ours(file: &str) -> bool {
    file.starts_with("crates/") || file.starts_with("src/")
}

/// Makes panics speak like every other failure: one `error:` sentence, no backtrace, and never
/// a dependency's panic text. A panic in smpflash's code is a bug: it is reported as an
/// internal error and the program exits with code 1. A panic in a dependency's background task
/// (bluez-async's, when it removes a D-Bus match rule that libdbus already dropped) is contained
/// by the async runtime and does not decide the outcome: it is only logged at debug level
/// (`-vv`), and the command's own result stands.
pub fn install_panic_hook(json: bool) {
    std::panic::set_hook(Box::new(move |info| {
        let (file, line) = info.location().map(|l| (l.file().to_string(), l.line())).unwrap_or_default();
        let text = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        let main_thread = std::thread::current().name() == Some("main");
        tracing::debug!("panic at {file}:{line}: {text}");
        if ours(&file) || main_thread {
            let failure = Failure {
                code: Code::Failure,
                message: format!("internal error in smpflash at {file}:{line}; run with -vv for details"),
            };
            failure.report(json);
            std::process::exit(Code::Failure as i32);
        }
    }));
}

/// What `--sim` and `smpflash sim` say in a build without the virtual device.
#[cfg(not(feature = "sim"))]
pub fn without_sim() -> Failure {
    Failure {
        code: Code::Usage,
        message: "this smpflash was built without the virtual device (cargo feature `sim`); \
                  build it with default features to use --sim or `smpflash sim`"
            .into(),
    }
}

/// The exit code of a library error. Exhaustive on purpose: a new error variant does not
/// compile until it has a code here.
fn code_of(e: &Error) -> Code {
    match e {
        Error::Device(_) => Code::DeviceRejected,
        Error::Dfu(DfuError::Refused(_)) => Code::DeviceRejected,
        Error::Dfu(DfuError::NotApplied(_)) | Error::UploadMismatch | Error::FileMismatch { .. } => {
            Code::Verification
        }
        Error::Timeout { .. } | Error::UploadStalled { .. } => Code::Timeout,
        Error::Transport(_) => Code::Connection,
        // The device's answers do not follow the protocol: a failure of the exchange, not a
        // verdict on the image.
        Error::TruncatedHeader { .. }
        | Error::LengthMismatch { .. }
        | Error::BadHeader(_)
        | Error::Decode { .. }
        | Error::Protocol(_) => Code::Failure,
        // Local limits of this program, not the device's fault.
        Error::Encode { .. }
        | Error::FrameTooLarge { .. }
        | Error::TooLargeForDevice { .. }
        | Error::SequenceExhausted => Code::Failure,
        // A file that cannot be read is the machine's problem; one that can is judged.
        Error::Image(ImageError::Io { .. }) => Code::Failure,
        Error::Image(_) => Code::Verification,
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure { code: code_of(&e), message: e.to_string() }
    }
}

impl From<ImageError> for Failure {
    fn from(e: ImageError) -> Self {
        Error::from(e).into()
    }
}

#[cfg(test)]
mod tests {
    use super::ours;

    #[test]
    fn panics_are_told_apart_by_where_they_happened() {
        assert!(ours("crates/cli/src/main.rs"));
        assert!(!ours(
            "/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/bluez-async-0.9.0/src/messagestream.rs"
        ));
    }
}
