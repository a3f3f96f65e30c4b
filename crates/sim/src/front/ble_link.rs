//! A simulated BLE connection between a central (the client) and a peripheral (the virtual
//! device) that moves ATT values with the timing of a real radio link.
//!
//! Data moves only in connection events, one per connection interval. In an event the central
//! and the peripheral alternate link-layer PDUs, each exchange costing the airtime of both PDUs
//! plus two inter-frame spaces, until the event runs out of time, hits the per-event PDU cap, or
//! neither side has data. ATT values are split into link-layer PDUs by the data length; the
//! peripheral's receive buffers hold the central back (its PDUs go unacknowledged) when the
//! device does not read. The formulas, and worked numbers for the three profiles, are in
//! `docs/ble-link-model.md`.
//!
//! [`link`] returns the two ends: [`SimCentral`] implements [`GattLink`], so the real
//! SMP-over-GATT transport runs over it unchanged, and [`SimPeripheral`] is what a virtual
//! device reads writes from and sends notifications through.

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use smpflash_core::gatt::{GattLink, DEFAULT_ATT_MTU};
use smpflash_core::transport::{TransportError, TransportKind};
use smpflash_core::{Error, Result};
use tokio::sync::Notify;
use tokio::time::MissedTickBehavior;

/// Inter-frame space between consecutive PDUs of a connection event.
pub const T_IFS: Duration = Duration::from_micros(150);

/// ATT values the central's host buffers before [`SimCentral::write`] waits. Bounded so that a
/// fast writer feels back-pressure instead of queueing a whole image in memory, as a real host
/// stack's ACL buffers do.
pub const CENTRAL_TX_VALUES: usize = 8;

/// Notifications the peripheral's host buffers before [`SimPeripheral::notify`] waits for room.
pub const PERIPHERAL_TX_VALUES: usize = 4;

/// Bytes an ATT write command or notification adds to its value: opcode and handle.
pub const ATT_HEADER: usize = 3;

/// Bytes of the L2CAP basic header in front of every ATT PDU.
pub const L2CAP_HEADER: usize = 4;

/// Link-layer bytes of a PDU besides preamble and payload: access address 4, header 2, CRC 3.
const LL_OVERHEAD: usize = 4 + 2 + 3;

/// Message integrity check an encrypted link adds to every non-empty PDU.
const MIC: usize = 4;

named_enum! {
    /// The link profiles [`LinkParams::by_name`] knows, by name.
    pub enum BleLinkProfile ("BLE link profile") {
        /// [`LinkParams::phone_fast`].
        PhoneFast = "phone-fast",
        /// [`LinkParams::phone_slow`].
        PhoneSlow = "phone-slow",
        /// [`LinkParams::legacy`].
        Legacy = "legacy",
    }
}

impl BleLinkProfile {
    /// The link's parameters.
    pub fn params(self) -> LinkParams {
        match self {
            BleLinkProfile::PhoneFast => LinkParams::phone_fast(),
            BleLinkProfile::PhoneSlow => LinkParams::phone_slow(),
            BleLinkProfile::Legacy => LinkParams::legacy(),
        }
    }
}

/// Radio PHY of the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Phy {
    /// LE 1M: 1 Mbit/s, 1-byte preamble.
    OneM,
    /// LE 2M: 2 Mbit/s, 2-byte preamble.
    TwoM,
}

impl Phy {
    /// Airtime of one byte.
    pub fn byte_time(self) -> Duration {
        match self {
            Phy::OneM => Duration::from_micros(8),
            Phy::TwoM => Duration::from_micros(4),
        }
    }

    /// Preamble length in bytes.
    pub fn preamble(self) -> usize {
        match self {
            Phy::OneM => 1,
            Phy::TwoM => 2,
        }
    }
}

impl fmt::Display for Phy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Phy::OneM => "1M",
            Phy::TwoM => "2M",
        })
    }
}

/// Parameters of a simulated connection.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkParams {
    /// Negotiated ATT MTU; values are at most `att_mtu - 3` bytes.
    pub att_mtu: usize,
    /// Largest link-layer payload: 27 without Data Length Extension, up to 251 with it.
    pub ll_data_len: usize,
    /// Radio PHY.
    pub phy: Phy,
    /// Connection interval (7.5 ms to 4 s on a real link).
    pub conn_interval: Duration,
    /// Most central PDUs (exchanges) the central's controller schedules in one event.
    pub max_pdus_per_event: usize,
    /// Whether the link is encrypted, adding a 4-byte MIC to every non-empty PDU.
    pub encrypted: bool,
    /// ATT values the device side buffers before the link stops accepting more.
    pub peripheral_rx_values: usize,
    /// Wall-clock seconds per simulated second: 1.0 is real time, 0.1 ten times faster.
    pub time_scale: f64,
    /// Fault knob: drop the link once this many value bytes went from central to peripheral.
    pub disconnect_after_bytes: Option<u64>,
}

impl LinkParams {
    /// A recent phone that negotiates everything: 2M PHY, DLE 251, MTU 498, 15 ms interval,
    /// 6 PDUs per event, paired (encrypted).
    pub fn phone_fast() -> Self {
        LinkParams {
            att_mtu: 498,
            ll_data_len: 251,
            phy: Phy::TwoM,
            conn_interval: Duration::from_millis(15),
            max_pdus_per_event: 6,
            encrypted: true,
            peripheral_rx_values: 6,
            time_scale: 1.0,
            disconnect_after_bytes: None,
        }
    }

    /// A phone that stays on 1M: DLE 251, MTU 247, 30 ms interval, 4 PDUs per event, paired.
    pub fn phone_slow() -> Self {
        LinkParams {
            att_mtu: 247,
            ll_data_len: 251,
            phy: Phy::OneM,
            conn_interval: Duration::from_millis(30),
            max_pdus_per_event: 4,
            encrypted: true,
            peripheral_rx_values: 6,
            time_scale: 1.0,
            disconnect_after_bytes: None,
        }
    }

    /// A Bluetooth 4.0/4.1 central: 1M, no DLE (27-byte PDUs), MTU 23, 50 ms interval,
    /// 4 PDUs per event, not paired.
    pub fn legacy() -> Self {
        LinkParams {
            att_mtu: DEFAULT_ATT_MTU,
            ll_data_len: 27,
            phy: Phy::OneM,
            conn_interval: Duration::from_millis(50),
            max_pdus_per_event: 4,
            encrypted: false,
            peripheral_rx_values: 6,
            time_scale: 1.0,
            disconnect_after_bytes: None,
        }
    }

    /// One of [`BleLinkProfile`]'s names (`_` and `-` alike, any case).
    pub fn by_name(name: &str) -> Option<Self> {
        name.to_ascii_lowercase().replace('_', "-").parse::<BleLinkProfile>().ok().map(BleLinkProfile::params)
    }

    /// The same link running `time_scale` wall-clock seconds per simulated second.
    pub fn with_time_scale(mut self, time_scale: f64) -> Self {
        self.time_scale = time_scale;
        self
    }

    /// Why these parameters cannot describe a link, if they cannot.
    pub fn validate(&self) -> std::result::Result<(), String> {
        if !(DEFAULT_ATT_MTU..=517).contains(&self.att_mtu) {
            return Err(format!("ATT MTU {} outside {DEFAULT_ATT_MTU}..=517", self.att_mtu));
        }
        if !(27..=251).contains(&self.ll_data_len) {
            return Err(format!("link-layer data length {} outside 27..=251", self.ll_data_len));
        }
        if self.conn_interval < Duration::from_micros(7500) {
            return Err(format!("connection interval {:?} below the 7.5 ms minimum", self.conn_interval));
        }
        if self.max_pdus_per_event == 0 || self.peripheral_rx_values == 0 {
            return Err("PDUs per event and peripheral buffers must be at least 1".into());
        }
        if !(self.time_scale.is_finite() && self.time_scale > 0.0) {
            return Err(format!("time scale {} must be positive", self.time_scale));
        }
        Ok(())
    }

    /// Airtime of one PDU carrying `payload` link-layer payload bytes.
    pub fn pdu_airtime(&self, payload: usize) -> Duration {
        let mic = if self.encrypted && payload > 0 { MIC } else { 0 };
        let bytes = self.phy.preamble() + LL_OVERHEAD + payload + mic;
        self.phy.byte_time() * bytes as u32
    }

    /// Time one exchange takes when the central sends a full PDU and the peripheral answers
    /// with an empty one: the unit of one-way throughput.
    pub fn exchange_time(&self) -> Duration {
        self.pdu_airtime(self.ll_data_len) + T_IFS + self.pdu_airtime(0) + T_IFS
    }

    /// Exchanges per connection event when the central always has a full PDU to send.
    pub fn exchanges_per_event(&self) -> usize {
        let fit = (self.conn_interval.as_nanos() / self.exchange_time().as_nanos()) as usize;
        fit.min(self.max_pdus_per_event)
    }

    /// Largest value a write or notification carries.
    pub fn max_value_len(&self) -> usize {
        self.att_mtu - ATT_HEADER
    }

    /// Link-layer PDUs one value of `len` bytes takes (ATT and L2CAP headers included).
    pub fn pdus_per_value(&self, len: usize) -> usize {
        (len + ATT_HEADER + L2CAP_HEADER).div_ceil(self.ll_data_len)
    }

    /// ATT value payload bytes per second one way when values of `mtu - 3` bytes are written
    /// back to back and the device keeps up.
    ///
    /// Every exchange is costed with a full PDU, so this is exact when a value fills its PDUs
    /// (true for all three profiles) or the PDU cap binds, and a slight underestimate otherwise.
    pub fn capacity_bytes_per_s(&self) -> f64 {
        let values_per_event =
            self.exchanges_per_event() as f64 / self.pdus_per_value(self.max_value_len()) as f64;
        values_per_event * self.max_value_len() as f64 / self.conn_interval.as_secs_f64()
    }

    /// Wall-clock time between connection events.
    fn tick(&self) -> Duration {
        self.conn_interval.mul_f64(self.time_scale).max(Duration::from_micros(1))
    }
}

/// Counters of what the link carried, for checking measurements against the model.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkStats {
    /// Connection events run; times the interval, this is the simulated time elapsed.
    pub events: u64,
    /// Exchanges (central PDU plus peripheral PDU) that carried data either way.
    pub exchanges: u64,
    /// Events in which the central had data but the peripheral's buffers were full.
    pub stalled_events: u64,
    /// Values delivered to the peripheral.
    pub values_to_peripheral: u64,
    /// Value bytes delivered to the peripheral.
    pub bytes_to_peripheral: u64,
    /// Notifications delivered to the central.
    pub values_to_central: u64,
    /// Notification bytes delivered to the central.
    pub bytes_to_central: u64,
}

/// One direction's queue of values waiting for airtime; the head may be partly sent.
#[derive(Default)]
struct Outbox {
    values: VecDeque<Vec<u8>>,
    head_sent: usize,
    /// Values ever queued and ever fully sent, so a sender can wait for its own value.
    queued: u64,
    sent: u64,
}

impl Outbox {
    fn head_remaining(&self) -> Option<usize> {
        self.values.front().map(|v| v.len() + ATT_HEADER + L2CAP_HEADER - self.head_sent)
    }

    /// Sends `n` bytes of the head; returns the head value if that completed it.
    fn advance(&mut self, n: usize) -> Option<Vec<u8>> {
        self.head_sent += n;
        if self.head_remaining() == Some(0) {
            self.head_sent = 0;
            self.sent += 1;
            self.values.pop_front()
        } else {
            None
        }
    }
}

#[derive(Default)]
struct State {
    down: Option<String>,
    central_out: Outbox,
    peripheral_in: VecDeque<Vec<u8>>,
    peripheral_out: Outbox,
    central_in: VecDeque<Vec<u8>>,
    stats: LinkStats,
}

impl State {
    fn go_down(&mut self, why: impl Into<String>) {
        if self.down.is_none() {
            let why = why.into();
            tracing::debug!("simulated BLE link down: {why}");
            self.down = Some(why);
            // Values not yet on air die with the link; what already arrived stays readable.
            self.central_out = Outbox::default();
            self.peripheral_out.values.clear();
        }
    }
}

struct Shared {
    params: LinkParams,
    state: Mutex<State>,
    // Woken on every state change; waiters re-check their own condition.
    changed: Notify,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        // The state is plain queues and counters, consistent after any panic elsewhere.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits until `ready` produces a value, re-checking after every state change.
    async fn wait_for<T>(&self, mut ready: impl FnMut(&mut State) -> Option<T>) -> T {
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            // Registered before checking, so a change between the check and the await still
            // wakes us.
            notified.as_mut().enable();
            if let Some(v) = ready(&mut self.state()) {
                return v;
            }
            notified.await;
        }
    }

    fn close(&self, why: &str) {
        self.state().go_down(why);
        self.changed.notify_waiters();
    }

    fn disconnected(&self, st: &State) -> Error {
        Error::link_lost(format!("simulated BLE link: {}", st.down.as_deref().unwrap_or("closed")))
    }

    fn check_len(&self, len: usize) -> Result<()> {
        let max = self.params.max_value_len();
        if len > max {
            return Err(Error::Transport(TransportError::new(
                TransportKind::Unsupported,
                format!("{len} byte value exceeds ATT MTU {} minus 3", self.params.att_mtu),
            )));
        }
        Ok(())
    }

    /// Runs one connection event; returns whether anything moved.
    fn run_event(&self, st: &mut State) -> bool {
        let p = &self.params;
        let budget = p.conn_interval;
        let mut used = Duration::ZERO;
        let mut exchanges = 0;
        let mut moved = false;
        let mut stalled = false;
        st.stats.events += 1;
        while exchanges < p.max_pdus_per_event && st.down.is_none() {
            let central = match st.central_out.head_remaining() {
                // A value may start only if the device has a buffer for it; otherwise the
                // peripheral leaves the central's PDUs unacknowledged and nothing moves.
                Some(_)
                    if st.central_out.head_sent == 0 && st.peripheral_in.len() >= p.peripheral_rx_values =>
                {
                    stalled = true;
                    0
                }
                Some(rest) => rest.min(p.ll_data_len),
                None => 0,
            };
            let peripheral = st.peripheral_out.head_remaining().map_or(0, |rest| rest.min(p.ll_data_len));
            if central == 0 && peripheral == 0 {
                break;
            }
            let cost = p.pdu_airtime(central) + T_IFS + p.pdu_airtime(peripheral) + T_IFS;
            if used + cost > budget {
                break;
            }
            used += cost;
            exchanges += 1;
            moved = true;
            if central > 0 {
                if let Some(value) = st.central_out.advance(central) {
                    deliver_to_peripheral(p, st, value);
                }
            }
            if peripheral > 0 {
                if let Some(value) = st.peripheral_out.advance(peripheral) {
                    st.stats.values_to_central += 1;
                    st.stats.bytes_to_central += value.len() as u64;
                    st.central_in.push_back(value);
                }
            }
        }
        st.stats.exchanges += exchanges as u64;
        if stalled {
            st.stats.stalled_events += 1;
        }
        moved
    }
}

fn deliver_to_peripheral(p: &LinkParams, st: &mut State, value: Vec<u8>) {
    let len = value.len() as u64;
    if let Some(limit) = p.disconnect_after_bytes {
        if st.stats.bytes_to_peripheral + len > limit {
            st.go_down(format!(
                "connection dropped after {} bytes (disconnect_after_bytes fault)",
                st.stats.bytes_to_peripheral
            ));
            return;
        }
    }
    st.stats.values_to_peripheral += 1;
    st.stats.bytes_to_peripheral += len;
    st.peripheral_in.push_back(value);
    if p.disconnect_after_bytes == Some(st.stats.bytes_to_peripheral) {
        st.go_down(format!(
            "connection dropped after {} bytes (disconnect_after_bytes fault)",
            st.stats.bytes_to_peripheral
        ));
    }
}

async fn run(shared: Arc<Shared>) {
    let mut ticker = tokio::time::interval(shared.params.tick());
    // Burst catches up after a late wake-up, so the average event rate stays exact even when
    // a scaled interval is shorter than the timer's resolution.
    ticker.set_missed_tick_behavior(MissedTickBehavior::Burst);
    // The first tick fires at once; the first event is one interval after connecting.
    ticker.tick().await;
    loop {
        ticker.tick().await;
        let (moved, up) = {
            let mut st = shared.state();
            if st.down.is_some() {
                (false, false)
            } else {
                let moved = shared.run_event(&mut st);
                (moved, st.down.is_none())
            }
        };
        if moved || !up {
            shared.changed.notify_waiters();
        }
        if !up {
            break;
        }
        // Lets writers and readers refill and drain between events even on a single-threaded
        // runtime, as they would between real events.
        tokio::task::yield_now().await;
    }
}

/// Creates a connected link and starts its radio task. Must be called inside a tokio runtime.
///
/// # Panics
///
/// If `params` fail [`LinkParams::validate`].
pub fn link(params: LinkParams) -> (SimCentral, SimPeripheral) {
    if let Err(e) = params.validate() {
        panic!("invalid simulated BLE link parameters: {e}");
    }
    let shared = Arc::new(Shared { params, state: Mutex::new(State::default()), changed: Notify::new() });
    tokio::spawn(run(shared.clone()));
    (SimCentral { shared: shared.clone() }, SimPeripheral { shared })
}

/// The client's end of a simulated link.
///
/// Dropping it disconnects the link.
pub struct SimCentral {
    shared: Arc<Shared>,
}

impl SimCentral {
    /// Counters of what the link carried so far.
    pub fn stats(&self) -> LinkStats {
        self.shared.state().stats
    }

    /// The link's parameters.
    pub fn params(&self) -> &LinkParams {
        &self.shared.params
    }

    /// Drops the connection from the central's side.
    pub fn disconnect(&self) {
        self.shared.close("the central disconnected");
    }
}

impl Drop for SimCentral {
    fn drop(&mut self) {
        self.shared.close("the central closed the link");
    }
}

#[async_trait]
impl GattLink for SimCentral {
    /// Queues one write without response; waits while the central's buffers are full.
    async fn write(&self, value: &[u8]) -> Result<()> {
        self.shared.check_len(value.len())?;
        self.shared
            .wait_for(|st| {
                if st.down.is_some() {
                    Some(Err(self.shared.disconnected(st)))
                } else if st.central_out.values.len() < CENTRAL_TX_VALUES {
                    st.central_out.values.push_back(value.to_vec());
                    st.central_out.queued += 1;
                    Some(Ok(()))
                } else {
                    None
                }
            })
            .await
    }

    /// Notifications that arrived before a disconnect are still returned, then the error.
    async fn notification(&self) -> Result<Vec<u8>> {
        self.shared
            .wait_for(|st| match st.central_in.pop_front() {
                Some(v) => Some(Ok(v)),
                None if st.down.is_some() => Some(Err(self.shared.disconnected(st))),
                None => None,
            })
            .await
    }

    fn mtu(&self) -> usize {
        self.shared.params.att_mtu
    }

    fn is_connected(&self) -> bool {
        self.shared.state().down.is_none()
    }

    async fn disconnect(&self) -> Result<()> {
        SimCentral::disconnect(self);
        Ok(())
    }

    fn describe(&self) -> String {
        let p = &self.shared.params;
        format!(
            "simulated ble (ATT MTU {}, LL {} B, {} PHY, {} ms interval)",
            p.att_mtu,
            p.ll_data_len,
            p.phy,
            p.conn_interval.as_secs_f64() * 1000.0
        )
    }
}

/// The device's end of a simulated link.
///
/// Methods take `&self`, so one task can read writes while another sends notifications (share
/// it in an `Arc`). Dropping it disconnects the link.
pub struct SimPeripheral {
    shared: Arc<Shared>,
}

impl SimPeripheral {
    /// The next value the central wrote, in order; `None` once the link is down and every
    /// value that arrived before was read.
    pub async fn next_write(&self) -> Option<Vec<u8>> {
        self.shared
            .wait_for(|st| match st.peripheral_in.pop_front() {
                Some(v) => Some(Some(v)),
                None if st.down.is_some() => Some(None),
                None => None,
            })
            .await
    }

    /// Sends one notification of at most `mtu - 3` bytes and returns once it was transmitted.
    ///
    /// Returning only after transmission mirrors Zephyr's `smp_bt`, which waits for each
    /// notification's completion callback before sending the next piece of a response; a
    /// device that wants more than one notification per event calls this from several tasks.
    pub async fn notify(&self, value: &[u8]) -> Result<()> {
        let ticket = self.queue_notification(value).await?;
        self.shared
            .wait_for(|st| {
                if st.peripheral_out.sent > ticket {
                    Some(Ok(()))
                } else if st.down.is_some() {
                    Some(Err(self.shared.disconnected(st)))
                } else {
                    None
                }
            })
            .await
    }

    /// Queues a notification for the next connection events and returns, as Zephyr's
    /// `bt_gatt_notify` does once the host has a buffer for it: it waits only while the
    /// peripheral's transmit queue is full. Returns the value's place in the queue.
    pub async fn queue_notification(&self, value: &[u8]) -> Result<u64> {
        self.shared.check_len(value.len())?;
        self.shared
            .wait_for(|st| {
                if st.down.is_some() {
                    Some(Err(self.shared.disconnected(st)))
                } else if st.peripheral_out.values.len() < PERIPHERAL_TX_VALUES {
                    st.peripheral_out.values.push_back(value.to_vec());
                    let ticket = st.peripheral_out.queued;
                    st.peripheral_out.queued += 1;
                    Some(Ok(ticket))
                } else {
                    None
                }
            })
            .await
    }

    /// Drops the connection from the device's side (a reset, or the device's own timeout).
    pub fn disconnect(&self) {
        self.shared.close("the peripheral disconnected");
    }

    /// The negotiated ATT MTU.
    pub fn mtu(&self) -> usize {
        self.shared.params.att_mtu
    }

    /// Whether the link is still up.
    pub fn is_connected(&self) -> bool {
        self.shared.state().down.is_none()
    }

    /// Counters of what the link carried so far.
    pub fn stats(&self) -> LinkStats {
        self.shared.state().stats
    }

    /// The link's parameters.
    pub fn params(&self) -> &LinkParams {
        &self.shared.params
    }
}

impl Drop for SimPeripheral {
    fn drop(&mut self) {
        self.shared.close("the peripheral closed the link");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn airtime_matches_the_formula() {
        let fast = LinkParams::phone_fast();
        // (2 + 4 + 2 + 251 + 4 + 3) bytes x 4 us
        assert_eq!(fast.pdu_airtime(251), Duration::from_micros(1064));
        // empty PDUs carry no MIC: (2 + 4 + 2 + 3) x 4 us
        assert_eq!(fast.pdu_airtime(0), Duration::from_micros(44));
        assert_eq!(fast.exchange_time(), Duration::from_micros(1408));
        let legacy = LinkParams::legacy();
        assert_eq!(legacy.pdu_airtime(27), Duration::from_micros(296));
        assert_eq!(legacy.pdu_airtime(0), Duration::from_micros(80));
    }

    #[test]
    fn profile_capacities() {
        let fast = LinkParams::phone_fast();
        assert_eq!(fast.exchanges_per_event(), 6);
        assert_eq!(fast.pdus_per_value(495), 2);
        assert!((fast.capacity_bytes_per_s() - 99_000.0).abs() < 1e-6);
        let slow = LinkParams::phone_slow();
        assert_eq!(slow.exchange_time(), Duration::from_micros(2500));
        assert_eq!(slow.exchanges_per_event(), 4);
        assert!((slow.capacity_bytes_per_s() - 4.0 * 244.0 / 0.030).abs() < 1e-6);
        let legacy = LinkParams::legacy();
        assert_eq!(legacy.exchanges_per_event(), 4);
        assert!((legacy.capacity_bytes_per_s() - 1_600.0).abs() < 1e-6);
        // Without the PDU cap a 50 ms event fits 73 legacy exchanges.
        let uncapped = LinkParams { max_pdus_per_event: usize::MAX, ..LinkParams::legacy() };
        assert_eq!(uncapped.exchanges_per_event(), 73);
    }

    #[test]
    fn profiles_by_name() {
        for name in BleLinkProfile::ALL.iter().map(|k| k.name()) {
            let p = LinkParams::by_name(name).unwrap();
            p.validate().unwrap();
        }
        assert_eq!(LinkParams::by_name("Phone_Fast"), Some(LinkParams::phone_fast()));
        assert_eq!(LinkParams::by_name("carrier-pigeon"), None);
    }

    #[test]
    fn validation_rejects_nonsense() {
        let bad = [
            LinkParams { att_mtu: 10, ..LinkParams::legacy() },
            LinkParams { ll_data_len: 300, ..LinkParams::legacy() },
            LinkParams { conn_interval: Duration::from_millis(1), ..LinkParams::legacy() },
            LinkParams::legacy().with_time_scale(0.0),
        ];
        for p in bad {
            assert!(p.validate().is_err(), "{p:?}");
        }
    }

    /// Writes `count` full values as fast as the link takes them while a peripheral reads as
    /// fast as they come; returns the time from the first write to the last value read.
    async fn push_values(params: LinkParams, count: usize) -> (Duration, LinkStats) {
        let (central, peripheral) = link(params);
        let len = central.mtu() - 3;
        let reader = tokio::spawn(async move {
            let mut got = 0;
            while got < count {
                let v = peripheral.next_write().await.expect("link stays up");
                assert_eq!(v.len(), len);
                got += 1;
            }
            (tokio::time::Instant::now(), peripheral)
        });
        let start = tokio::time::Instant::now();
        for i in 0..count {
            central.write(&vec![i as u8; len]).await.unwrap();
        }
        let (end, peripheral) = reader.await.unwrap();
        let stats = peripheral.stats();
        drop(central);
        (end - start, stats)
    }

    fn goodput(params: &LinkParams, count: usize, elapsed_sim: Duration) -> f64 {
        (count * params.max_value_len()) as f64 / elapsed_sim.as_secs_f64()
    }

    /// On tokio's paused clock the model runs in no wall time and the measurement is exact.
    #[tokio::test(start_paused = true)]
    async fn goodput_matches_capacity_on_a_virtual_clock() {
        for params in [LinkParams::phone_fast(), LinkParams::phone_slow(), LinkParams::legacy()] {
            let (elapsed, stats) = push_values(params.clone(), 200).await;
            let measured = goodput(&params, 200, elapsed);
            let formula = params.capacity_bytes_per_s();
            let ratio = measured / formula;
            println!(
                "{measured:.0} B/s measured vs {formula:.0} B/s formula over {elapsed:?} \
                 ({} events)",
                stats.events
            );
            assert!(
                (0.97..=1.001).contains(&ratio),
                "{params:?}: measured {measured:.0} B/s, formula {formula:.0} B/s"
            );
            assert_eq!(stats.values_to_peripheral, 200);
            assert_eq!(stats.stalled_events, 0, "a fast reader never stalls the link");
        }
    }

    /// The same check against the wall clock, with the model scaled to run fast.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn goodput_matches_capacity_in_scaled_real_time() {
        // 200 values take 67 events (1.0 s) on phone-fast and 50 events (2.5 s) on legacy;
        // scaled by 0.2 that is 0.2 s and 0.5 s of wall time.
        let scale = 0.2;
        for params in [LinkParams::phone_fast(), LinkParams::legacy()] {
            let params = params.with_time_scale(scale);
            let wall = Instant::now();
            let (elapsed, _) = push_values(params.clone(), 200).await;
            let elapsed_sim = elapsed.div_f64(scale);
            let measured = goodput(&params, 200, elapsed_sim);
            let formula = params.capacity_bytes_per_s();
            println!(
                "{} B/s measured vs {} B/s formula over {:?} simulated ({:?} wall)",
                measured.round(),
                formula.round(),
                elapsed_sim,
                wall.elapsed()
            );
            assert!(
                (measured / formula - 1.0).abs() <= 0.10,
                "{params:?}: measured {measured:.0} B/s, formula {formula:.0} B/s"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_peripheral_that_does_not_read_stalls_the_central() {
        let params = LinkParams::phone_slow();
        let rx_values = params.peripheral_rx_values;
        let (central, peripheral) = link(params.clone());
        let central = Arc::new(central);
        let value = vec![0x5A; central.mtu() - 3];
        let writer = {
            let central = central.clone();
            let value = value.clone();
            tokio::spawn(async move {
                for _ in 0..40 {
                    central.write(&value).await.unwrap();
                }
            })
        };
        // Long enough for everything to move if nothing held it back.
        tokio::time::sleep(params.conn_interval * 40).await;
        assert!(!writer.is_finished(), "writes must stall");
        let stats = peripheral.stats();
        assert_eq!(stats.values_to_peripheral, rx_values as u64);
        assert!(stats.stalled_events > 0);
        // The device's buffers plus the central's queue hold all that was accepted.
        let accepted = central.shared.state().central_out.queued;
        assert_eq!(accepted, (rx_values + CENTRAL_TX_VALUES) as u64);

        // Reading resumes the flow until all 40 values arrive.
        for i in 0..40 {
            let v = tokio::time::timeout(Duration::from_secs(5), peripheral.next_write())
                .await
                .unwrap_or_else(|_| panic!("value {i} never arrived"))
                .expect("link up");
            assert_eq!(v, value);
        }
        writer.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn disconnect_after_bytes_drops_the_link_for_both_ends() {
        let params = LinkParams { disconnect_after_bytes: Some(1_000), ..LinkParams::legacy() };
        let (central, peripheral) = link(params);
        let reader = tokio::spawn(async move {
            let mut total = 0;
            while let Some(v) = peripheral.next_write().await {
                total += v.len();
            }
            (total, peripheral)
        });
        let mut result = Ok(());
        for _ in 0..100 {
            // 100 x 20 bytes would be 2000: the link must drop half way.
            result = central.write(&[1; 20]).await;
            if result.is_err() {
                break;
            }
        }
        let (total, peripheral) = reader.await.unwrap();
        assert_eq!(total, 1_000);
        assert!(matches!(result, Err(ref e) if e.is_link_lost()), "{result:?}");
        assert!(!central.is_connected());
        assert!(!peripheral.is_connected());
        assert!(matches!(central.notification().await, Err(ref e) if e.is_link_lost()));
        assert!(matches!(peripheral.notify(&[1, 2, 3]).await, Err(ref e) if e.is_link_lost()));
    }

    #[tokio::test(start_paused = true)]
    async fn a_straddling_value_is_lost_with_the_link() {
        let params = LinkParams { disconnect_after_bytes: Some(1_010), ..LinkParams::legacy() };
        let (central, peripheral) = link(params);
        for _ in 0..60 {
            if central.write(&[1; 20]).await.is_err() {
                break;
            }
            // Keep the device's buffers free so only the fault stops the flow.
            while let Ok(Some(_)) = tokio::time::timeout(Duration::ZERO, peripheral.next_write()).await {}
        }
        while peripheral.next_write().await.is_some() {}
        assert_eq!(peripheral.stats().bytes_to_peripheral, 1_000);
        assert!(!central.is_connected());
    }

    #[tokio::test(start_paused = true)]
    async fn notifications_take_airtime_and_one_event_each_when_sent_in_turn() {
        let params = LinkParams::legacy();
        let interval = params.conn_interval;
        let (central, peripheral) = link(params);
        let start = tokio::time::Instant::now();
        for i in 0..5u8 {
            peripheral.notify(&[i; 20]).await.unwrap();
        }
        // Each notify waits for its own transmission, so five take five events.
        assert_eq!(tokio::time::Instant::now() - start, interval * 5);
        for i in 0..5u8 {
            assert_eq!(central.notification().await.unwrap(), vec![i; 20]);
        }
        assert_eq!(central.stats().values_to_central, 5);
    }

    #[tokio::test(start_paused = true)]
    async fn dropping_an_end_disconnects_the_other() {
        let (central, peripheral) = link(LinkParams::phone_fast());
        drop(peripheral);
        assert!(!central.is_connected());
        assert!(matches!(central.write(&[0; 10]).await, Err(ref e) if e.is_link_lost()));

        let (central, peripheral) = link(LinkParams::phone_fast());
        let waiting = tokio::spawn(async move { peripheral.next_write().await });
        tokio::task::yield_now().await;
        drop(central);
        assert_eq!(waiting.await.unwrap(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn oversized_values_are_refused() {
        let (central, peripheral) = link(LinkParams::legacy());
        assert!(matches!(central.write(&[0; 21]).await, Err(Error::Transport(_))));
        assert!(matches!(peripheral.notify(&[0; 21]).await, Err(Error::Transport(_))));
    }
}
