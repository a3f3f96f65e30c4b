//! The real Zephyr SMP servers in `../shared/zephyr-fixtures`: the manifest, the checksum check,
//! and a launcher ([`Server::start`]) that starts one server, waits until it answers an SMP
//! echo, says how to reach it ([`Reach`]) and kills and cleans it up when dropped.
//!
//! [`Server::link`] / [`Server::exchange`] send one raw SMP frame and return the raw answer in
//! the server's own framing (a UDP datagram inside its network namespace, console packets on a
//! pty or QEMU's TCP port, or raw bytes for the `serial_raw` builds), so a differential test can
//! send the same requests to a real server and to the virtual device.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use bytes::BytesMut;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use smpflash_core::command::encode_request;
use smpflash_core::command::os::Echo;
use smpflash_core::frame::{expected_len, Frame, Version};
use smpflash_serial::codec::{encode_frame, ConsoleCodec, ConsoleItem};
use tokio_util::codec::Decoder;

use super::child::{self, ChildGuard};

/// The environment variable that points at another fixtures directory.
pub const ENV: &str = "SMPFLASH_FIXTURES";

/// How a server carries SMP (the manifest's `transport`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    /// SMP over UDP.
    Udp,
    /// The console framing on a UART (`06 09` base64 lines).
    Serial,
    /// Zephyr 4.4's raw UART SMP: bare frames.
    SerialRaw,
    /// SMP through the shell UART (the console framing inside the shell).
    Shell,
}

impl Transport {
    /// The manifest's name.
    pub fn name(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Serial => "serial",
            Transport::SerialRaw => "serial_raw",
            Transport::Shell => "shell",
        }
    }
}

/// One server of `manifest.json`.
#[derive(Debug, Clone, Deserialize)]
pub struct Entry {
    /// The executable (native_sim) or the MCUboot+application hex (mps2).
    pub artifact: String,
    /// Its name, e.g. `serial_buf96`.
    pub config: String,
    /// `native_sim` or `mps2_an385`.
    pub target: String,
    /// How it carries SMP.
    pub transport: Transport,
    /// The application's SMP buffer size.
    pub buf_size: usize,
    /// The application's SMP buffer count.
    pub buf_count: usize,
    /// MCUmgr groups compiled in.
    pub groups: Vec<String>,
    /// Whether it runs under MCUboot.
    pub mcuboot: bool,
    /// Whether MCUboot has serial recovery.
    #[serde(default)]
    pub serial_recovery: bool,
    /// MCUboot serial recovery's buffer size.
    pub recovery_buf_size: Option<usize>,
    /// MCUboot serial recovery's buffer count.
    pub recovery_buf_count: Option<usize>,
    /// The UART receiver's line buffer.
    pub line_length_max: Option<usize>,
    /// `ipv4` or `ipv6` (UDP).
    pub ip_family: Option<String>,
    /// The UDP port (fixed).
    pub udp_port: Option<u16>,
    /// How to start a native_sim server (relative to the fixtures directory).
    pub run: Option<String>,
    /// How to start an mps2 server; `<PORT>` is a TCP port of our choosing.
    pub qemu_cmd: Option<String>,
}

impl Entry {
    /// Whether the group (`img`, `os`, …) is compiled in.
    pub fn has_group(&self, group: &str) -> bool {
        self.groups.iter().any(|g| g == group)
    }

    /// Whether it runs on QEMU (mps2-an385).
    pub fn is_qemu(&self) -> bool {
        self.qemu_cmd.is_some()
    }

    /// How SMP frames travel to it.
    pub fn framing(&self) -> Framing {
        match self.transport {
            Transport::Udp => Framing::Datagram,
            Transport::Serial | Transport::Shell => Framing::Console,
            Transport::SerialRaw => Framing::Raw,
        }
    }

    /// The fixture's own signed application image (mps2 builds), a valid image for the board.
    pub fn signed_image(&self) -> Option<String> {
        let name = self.artifact.strip_suffix(".hex")?;
        Some(format!("{name}.signed.bin"))
    }

    /// Every fixture file it needs: the artifact and the QEMU loader files.
    pub fn files(&self) -> Vec<String> {
        let mut files = vec![self.artifact.clone()];
        for word in self.qemu_cmd.iter().flat_map(|c| c.split(|ch: char| ch == ',' || ch.is_whitespace())) {
            if let Some(f) = word.strip_prefix("file=") {
                if !files.iter().any(|x| x == f) {
                    files.push(f.to_string());
                }
            }
        }
        if let Some(img) = self.signed_image() {
            if !files.contains(&img) {
                files.push(img);
            }
        }
        files
    }
}

/// The fixtures directory: the manifest and the checksums.
#[derive(Debug, Clone)]
pub struct Fixtures {
    /// Where they are.
    pub dir: PathBuf,
    /// `manifest.json`, in its order.
    pub entries: Vec<Entry>,
    sums: HashMap<String, String>,
}

impl Fixtures {
    /// `$SMPFLASH_FIXTURES`, or `../shared/zephyr-fixtures` beside the workspace root.
    pub fn locate(root: &Path) -> PathBuf {
        match std::env::var_os(ENV) {
            Some(dir) if !dir.is_empty() => PathBuf::from(dir),
            _ => root.join("../shared/zephyr-fixtures"),
        }
    }

    /// Reads the manifest and `SHA256SUMS` of `dir`. A missing directory is an error naming
    /// where it looked.
    pub fn load(dir: &Path) -> Result<Fixtures> {
        if !dir.is_dir() {
            bail!(
                "no Zephyr fixtures at {} (looked there because {}); set {ENV} to their directory",
                dir.display(),
                if std::env::var_os(ENV).is_some() {
                    format!("{ENV} says so")
                } else {
                    "CI has them at ../shared/zephyr-fixtures".into()
                }
            );
        }
        let manifest = dir.join("manifest.json");
        let text =
            fs::read_to_string(&manifest).with_context(|| format!("cannot read {}", manifest.display()))?;
        let entries: Vec<Entry> = serde_json::from_str(&text)
            .with_context(|| format!("{} is not the expected manifest", manifest.display()))?;
        let sums_path = dir.join("SHA256SUMS");
        let sums_text =
            fs::read_to_string(&sums_path).with_context(|| format!("cannot read {}", sums_path.display()))?;
        let sums = sums_text
            .lines()
            .filter_map(|l| {
                let (hash, name) = l.split_once(char::is_whitespace)?;
                Some((name.trim_start().trim_start_matches('*').to_string(), hash.to_lowercase()))
            })
            .collect();
        Ok(Fixtures { dir: dir.to_path_buf(), entries, sums })
    }

    /// Checks every file `entry` needs against `SHA256SUMS`.
    pub fn verify(&self, entry: &Entry) -> Result<()> {
        for name in entry.files() {
            let want = self.sums.get(&name).ok_or_else(|| anyhow!("{name} is not in SHA256SUMS"))?;
            let path = self.dir.join(&name);
            let bytes = fs::read(&path).with_context(|| format!("missing fixture {}", path.display()))?;
            let got: String = Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect();
            if &got != want {
                bail!("{name}: SHA-256 {got} does not match SHA256SUMS ({want})");
            }
        }
        Ok(())
    }
}

/// How SMP frames travel to a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// One frame per UDP datagram.
    Datagram,
    /// The console framing (`smpflash_serial::codec`).
    Console,
    /// Bare frames on a byte stream (Zephyr's raw UART transport).
    Raw,
}

/// Where a started server listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reach {
    /// UDP inside the network namespace of process `netns_pid` (`nsenter --net=/proc/PID/ns/net`).
    Udp {
        /// A process in the namespace (the server itself).
        netns_pid: u32,
        /// The server's address inside it.
        addr: SocketAddr,
    },
    /// A pty the server's UART is connected to.
    Serial {
        /// `/dev/pts/N`.
        pty: PathBuf,
    },
    /// QEMU's UART on a TCP port of 127.0.0.1.
    Tcp {
        /// The port.
        port: u16,
    },
}

/// A running server. Dropping it kills the process and removes its scratch directory.
pub struct Server {
    /// Its manifest entry.
    pub entry: Entry,
    /// Where it listens.
    pub reach: Reach,
    /// How frames travel to it.
    pub framing: Framing,
    /// From the start until it answered an echo.
    pub ready_after: Duration,
    log: Arc<Mutex<String>>,
    // Field order: the process goes before its scratch directory.
    child: ChildGuard,
    scratch: PathBuf,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server").field("config", &self.entry.config).field("reach", &self.reach).finish()
    }
}

/// How long the first echo may take: native_sim answers within about a second, QEMU within a few
/// seconds (more when several share two cores).
pub fn ready_budget(entry: &Entry) -> Duration {
    if entry.is_qemu() {
        Duration::from_secs(40)
    } else {
        Duration::from_secs(10)
    }
}

impl Server {
    /// Starts `entry` (checksums checked first) and waits until it answers an SMP echo in its
    /// own framing. `scratch_root` holds one scratch directory per server.
    pub fn start(fixtures: &Fixtures, entry: &Entry, scratch_root: &Path) -> Result<Server> {
        fixtures.verify(entry)?;
        let scratch = scratch_root.join(&entry.config);
        fs::create_dir_all(&scratch).with_context(|| format!("cannot create {}", scratch.display()))?;
        child::register_scratch(scratch.clone());
        let started = Instant::now();
        let log = Arc::new(Mutex::new(String::new()));
        let (mut cmd, port) = if let Some(q) = &entry.qemu_cmd {
            let port = free_tcp_port()?;
            let q = q.replace("<PORT>", &port.to_string());
            let mut words = q.split_whitespace();
            let mut cmd = child::with_pdeathsig(words.next().ok_or_else(|| anyhow!("empty qemu_cmd"))?);
            cmd.args(words).current_dir(&fixtures.dir);
            (cmd, Some(port))
        } else {
            let exe = fixtures.dir.join(&entry.artifact);
            let cmd = if entry.transport == Transport::Udp {
                // Port 1337 is fixed: each UDP server gets its own network namespace.
                let mut c = child::with_pdeathsig("unshare");
                c.args(["--net", "sh", "-c", "ip link set lo up && exec \"$0\""]).arg(&exe);
                c
            } else {
                child::with_pdeathsig(&exe.to_string_lossy())
            };
            let mut cmd = cmd;
            cmd.current_dir(&scratch);
            (cmd, None)
        };
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = ChildGuard::spawn(&mut cmd, &entry.config)
            .with_context(|| format!("cannot start {}", entry.config))?;
        let (pty_tx, pty_rx) = mpsc::channel();
        let out = child.child_mut().stdout.take().expect("piped stdout");
        let err = child.child_mut().stderr.take().expect("piped stderr");
        spawn_log_reader(out, log.clone(), Some(pty_tx));
        spawn_log_reader(err, log.clone(), None);

        let reach = match (port, entry.transport) {
            (Some(port), _) => Reach::Tcp { port },
            (None, transport) => {
                // Every native_sim build prints its pty; by then the exec chain (setpriv, unshare,
                // sh) has reached the server, whose network namespace is the one to enter.
                let pty = pty_rx.recv_timeout(Duration::from_secs(10)).map_err(|_| {
                    anyhow!(
                        "{} printed no `uart connected to pseudotty` line; its output: {}",
                        entry.config,
                        log_of(&log)
                    )
                })?;
                if transport == Transport::Udp {
                    let ip = if entry.ip_family.as_deref() == Some("ipv6") { "[::1]" } else { "127.0.0.1" };
                    let addr = format!("{ip}:{}", entry.udp_port.unwrap_or(1337)).parse()?;
                    let pid = child.id();
                    let ours = fs::read_link("/proc/self/ns/net")?;
                    if fs::read_link(format!("/proc/{pid}/ns/net"))? == ours {
                        bail!("{}: the server runs in this network namespace, not its own", entry.config);
                    }
                    Reach::Udp { netns_pid: pid, addr }
                } else {
                    Reach::Serial { pty }
                }
            }
        };
        let mut server = Server {
            framing: entry.framing(),
            entry: entry.clone(),
            reach,
            ready_after: Duration::ZERO,
            log,
            child,
            scratch,
        };
        server.wait_ready(ready_budget(entry)).with_context(|| {
            format!("{} did not answer an SMP echo; its output: {}", entry.config, server.log())
        })?;
        server.ready_after = started.elapsed();
        Ok(server)
    }

    /// What the server printed so far (stdout and stderr).
    pub fn log(&self) -> String {
        log_of(&self.log)
    }

    /// The server's process id (for UDP, also its network namespace).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The smpflash connection options that reach it (`--udp ADDR` or `--serial PATH`).
    pub fn smpflash_link_args(&self) -> Vec<String> {
        match &self.reach {
            Reach::Udp { addr, .. } => vec!["--udp".into(), addr.to_string()],
            Reach::Serial { pty } => vec!["--serial".into(), pty.display().to_string()],
            Reach::Tcp { port } => vec!["--serial".into(), format!("tcp://127.0.0.1:{port}")],
        }
    }

    /// A command running `program` where it can reach the server: inside the server's network
    /// namespace for UDP (`nsenter`), as is otherwise.
    pub fn command(&self, program: &Path) -> Command {
        match &self.reach {
            Reach::Udp { netns_pid, .. } => {
                let mut c = Command::new("nsenter");
                c.arg(format!("--net=/proc/{netns_pid}/ns/net")).arg("--").arg(program);
                c
            }
            _ => Command::new(program),
        }
    }

    /// Opens a raw link to the server. QEMU serves one TCP client at a time: drop the link before
    /// smpflash connects.
    pub fn link(&self) -> io::Result<RawLink> {
        let medium = match &self.reach {
            Reach::Udp { netns_pid, addr } => Medium::Udp(udp_socket_in(*netns_pid, *addr)?),
            Reach::Serial { pty } => Medium::Pty(open_raw_pty(pty)?),
            Reach::Tcp { port } => {
                let s = TcpStream::connect(("127.0.0.1", *port))?;
                s.set_nodelay(true)?;
                Medium::Tcp(s)
            }
        };
        Ok(RawLink { medium, framing: self.framing, codec: ConsoleCodec::new(), buf: BytesMut::new() })
    }

    /// Sends one raw SMP frame on a new link and returns the first frame that comes back.
    pub fn exchange(&self, frame: &[u8], timeout: Duration) -> io::Result<Vec<u8>> {
        self.link()?.exchange(frame, timeout)
    }

    /// Sends echo requests (one a second) until one is answered or `within` passed; returns the
    /// time it took.
    pub fn wait_ready(&mut self, within: Duration) -> Result<Duration> {
        let start = Instant::now();
        let request = encode_request(&Echo { d: "ready?".into() }, Version::V1, 0x5a)?.encode();
        let mut last = String::from("no attempt");
        while start.elapsed() < within {
            if let Some(status) = self.child.try_wait()? {
                bail!("the server exited ({status})");
            }
            match self.exchange(&request, Duration::from_secs(1)) {
                Ok(answer) => match Frame::decode(&answer) {
                    Ok(f) if f.header.group == 0 && f.header.id == 0 && f.header.seq == 0x5a => {
                        return Ok(start.elapsed())
                    }
                    Ok(f) => last = format!("an answer that is not the echo's: {:?}", f.header),
                    Err(e) => last = format!("an undecodable answer: {e}"),
                },
                Err(e) => {
                    last = e.to_string();
                    thread::sleep(Duration::from_millis(200));
                }
            }
        }
        bail!("no echo answer within {:.0?} (last: {last})", within)
    }

    /// Waits at most `within` for the process to exit.
    pub fn wait_exit(&mut self, within: Duration) -> io::Result<Option<ExitStatus>> {
        self.child.wait_within(within)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.child.kill();
        let _ = fs::remove_dir_all(&self.scratch);
        child::unregister_scratch(&self.scratch);
    }
}

fn log_of(log: &Mutex<String>) -> String {
    log.lock().expect("server log").clone()
}

fn spawn_log_reader(
    pipe: impl Read + Send + 'static,
    log: Arc<Mutex<String>>,
    pty: Option<mpsc::Sender<PathBuf>>,
) {
    thread::spawn(move || {
        let mut reader = BufReader::new(pipe);
        let mut line = Vec::new();
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            let text = String::from_utf8_lossy(&line).into_owned();
            if let (Some(tx), Some(at)) = (&pty, text.find("uart connected to pseudotty: ")) {
                let path = text[at + "uart connected to pseudotty: ".len()..].trim();
                let _ = tx.send(PathBuf::from(path));
            }
            let mut l = log.lock().expect("server log");
            // Keep the log bounded: a chatty server must not grow it without end.
            if l.len() < 64 * 1024 {
                l.push_str(&text);
            }
        }
    });
}

fn free_tcp_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A UDP socket created inside the network namespace of `pid` (the socket stays there; the
/// thread that entered the namespace ends).
fn udp_socket_in(pid: u32, peer: SocketAddr) -> io::Result<UdpSocket> {
    let ns = File::open(format!("/proc/{pid}/ns/net"))?;
    thread::spawn(move || -> io::Result<UdpSocket> {
        nix::sched::setns(ns.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).map_err(io::Error::from)?;
        let local = if peer.is_ipv6() { "[::]:0" } else { "0.0.0.0:0" };
        let s = UdpSocket::bind(local)?;
        s.connect(peer)?;
        Ok(s)
    })
    .join()
    .map_err(|_| io::Error::other("the namespace thread panicked"))?
}

fn open_raw_pty(path: &Path) -> io::Result<File> {
    let f = fs::OpenOptions::new().read(true).write(true).custom_flags(libc::O_NOCTTY).open(path)?;
    let mut t = nix::sys::termios::tcgetattr(&f).map_err(io::Error::from)?;
    nix::sys::termios::cfmakeraw(&mut t);
    nix::sys::termios::tcsetattr(&f, nix::sys::termios::SetArg::TCSANOW, &t).map_err(io::Error::from)?;
    Ok(f)
}

enum Medium {
    Udp(UdpSocket),
    Pty(File),
    Tcp(TcpStream),
}

/// A raw connection to one server: frames in, frames out, in the server's framing.
pub struct RawLink {
    medium: Medium,
    framing: Framing,
    codec: ConsoleCodec,
    buf: BytesMut,
}

impl RawLink {
    /// A link to a UDP peer in this network namespace (the virtual device), one frame per
    /// datagram.
    pub fn udp(peer: SocketAddr) -> io::Result<RawLink> {
        let s = UdpSocket::bind(if peer.is_ipv6() { "[::]:0" } else { "0.0.0.0:0" })?;
        s.connect(peer)?;
        Ok(RawLink::over(Medium::Udp(s), Framing::Datagram))
    }

    /// A link over a pty (the virtual device's serial port) in `framing`: the console
    /// framing, or the raw one of a `serial_raw` server.
    pub fn pty(path: &Path, framing: Framing) -> io::Result<RawLink> {
        Ok(RawLink::over(Medium::Pty(open_raw_pty(path)?), framing))
    }

    fn over(medium: Medium, framing: Framing) -> RawLink {
        RawLink { medium, framing, codec: ConsoleCodec::new(), buf: BytesMut::new() }
    }

    /// Sends one SMP frame (header and body) in the server's framing.
    pub fn send(&mut self, frame: &[u8]) -> io::Result<()> {
        let wire = match self.framing {
            Framing::Console => encode_frame(frame).map_err(io::Error::other)?,
            Framing::Datagram | Framing::Raw => frame.to_vec(),
        };
        match &mut self.medium {
            Medium::Udp(s) => s.send(&wire).map(drop),
            Medium::Pty(f) => f.write_all(&wire),
            Medium::Tcp(s) => s.write_all(&wire),
        }
    }

    /// The next frame from the server (console lines that are not packets are skipped).
    pub fn recv(&mut self, timeout: Duration) -> io::Result<Vec<u8>> {
        let end = Instant::now() + timeout;
        loop {
            if let Some(frame) = self.take_frame()? {
                return Ok(frame);
            }
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "no answer"));
            }
            let mut chunk = vec![0u8; 65536];
            let n = match &mut self.medium {
                Medium::Udp(s) => {
                    s.set_read_timeout(Some(left))?;
                    match s.recv(&mut chunk) {
                        Ok(n) => return Ok(chunk[..n].to_vec()),
                        Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                            continue
                        }
                        Err(e) => return Err(e),
                    }
                }
                Medium::Tcp(s) => {
                    s.set_read_timeout(Some(left))?;
                    match s.read(&mut chunk) {
                        Ok(0) => {
                            return Err(io::Error::new(
                                io::ErrorKind::UnexpectedEof,
                                "the server closed the link",
                            ))
                        }
                        Ok(n) => n,
                        Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                            continue
                        }
                        Err(e) => return Err(e),
                    }
                }
                Medium::Pty(f) => {
                    let ms = u16::try_from(left.as_millis().max(1)).unwrap_or(u16::MAX);
                    let mut fds = [nix::poll::PollFd::new(f.as_fd(), nix::poll::PollFlags::POLLIN)];
                    if nix::poll::poll(&mut fds, ms).map_err(io::Error::from)? == 0 {
                        continue;
                    }
                    f.read(&mut chunk)?
                }
            };
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Sends `frame` and returns the first frame that comes back within `timeout`.
    pub fn exchange(&mut self, frame: &[u8], timeout: Duration) -> io::Result<Vec<u8>> {
        self.send(frame)?;
        self.recv(timeout)
    }

    fn take_frame(&mut self) -> io::Result<Option<Vec<u8>>> {
        match self.framing {
            Framing::Datagram => Ok(None),
            Framing::Console => loop {
                match self.codec.decode(&mut self.buf)? {
                    Some(ConsoleItem::Frame(f)) => return Ok(Some(f)),
                    Some(_) => {}
                    None => return Ok(None),
                }
            },
            Framing::Raw => match expected_len(&self.buf) {
                Some(n) if self.buf.len() >= n => Ok(Some(self.buf.split_to(n).to_vec())),
                _ => Ok(None),
            },
        }
    }
}
