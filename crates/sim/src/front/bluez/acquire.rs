//! `AcquireWrite` and `AcquireNotify` on the SMP characteristic, as bluetoothd's
//! `src/gatt-client.c` does them (more of [`Radio`]): the client gets one end of a
//! `SOCK_SEQPACKET` socket pair and the ATT MTU; each packet it writes is one write without
//! response into the characteristic, and each notification is one packet it reads. Both go
//! through the same simulated radio link as `WriteValue` and `StartNotify`, so airtime,
//! connection events and the MTU limit apply alike. The socket is released when the client
//! closes its end (or calls `StopNotify` for a notify socket), and closed by us when the link
//! goes.

use std::io::Read;
use std::sync::Arc;

use socket2::{Domain, Socket, Type};
use tokio::io::unix::AsyncFd;
use zbus::zvariant::OwnedFd;

use super::error::{BluezError, Result};
use super::names::CHARACTERISTIC1;
use super::radio::{Acquired, Radio};
use crate::referee::{Client, Observation};

/// Which socket: bluetoothd keeps one of each per characteristic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Direction {
    Write,
    Notify,
}

impl Direction {
    fn property(self) -> &'static str {
        match self {
            Direction::Write => "WriteAcquired",
            Direction::Notify => "NotifyAcquired",
        }
    }
}

/// bluetoothd reads a packet into a buffer of this size; a longer one is cut.
const READ_BUF: usize = 512;

fn socket_pair() -> Result<(Socket, Socket)> {
    // socket2 sets close-on-exec, as bluetoothd's SOCK_CLOEXEC.
    let (ours, theirs) =
        Socket::pair(Domain::UNIX, Type::SEQPACKET, None).map_err(|e| BluezError::Failed(e.to_string()))?;
    ours.set_nonblocking(true).map_err(|e| BluezError::Failed(e.to_string()))?;
    Ok((ours, theirs))
}

/// Whether the client has closed its end and nothing it wrote before is left to read.
fn hung_up(sock: &Socket) -> bool {
    let mut byte = [std::mem::MaybeUninit::<u8>::uninit(); 1];
    // A zero-length packet would read as 0 too; bluetoothd also takes it for the end.
    matches!(sock.peek(&mut byte), Ok(0))
}

impl Radio {
    /// `AcquireWrite`: a socket whose packets become write commands.
    pub async fn acquire_write(self: &Arc<Self>) -> Result<(OwnedFd, u16)> {
        {
            let st = self.st();
            if st.link.is_none() {
                return Err(BluezError::not_connected());
            }
            if st.write_io.is_some() {
                return Err(BluezError::NotPermitted("Write acquired".into()));
            }
        }
        self.acquire(Direction::Write).await
    }

    /// `AcquireNotify`: a socket that receives each notification as one packet. Like
    /// `StartNotify` it sets the device's CCC, so it needs pairing when the device does.
    pub async fn acquire_notify(self: &Arc<Self>) -> Result<(OwnedFd, u16)> {
        {
            let st = self.st();
            if st.link.is_none() {
                return Err(BluezError::not_connected());
            }
            if st.notify_io.is_some() {
                return Err(BluezError::NotPermitted("Notify acquired".into()));
            }
            // Each client has one notify session: a StartNotify one excludes the socket.
            if st.notifying() {
                return Err(BluezError::InProgress("In Progress".into()));
            }
            if self.opts.require_pairing && !st.paired {
                return Err(BluezError::insufficient_authentication());
            }
        }
        self.acquire(Direction::Notify).await
    }

    async fn acquire(self: &Arc<Self>, dir: Direction) -> Result<(OwnedFd, u16)> {
        let (ours, theirs) = socket_pair()?;
        // `new` is deprecated for types that could close or swap their descriptor while it is
        // registered; a `Socket` owns its descriptor for life and is never taken out.
        #[allow(deprecated)]
        let sock = AsyncFd::new(ours).map_err(|e| BluezError::Failed(e.to_string()))?;
        let sock = Arc::new(sock);
        {
            let mut st = self.st();
            // Checked again under the same lock that stores the socket: the link may have gone
            // while the pair was made.
            let taken = match dir {
                Direction::Write => st.write_io.is_some(),
                Direction::Notify => st.notify_io.is_some() || st.notifying(),
            };
            if st.link.is_none() {
                return Err(BluezError::not_connected());
            }
            if taken {
                return Err(BluezError::NotPermitted(format!(
                    "{} acquired",
                    if dir == Direction::Write { "Write" } else { "Notify" }
                )));
            }
            st.acquired += 1;
            let id = st.acquired;
            let task = Some(tokio::spawn(read_socket(self.clone(), dir, id, sock.clone())));
            let io = Some(Acquired { id, sock, task });
            match dir {
                Direction::Write => st.write_io = io,
                Direction::Notify => st.notify_io = io,
            }
        }
        tracing::debug!("bluez sim: {} handed out", dir.property());
        self.changed(&self.char_path(), CHARACTERISTIC1, vec![(dir.property(), true.into())]).await;
        Ok((OwnedFd::from(std::os::fd::OwnedFd::from(theirs)), self.mtu()))
    }

    /// Releases the socket numbered `id` if it is still the current one. `by_reader`: called
    /// by its own reading task, which ends by itself right after.
    pub(super) async fn release(&self, dir: Direction, id: u64, by_reader: bool) {
        let released = {
            let mut st = self.st();
            let slot = match dir {
                Direction::Write => &mut st.write_io,
                Direction::Notify => &mut st.notify_io,
            };
            match slot {
                Some(io) if io.id == id => slot.take(),
                _ => None,
            }
        };
        if let Some(mut io) = released {
            if by_reader {
                // Aborting our own task would cancel the signal below.
                io.task.take();
            }
            drop(io);
            tracing::debug!("bluez sim: {} released", dir.property());
            self.changed(&self.char_path(), CHARACTERISTIC1, vec![(dir.property(), false.into())]).await;
        }
    }

    /// `StopNotify` while a notify socket is out: bluetoothd closes it.
    pub(super) async fn release_notify_socket(&self) -> bool {
        let id = self.st().notify_io.as_ref().map(|io| io.id);
        match id {
            Some(id) => {
                self.release(Direction::Notify, id, false).await;
                true
            }
            None => false,
        }
    }

    /// `WriteValue` is refused while a write socket is out; one whose client already closed it
    /// is released first, so a client that closes the socket and then writes (Bleak's
    /// `_acquire_mtu`) does not race the hang-up.
    pub(super) async fn write_socket_closed_or_absent(&self) -> bool {
        let current = {
            let st = self.st();
            match &st.write_io {
                None => return true,
                Some(io) => hung_up(io.sock.get_ref()).then_some(io.id),
            }
        };
        match current {
            Some(id) => {
                self.release(Direction::Write, id, false).await;
                true
            }
            None => false,
        }
    }

    /// One packet from the write socket: a write command into the characteristic, queued
    /// behind the others like a `WriteValue`. What bluetoothd could not send is lost silently,
    /// as there is nobody to answer: a value longer than MTU-3 (the ATT layer refuses it), or
    /// any value before pairing when the device requires it (the device drops it).
    fn socket_write(&self, id: u64, value: Vec<u8>) {
        let st = self.st();
        if st.write_io.as_ref().is_none_or(|io| io.id != id) {
            return;
        }
        let Some(link) = &st.link else {
            return;
        };
        if value.len() > self.opts.link.max_value_len() {
            tracing::debug!(
                "bluez sim: {} byte packet on the write socket exceeds ATT MTU {} minus 3; dropped",
                value.len(),
                self.opts.link.att_mtu
            );
            let mtu = self.opts.link.att_mtu;
            self.device.observe(&Client::Ble, Observation::WriteTooLong { len: value.len(), mtu });
            return;
        }
        if self.opts.require_pairing && !st.paired {
            tracing::debug!("bluez sim: write on the socket before pairing; the device drops it");
            return;
        }
        let _ = link.writes.send(value);
    }

    /// Hands a notification to the notify socket, if one is out; `false` when there is none.
    pub(super) fn notify_socket(&self, value: &[u8]) -> bool {
        let st = self.st();
        let Some(io) = &st.notify_io else {
            return false;
        };
        // Non-blocking, like bluetoothd's sendmsg: a client that does not read loses
        // notifications once its socket buffer is full.
        if let Err(e) = io.sock.get_ref().send(value) {
            tracing::debug!("bluez sim: notification not delivered to the socket: {e}");
        }
        true
    }
}

/// Reads the socket until the client closes its end, then releases it. Packets on a write
/// socket are write commands; bluetoothd reads a notify socket the same way, but a client has
/// nothing to send there, so they are dropped.
async fn read_socket(radio: Arc<Radio>, dir: Direction, id: u64, sock: Arc<AsyncFd<Socket>>) {
    let mut buf = [0u8; READ_BUF];
    loop {
        let Ok(mut ready) = sock.readable().await else {
            break;
        };
        match ready.try_io(|s| {
            let mut sock: &Socket = s.get_ref();
            sock.read(&mut buf)
        }) {
            Ok(Ok(0)) => break,
            Ok(Ok(n)) => {
                if dir == Direction::Write {
                    radio.socket_write(id, buf[..n].to_vec());
                }
            }
            Ok(Err(e)) => {
                tracing::debug!("bluez sim: reading the {} socket failed: {e}", dir.property());
                break;
            }
            Err(_would_block) => continue,
        }
    }
    radio.release(dir, id, true).await;
}
