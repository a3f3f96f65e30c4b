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
        Error::Dfu(DfuError::NotApplied(_)) | Error::UploadMismatch => Code::Verification,
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
        Error::Encode { .. } | Error::FrameTooLarge { .. } | Error::SequenceExhausted => Code::Failure,
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
