//! The UDP front end: one SMP frame per datagram, as Zephyr's `smp_udp`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::device::Device;
use crate::faults::{LinkFaults, Rng};
use crate::profile::BootMode;
use crate::referee::{Client, Observation};

/// How long a reordered answer is held back: the answers sent after it overtake it, and a
/// client waiting for it alone still gets it well within its timeout, as on a real network.
pub const REORDER_DELAY: Duration = Duration::from_millis(20);

/// Options of the UDP front end.
#[derive(Debug, Clone, Copy, Default)]
pub struct UdpOptions {
    /// Round-trip time added to every answer (a slow network), the same for every client.
    pub added_rtt: Duration,
    /// Datagram faults.
    pub faults: LinkFaults,
}

/// A running UDP front end; stops when dropped.
#[derive(Debug)]
pub struct UdpServer {
    addr: SocketAddr,
    tasks: Vec<JoinHandle<()>>,
}

impl UdpServer {
    /// The address clients connect to.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for UdpServer {
    fn drop(&mut self) {
        self.tasks.iter().for_each(JoinHandle::abort);
    }
}

/// Serves `device` on `bind` (port 0 picks a free port).
pub async fn serve(device: Arc<Device>, bind: SocketAddr, options: UdpOptions) -> std::io::Result<UdpServer> {
    let socket = Arc::new(UdpSocket::bind(bind).await?);
    let addr = socket.local_addr()?;
    // One worker handles requests in arrival order, like Zephyr's SMP work queue.
    let (queue, mut work) =
        mpsc::unbounded_channel::<(Vec<u8>, SocketAddr, tokio::sync::OwnedSemaphorePermit)>();
    let rng = Arc::new(std::sync::Mutex::new(Rng::new(options.faults.seed)));
    let faults = options.faults;

    let rx_socket = socket.clone();
    let rx_device = device.clone();
    let rx_rng = rng.clone();
    let receiver = tokio::spawn(async move {
        let mut buf = vec![0u8; 65536];
        loop {
            let Ok((n, from)) = rx_socket.recv_from(&mut buf).await else {
                continue;
            };
            let (drop_it, dup) = {
                let mut r = rx_rng.lock().unwrap_or_else(|e| e.into_inner());
                (r.chance(faults.drop), r.chance(faults.duplicate))
            };
            if drop_it || !rx_device.is_up() {
                tracing::debug!("sim udp: dropped a {n}-byte request from {from}");
                continue;
            }
            // Zephyr's smp_udp receives into a CONFIG_MCUMGR_TRANSPORT_UDP_MTU buffer
            // (`zsock_recvfrom(..., CONFIG_MCUMGR_TRANSPORT_UDP_MTU, ...)`), which must not
            // exceed the SMP buffer; the sim's MTU is buf_size. A longer datagram is cut to
            // it, as a datagram socket does, and the SMP server then finds less than the
            // header's length and answers MGMT_ERR_ECORRUPT.
            let n_kept = n.min(rx_device.profile().buf_size);
            if n_kept < n {
                tracing::debug!("sim udp: a {n}-byte datagram cut to the {n_kept}-byte MTU");
                rx_device.observe(
                    &Client::Udp(from),
                    Observation::TooLarge { len: n, buf_size: rx_device.profile().buf_size },
                );
            }
            for _ in 0..1 + dup as usize {
                match rx_device.buffers().try_acquire_owned() {
                    Ok(permit) => {
                        let _ = queue.send((buf[..n_kept].to_vec(), from, permit));
                    }
                    Err(_) => {
                        tracing::debug!(
                            "sim udp: all {} buffers busy; request dropped",
                            rx_device.profile().buf_count
                        );
                        // Zephyr takes the answer's buffer from the same pool: one fewer
                        // than buf_count may be in flight.
                        let buffers = rx_device.profile().buf_count.saturating_sub(1).max(1);
                        rx_device
                            .observe(&Client::Udp(from), Observation::NoBuffer { buffers, dropped: true });
                    }
                }
            }
        }
    });

    let worker = tokio::spawn(async move {
        while let Some((frame, from, permit)) = work.recv().await {
            // Zephyr allocates the answer from the same pool before handling a request
            // (smp_alloc_rsp); with every buffer holding a request, the request is lost
            // unanswered. That is why a client may keep only buf_count - 1 requests in flight.
            // MCUboot's serial recovery answers from its own static buffer.
            let answer_buffer = if device.profile().mode == BootMode::SerialRecovery {
                None
            } else {
                let Ok(b) = device.buffers().try_acquire_owned() else {
                    tracing::debug!("sim udp: no buffer for the answer; request dropped");
                    let buffers = device.profile().buf_count.saturating_sub(1).max(1);
                    device.observe(&Client::Udp(from), Observation::NoBuffer { buffers, dropped: true });
                    continue;
                };
                Some(b)
            };
            let outcome = device.handle(&Client::Udp(from), &frame).await;
            drop(permit);
            for response in outcome.responses {
                let (drop_it, dup, reorder) = {
                    let mut r = rng.lock().unwrap_or_else(|e| e.into_inner());
                    (r.chance(faults.drop), r.chance(faults.duplicate), r.chance(faults.reorder))
                };
                if !drop_it {
                    let delay = options.added_rtt + if reorder { REORDER_DELAY } else { Duration::ZERO };
                    for _ in 0..1 + dup as usize {
                        if delay.is_zero() {
                            let _ = socket.send_to(&response, from).await;
                        } else {
                            send_later(socket.clone(), response.clone(), from, delay);
                        }
                    }
                }
            }
            // The answer has left the device; its network delay holds no device buffer.
            drop(answer_buffer);
            if outcome.reset {
                // Requests waiting in the SMP buffers are RAM, which a reset loses. Kept, a
                // duplicated reset request would reset the device twice, and MCUboot would
                // revert an image under test before anyone could confirm it.
                while work.try_recv().is_ok() {}
                device.reset().await;
            }
        }
    });
    Ok(UdpServer { addr, tasks: vec![receiver, worker] })
}

fn send_later(socket: Arc<UdpSocket>, datagram: Vec<u8>, to: SocketAddr, delay: Duration) {
    tokio::spawn(async move {
        crate::clock::sleep(delay).await;
        let _ = socket.send_to(&datagram, to).await;
    });
}
