//! `smpflash`: firmware updates for MCUboot/Zephyr devices over SMP.
//!
//! This binary only parses arguments, renders what the library crates report and maps errors to
//! exit codes; the protocol, image and device logic live in the `smpflash-*` crates.
#![forbid(unsafe_code)]

mod exit;
mod show;
mod sim;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Update the firmware of MCUboot/Zephyr devices over SMP (MCUmgr).
#[derive(Parser)]
#[command(name = "smpflash", version, about, propagate_version = true)]
struct Cli {
    /// Print one JSON document per command instead of text.
    #[arg(long, global = true)]
    json: bool,

    /// More output: -v shows every SMP frame, decoded; -vv adds transport detail.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Image management.
    #[command(subcommand)]
    Image(ImageCommand),
    /// Run the virtual device (an SMP server with MCUboot behaviour) until Ctrl-C.
    Sim(sim::SimArgs),
}

#[derive(Subcommand)]
enum ImageCommand {
    /// Inspect a firmware file offline (.bin, .hex or an NCS dfu_application.zip): header,
    /// version, image hash, TLVs, signature kind and whether MCUboot would accept it.
    Show {
        /// The file to inspect.
        file: PathBuf,
    },
}

fn init_tracing(verbose: u8) {
    let level = match verbose {
        0 => "warn",
        1 => "smpflash_core=debug,smpflash=debug,warn",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("SMPFLASH_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime starts")
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.verbose);
    let result = match cli.command {
        Command::Image(ImageCommand::Show { file }) => show::run(&file, cli.json),
        Command::Sim(args) => runtime().block_on(sim::run(args)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => failure.report(cli.json),
    }
}
