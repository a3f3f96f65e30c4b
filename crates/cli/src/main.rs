//! `smpflash`: firmware updates for MCUboot/Zephyr devices over SMP.
//!
//! This binary only parses arguments, renders what the library crates report and maps errors to
//! exit codes; the protocol, image and device logic live in the `smpflash-*` crates.
#![forbid(unsafe_code)]

mod commands;
mod connect;
mod decode;
mod exit;
mod groups;
mod output;
mod render;
mod show;
#[cfg(feature = "sim")]
mod sim;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use smpflash_core::dfu::{DfuOptions, Mode};
use smpflash_core::upload::{BufSize, UploadOptions};

use crate::connect::{Connected, Connection};
use crate::exit::Failure;
use crate::output::{Outcome, Printer};
use crate::render::Reporter;

/// Update the firmware of MCUboot/Zephyr devices over SMP (MCUmgr): BLE, serial, UDP, or the
/// built-in virtual device.
#[derive(Parser)]
#[command(name = "smpflash", version, about, propagate_version = true)]
struct Cli {
    /// Print one JSON document per command on stdout instead of text; progress goes to stderr
    /// as one JSON object per line.
    #[arg(long, global = true)]
    json: bool,

    /// More output: -v shows every SMP frame, decoded; -vv adds transport detail.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,

    /// Most upload requests in flight (default: from the device's buffers).
    #[arg(long, global = true, env = "SMPFLASH_WINDOW")]
    window: Option<usize>,

    /// Most data bytes per upload chunk (default: as many as fit the frame). On a device that
    /// does not report its buffers (and without --buf-size) it also sets the frame size.
    #[arg(long, global = true, env = "SMPFLASH_CHUNK")]
    chunk: Option<usize>,

    /// The device's SMP buffers, BYTES or BYTESxCOUNT (e.g. 1024, 1024x4): for a device that
    /// does not report them (MCUboot serial recovery); given, they win over what the device
    /// reports (with a warning when they exceed it). Requests that do not fit fail unsent.
    #[arg(long, global = true, env = "SMPFLASH_BUF_SIZE", value_name = "BYTES[xCOUNT]")]
    buf_size: Option<BufSize>,

    #[command(flatten)]
    connection: Connection,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List nearby BLE devices advertising the SMP service.
    Scan {
        /// Seconds to scan.
        #[arg(long, default_value_t = 5.0)]
        seconds: f64,
    },
    /// Ask the device to echo TEXT.
    Echo {
        /// Text to echo.
        text: String,
    },
    /// Show the device's SMP buffer size and count.
    Params,
    /// Show the bootloader, its mode and the application's info.
    Info,
    /// Say, per image, where its update stands and what the next reset will do.
    Status,
    /// Reset the device.
    Reset {
        /// Reset even if the device's application vetoes it.
        #[arg(long)]
        force: bool,
        /// Boot mode for the next boot (Zephyr's `boot_mode`; needs
        /// CONFIG_MCUMGR_GRP_OS_RESET_BOOT_MODE): 1 enters the bootloader (MCUboot's serial
        /// recovery), 0 a normal boot.
        #[arg(long, value_name = "N")]
        boot_mode: Option<u8>,
    },
    /// Explain raw SMP bytes offline: header fields, CBOR body, error codes, and what cannot be
    /// right about them (a frame per argument, or per line of --file / stdin).
    Decode {
        /// Hex bytes of a frame, any separators (`02 00 00 02 …`, `02:00:…`, `0x02, 0x00`);
        /// `-` reads stdin, a frame per line.
        hex: Vec<String>,
        /// Read frames from a file, one per line; blank lines and `#` comments are skipped and
        /// a label ending in ": " (e.g. `12:00:01 rx: `) is dropped.
        #[arg(long, conflicts_with = "hex")]
        file: Option<PathBuf>,
        /// The bytes are requests (a client sent them): a response op is a mistake.
        #[arg(long, conflicts_with = "response")]
        request: bool,
        /// The bytes are answers (a device sent them): a request op is a mistake.
        #[arg(long)]
        response: bool,
    },
    /// Image management.
    #[command(subcommand)]
    Image(ImageCommand),
    /// Files on the device (fs group): upload, download, length, hash.
    #[command(subcommand)]
    Fs(FsCommand),
    /// The device's shell (shell group).
    #[command(subcommand)]
    Shell(ShellCommand),
    /// Statistics (stat group).
    #[command(subcommand)]
    Stat(StatCommand),
    /// Settings (settings group): read, write, delete; commit, load, save.
    #[command(subcommand)]
    Settings(SettingsCommand),
    /// The management groups the device has (enum group).
    Enum,
    /// Threads, memory pools, the clock (os group).
    #[command(subcommand)]
    Os(OsCommand),
    /// The storage partition (Zephyr basic group).
    #[command(subcommand)]
    Storage(StorageCommand),
    /// Update the device: check, upload, verify, mark, reset, verify, confirm.
    Dfu {
        /// A signed image (.bin, .hex) or an NCS dfu_application.zip.
        file: PathBuf,
        /// Image number for a single .bin/.hex (1 = nRF5340 network core).
        #[arg(long)]
        image: Option<u32>,
        /// How to mark the new images (default: test-and-confirm for one image, confirm-only
        /// for a multi-image package).
        #[arg(long, value_enum)]
        mode: Option<Mode>,
        /// Upload even if the device already runs or holds the image.
        #[arg(long)]
        force: bool,
        /// Update through MCUboot's serial recovery: reset the application with boot mode 1,
        /// wait for MCUboot to answer, upload into the primary slot, reset, and check what runs.
        #[arg(long)]
        recovery: bool,
    },
    /// Run the virtual device (an SMP server with MCUboot behaviour) until Ctrl-C.
    #[cfg(feature = "sim")]
    Sim(sim::SimArgs),
    /// Run the virtual device (not in this build: it was built without the `sim` feature).
    #[cfg(not(feature = "sim"))]
    Sim {
        /// Ignored.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
        args: Vec<String>,
    },
}

#[derive(Subcommand)]
enum ImageCommand {
    /// Inspect a firmware file offline (.bin, .hex or an NCS dfu_application.zip): header,
    /// version, image hash, TLVs, signature kind and whether MCUboot would accept it.
    Show {
        /// The file to inspect.
        file: PathBuf,
    },
    /// Show the images on the device.
    List,
    /// Upload an image to the device's free slot (no marking, no reset).
    Upload {
        /// The image file.
        file: PathBuf,
        /// Image number (1 = nRF5340 network core).
        #[arg(long)]
        image: Option<u32>,
    },
    /// Mark the image with HASH to run once at the next boot.
    Test {
        /// The image hash (hex, any separators, or an unambiguous prefix).
        hash: String,
    },
    /// Make the image with HASH permanent, or without HASH confirm the running image.
    Confirm {
        /// The image hash.
        hash: Option<String>,
    },
    /// Erase a slot (the secondary by default).
    Erase {
        /// Slot number.
        #[arg(long)]
        slot: Option<u32>,
    },
    /// Each image's slots and their sizes (slot info).
    Slots,
}

#[derive(Subcommand)]
enum FsCommand {
    /// Copy a local file to the device (created or replaced), pipelined, then check it with
    /// the device's hash or checksum when it has one.
    Upload {
        /// The local file.
        local: PathBuf,
        /// Path on the device, e.g. `/lfs1/config.bin`.
        remote: String,
    },
    /// Copy a file from the device, pipelined, checked with the device's hash when it has one;
    /// LOCAL is written only once the file is whole.
    Download {
        /// Path on the device.
        remote: String,
        /// The local file to write.
        local: PathBuf,
    },
    /// A file's length.
    Stat {
        /// Path on the device.
        remote: String,
    },
    /// The device's hash or checksum of a file.
    Hash {
        /// Path on the device.
        remote: String,
        /// The type; the device's default (crc32 on Zephyr when built in) if not given.
        #[arg(long = "type", value_enum)]
        kind: Option<smpflash_core::fs::HashKind>,
    },
    /// The hash and checksum types the device has.
    Types,
    /// Close the file an interrupted transfer left open on the device.
    Close,
}

#[derive(Subcommand)]
enum ShellCommand {
    /// Run a command in the device's shell; prints its output, and the exit code follows its
    /// return value. Put `--` before the command so its options stay its own.
    Exec {
        /// The command and its arguments.
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
        argv: Vec<String>,
    },
}

#[derive(Subcommand)]
enum StatCommand {
    /// The statistics groups.
    List,
    /// One group's counters.
    Read {
        /// The group's name (see `stat list`).
        group: String,
    },
}

#[derive(Subcommand)]
enum SettingsCommand {
    /// Read a setting.
    Get {
        /// Its name, e.g. `app/threshold`.
        name: String,
        /// Largest value to read.
        #[arg(long)]
        max_size: Option<u32>,
    },
    /// Write a setting (at run time; `settings save` persists it).
    Set {
        /// Its name.
        name: String,
        /// The value, hex (`01ff`, `0x01ff`, `01:ff`).
        hex: String,
    },
    /// Delete a setting from storage.
    Delete {
        /// Its name.
        name: String,
    },
    /// Apply the settings written (`settings_commit`).
    Commit,
    /// Load the settings from storage (`settings_load`).
    Load,
    /// Save the run-time settings to storage (`settings_save`).
    Save,
}

#[derive(Subcommand)]
enum OsCommand {
    /// Threads: priority, state, stack use.
    Tasks,
    /// Memory pools.
    Mempool,
    /// The device's clock; `set` sets it first.
    Datetime {
        #[command(subcommand)]
        set: Option<DatetimeSet>,
    },
}

#[derive(Subcommand)]
enum DatetimeSet {
    /// Set the clock.
    Set {
        /// `YYYY-MM-DDTHH:MM:SS[.mmm][Z|+HH:MM]`.
        value: String,
    },
}

#[derive(Subcommand)]
enum StorageCommand {
    /// Erase the storage partition (settings and file systems kept there are lost).
    Erase,
}

fn init_tracing(verbose: u8) {
    let level = match verbose {
        0 => "warn",
        1 => "smpflash_core=debug,smpflash=debug,smpflash_sim=debug,warn",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("SMPFLASH_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colours(
            std::io::IsTerminal::is_terminal(&std::io::stderr()),
            std::env::var_os("NO_COLOR"),
        ))
        .init();
}

/// Whether log lines on stderr get ANSI colours: only on a terminal, and not when `NO_COLOR`
/// is set to anything but the empty string (<https://no-color.org>).
fn colours(terminal: bool, no_color: Option<std::ffi::OsString>) -> bool {
    terminal && no_color.is_none_or(|v| v.is_empty())
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime starts")
}

/// How long ending the link may take on the way out (BLE: the disconnect).
const CLOSE_LIMIT: Duration = Duration::from_secs(5);

async fn run(cli: Cli, reporter: &Reporter) -> Result<Outcome, Failure> {
    let upload = UploadOptions {
        window: cli.window,
        chunk: cli.chunk,
        buf_size: cli.buf_size,
        timeout: Duration::from_secs_f64(cli.connection.timeout.max(0.05)),
        ..Default::default()
    };
    let connection = cli.connection;
    match cli.command {
        Command::Image(ImageCommand::Show { file }) => show::run(&file),
        Command::Decode { hex, file, request, response } => {
            let source = match (&file, hex.as_slice()) {
                (Some(path), _) => decode::Source::File(path),
                (None, [dash]) if dash == "-" => decode::Source::Stdin,
                (None, args) => decode::Source::Args(args),
            };
            let direction = match (request, response) {
                (true, _) => Some(smpflash_core::decode::Direction::Request),
                (_, true) => Some(smpflash_core::decode::Direction::Response),
                _ => None,
            };
            decode::run(source, direction)
        }
        #[cfg(feature = "sim")]
        Command::Sim(args) => sim::run(args).await.map(|()| Outcome::Nothing),
        #[cfg(not(feature = "sim"))]
        Command::Sim { .. } => Err(exit::without_sim()),
        Command::Scan { seconds } => {
            Ok(Outcome::Scan { devices: smpflash_ble::scan(Duration::from_secs_f64(seconds)).await? })
        }
        command => {
            // Ctrl-C ends the command, not the program: the link is closed first (a BLE device
            // left connected does not advertise, so the next tool would not find it).
            let ctrl_c = tokio::signal::ctrl_c();
            tokio::pin!(ctrl_c);
            let mut c = tokio::select! {
                c = connection.open() => c?,
                _ = &mut ctrl_c => return Err(exit::interrupted()),
            };
            // Every request is checked against the given buffer before it is sent.
            c.session.client().set_given_buf_size(upload.buf_size.map(|b| b.size));
            let result = tokio::select! {
                r = on_device(&mut c, command, upload, reporter) => r.map_err(|f| c.advise(f)),
                _ = &mut ctrl_c => Err(exit::interrupted()),
            };
            c.close(CLOSE_LIMIT).await;
            result
        }
    }
}

/// A command that talks to the device over `c`.
async fn on_device(
    c: &mut Connected,
    command: Command,
    upload: UploadOptions,
    reporter: &Reporter,
) -> Result<Outcome, Failure> {
    match command {
        Command::Echo { text } => commands::echo(c, &text).await,
        Command::Params => commands::params(c).await,
        Command::Info => commands::info(c).await,
        Command::Status => commands::status(c).await,
        Command::Reset { force, boot_mode } => commands::reset(c, force, boot_mode).await,
        Command::Image(ImageCommand::List) => commands::list(c).await,
        Command::Image(ImageCommand::Upload { file, image }) => {
            commands::upload(c, &file, image, upload, reporter).await
        }
        Command::Image(ImageCommand::Test { hash }) => commands::mark(c, Some(&hash), false).await,
        Command::Image(ImageCommand::Confirm { hash }) => commands::mark(c, hash.as_deref(), true).await,
        Command::Image(ImageCommand::Erase { slot }) => commands::erase(c, slot).await,
        Command::Fs(FsCommand::Upload { local, remote }) => {
            groups::fs_upload(c, &local, &remote, upload, reporter).await
        }
        Command::Fs(FsCommand::Download { remote, local }) => {
            groups::fs_download(c, &remote, &local, upload, reporter).await
        }
        Command::Fs(FsCommand::Stat { remote }) => groups::fs_stat(c, &remote).await,
        Command::Fs(FsCommand::Hash { remote, kind }) => groups::fs_hash(c, &remote, kind).await,
        Command::Fs(FsCommand::Types) => groups::fs_types(c).await,
        Command::Fs(FsCommand::Close) => groups::fs_close(c).await,
        Command::Shell(ShellCommand::Exec { argv }) => groups::shell_exec(c, argv).await,
        Command::Stat(StatCommand::List) => groups::stat_list(c).await,
        Command::Stat(StatCommand::Read { group }) => groups::stat_read(c, &group).await,
        Command::Settings(SettingsCommand::Get { name, max_size }) => {
            groups::settings_get(c, &name, max_size).await
        }
        Command::Settings(SettingsCommand::Set { name, hex }) => groups::settings_set(c, &name, &hex).await,
        Command::Settings(SettingsCommand::Delete { name }) => groups::settings_delete(c, &name).await,
        Command::Settings(SettingsCommand::Commit) => {
            groups::settings_action(c, groups::SettingsAction::Commit).await
        }
        Command::Settings(SettingsCommand::Load) => {
            groups::settings_action(c, groups::SettingsAction::Load).await
        }
        Command::Settings(SettingsCommand::Save) => {
            groups::settings_action(c, groups::SettingsAction::Save).await
        }
        Command::Enum => groups::enumerate(c).await,
        Command::Os(OsCommand::Tasks) => groups::os_tasks(c).await,
        Command::Os(OsCommand::Mempool) => groups::os_mempool(c).await,
        Command::Os(OsCommand::Datetime { set }) => {
            groups::os_datetime(c, set.map(|DatetimeSet::Set { value }| value)).await
        }
        Command::Storage(StorageCommand::Erase) => groups::storage_erase(c).await,
        Command::Image(ImageCommand::Slots) => groups::image_slots(c).await,
        Command::Dfu { file, image, mode, force, recovery } => {
            let opts = DfuOptions { mode, upload, force, enter_recovery: recovery, ..Default::default() };
            commands::dfu(c, &file, image, opts, reporter).await
        }
        Command::Image(ImageCommand::Show { .. }) | Command::Scan { .. } | Command::Decode { .. } => {
            unreachable!("run() handles the commands that need no device")
        }
        #[cfg(feature = "sim")]
        Command::Sim(_) => unreachable!("run() handles the commands that need no device"),
        #[cfg(not(feature = "sim"))]
        Command::Sim { .. } => unreachable!("run() handles the commands that need no device"),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    exit::install_panic_hook(cli.json);
    init_tracing(cli.verbose);
    let printer = Printer { json: cli.json };
    let reporter = Reporter::new(cli.json);
    let result = runtime().block_on(async {
        let result = run(cli, &reporter).await;
        // Disconnects that dropped links or an interrupted connect left behind.
        smpflash_ble::finish_disconnects(CLOSE_LIMIT).await;
        result
    });
    match result {
        Ok(outcome) => {
            printer.print(&outcome);
            ExitCode::from(outcome.exit_code())
        }
        Err(failure) => failure.report(printer.json),
    }
}

#[cfg(test)]
mod tests {
    use super::colours;

    #[test]
    fn colours_only_on_a_terminal_and_without_no_color() {
        assert!(colours(true, None));
        assert!(!colours(false, None));
        assert!(!colours(true, Some("1".into())));
        // NO_COLOR set but empty does not count (no-color.org).
        assert!(colours(true, Some("".into())));
    }
}
