//! `smpflash sim`: run the virtual device until Ctrl-C, printing where to connect.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use smpflash_sim::device::DeviceEvent;
use smpflash_sim::faults::{DeviceFaults, LinkFaults};
use smpflash_sim::front::udp::{self, UdpOptions};
use smpflash_sim::profile::SimProfile;
use smpflash_sim::{Device, DeviceOptions, Profile};

use crate::exit::{Code, Failure};

mod bluez;

/// Options of `smpflash sim`.
#[derive(Args, Debug)]
pub struct SimArgs {
    /// Device profile.
    #[arg(long, default_value_t = SimProfile::Nrf5340, env = "SMPFLASH_SIM_PROFILE")]
    profile: SimProfile,
    /// Override a profile field, e.g. --set buf_size=1024 --set erase_ms=0 (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
    /// Serve SMP over UDP on this address (port 1337 is Zephyr's default).
    #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = "127.0.0.1:1337")]
    udp: Option<SocketAddr>,
    /// Also serve SMP over a serial console on a pty (its path is printed).
    #[arg(long)]
    pty: bool,
    /// Pace the pty like a UART at this baud rate.
    #[arg(long, value_name = "BAUD")]
    pty_baud: Option<u32>,
    /// The pty's SMP framing: console (Zephyr's UART transport), raw (Zephyr's raw UART
    /// transport: bare frames, no console output), shell (the console framing).
    #[arg(long, value_enum, default_value_t = smpflash_serial::Framing::Console)]
    pty_framing: smpflash_serial::Framing,
    /// Serial: probability each byte the device sends is corrupted.
    #[arg(long, default_value_t = 0.0)]
    corrupt: f64,
    /// Scale flash and boot delays: 1 is real time, 0 no delays.
    #[arg(long, default_value_t = 1.0)]
    time_scale: f64,
    /// Keep the flash contents in this file across runs (a power cycle keeps them).
    #[arg(long, value_name = "FILE")]
    state: Option<PathBuf>,
    /// UDP: round trip added to every answer, in milliseconds.
    #[arg(long, default_value_t = 0)]
    rtt_ms: u64,
    /// UDP: probability a datagram is lost.
    #[arg(long, default_value_t = 0.0)]
    drop: f64,
    /// UDP: probability a datagram arrives twice.
    #[arg(long, default_value_t = 0.0)]
    duplicate: f64,
    /// UDP: probability an answer is overtaken by the next.
    #[arg(long, default_value_t = 0.0)]
    reorder: f64,
    /// Seed of every injected fault, so a failing run repeats.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Reset the device once this many image bytes have been uploaded.
    #[arg(long, value_name = "BYTES")]
    reset_after_upload_bytes: Option<u64>,
    /// A new image under test crashes before confirming itself, so MCUboot reverts it.
    #[arg(long)]
    test_image_crashes: bool,
    /// Lose power after this many sectors of the next swap (MCUboot resumes it).
    #[arg(long, value_name = "SECTORS")]
    power_loss_after_swap_sectors: Option<usize>,
    /// Serving the device as a BlueZ peripheral; boxed to keep the command enum small.
    #[command(flatten)]
    bluez: Box<bluez::BluezFlags>,
}

fn usage(message: String) -> Failure {
    Failure { code: Code::Failure, message }
}

/// Runs the command.
pub async fn run(args: SimArgs) -> Result<(), Failure> {
    let profile = Profile::with_overrides(args.profile, &args.overrides).map_err(usage)?;
    let options = DeviceOptions {
        time_scale: args.time_scale,
        state_file: args.state.clone(),
        faults: DeviceFaults {
            reset_after_upload_bytes: args.reset_after_upload_bytes,
            power_loss_after_swap_sectors: args.power_loss_after_swap_sectors,
            test_image_crashes: args.test_image_crashes,
        },
    };
    let device =
        Device::new(profile, options).map_err(|e| usage(format!("cannot start the virtual device: {e}")))?;
    let p = device.profile();
    println!(
        "virtual device: profile {} ({} image(s), buf_size {}, buf_count {}, time scale {})",
        p.name,
        p.images.len(),
        p.buf_size,
        p.buf_count,
        args.time_scale
    );
    let mut servers = Vec::new();
    let addr = args.udp.unwrap_or_else(|| "127.0.0.1:1337".parse().expect("literal"));
    let udp_options = UdpOptions {
        added_rtt: Duration::from_millis(args.rtt_ms),
        faults: LinkFaults {
            drop: args.drop,
            duplicate: args.duplicate,
            reorder: args.reorder,
            seed: args.seed,
        },
    };
    let server = udp::serve(device.clone(), addr, udp_options).await.map_err(|e| Failure {
        code: Code::Connection,
        message: format!("cannot serve UDP on {addr}: {e}"),
    })?;
    println!(
        "SMP over UDP: {}   (connect with: smpflash --udp {} ...)",
        server.local_addr(),
        server.local_addr()
    );
    servers.push(server);
    let mut ptys = Vec::new();
    if args.pty {
        let options = smpflash_sim::front::pty::PtyOptions {
            baud: args.pty_baud,
            faults: smpflash_sim::front::pty::SerialFaults {
                corrupt_byte_rate: args.corrupt,
                seed: args.seed,
                ..Default::default()
            },
            framing: args.pty_framing,
            ..Default::default()
        };
        let pty = smpflash_sim::front::pty::serve(device.clone(), options)
            .await
            .map_err(|e| Failure { code: Code::Connection, message: format!("cannot open a pty: {e}") })?;
        println!(
            "SMP over serial: {}{}{}   (connect with: smpflash --serial {} ...)",
            pty.path(),
            args.pty_baud.map_or(String::new(), |b| format!(" paced at {b} baud")),
            if args.pty_framing.is_raw() { " in the raw framing" } else { "" },
            pty.path()
        );
        ptys.push(pty);
    }
    let bluez_sim = if args.bluez.bluez.is_some() {
        Some(bluez::start(device.clone(), &args.bluez).await?)
    } else {
        None
    };
    let mut events = device.subscribe();
    // SIGTERM (a test harness, systemd, `timeout`) stops the device like Ctrl-C, summary
    // included.
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| usage(format!("cannot watch for SIGTERM: {e}")))?;
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = term.recv() => break,
            ev = events.recv() => match ev {
                Ok(DeviceEvent::Resetting) => println!("device resetting"),
                Ok(DeviceEvent::PowerLost) => println!("power lost during the swap"),
                Ok(DeviceEvent::Booted(log)) => {
                    for e in log {
                        println!("boot: image {}: {}", e.image, e.what);
                    }
                    println!("device up");
                }
                Ok(DeviceEvent::Mistake { client, mistake }) => {
                    println!("client mistake [{}] from {client}: {mistake}", mistake.kind());
                }
                Err(_) => {}
            },
        }
    }
    print!("{}", device.summary().await);
    if let Some(b) = bluez_sim {
        b.print_calls();
        b.stop();
    }
    println!("stopped");
    Ok(())
}
