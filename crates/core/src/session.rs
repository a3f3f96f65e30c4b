//! A connection that can be re-established: the upload engine reconnects through it after a
//! dropped link or a device reset and resumes where the device stopped.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::client::Client;
use crate::error::{Error, Result};
use crate::transport::Transport;

/// Opens links to one device (for BLE: scan and connect; UDP: open a socket).
#[async_trait]
pub trait Connector: Send + Sync {
    /// Opens a new link.
    async fn connect(&self) -> Result<Arc<dyn Transport>>;
}

/// A shared connector opens links as the connector itself does, so its owner can keep a
/// handle and ask it what it learned (the serial framing it found, for one).
#[async_trait]
impl<C: Connector + ?Sized> Connector for Arc<C> {
    async fn connect(&self) -> Result<Arc<dyn Transport>> {
        (**self).connect().await
    }
}

/// A client and the means to replace it.
pub struct Session {
    connector: Box<dyn Connector>,
    client: Client,
    timeout: Duration,
    version: crate::frame::Version,
    /// How long [`reconnect`](Self::reconnect) keeps trying.
    pub reconnect_for: Duration,
    reconnects: u32,
}

impl Session {
    /// Connects for the first time.
    pub async fn open(connector: Box<dyn Connector>, timeout: Duration) -> Result<Self> {
        let transport = connector.connect().await?;
        let client = Client::new(transport).with_timeout(timeout);
        Ok(Session {
            connector,
            client,
            timeout,
            version: crate::frame::Version::V2,
            reconnect_for: Duration::from_secs(30),
            reconnects: 0,
        })
    }

    /// Wraps an existing client; [`reconnect`](Self::reconnect) uses `connector`.
    pub fn from_client(connector: Box<dyn Connector>, client: Client) -> Self {
        let timeout = client.timeout();
        let version = client.version();
        Session { connector, client, timeout, version, reconnect_for: Duration::from_secs(30), reconnects: 0 }
    }

    /// The current client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Closes the current link ([`Client::close`]); call it before the program ends, whatever
    /// the outcome, so a BLE device is disconnected and advertises again.
    pub async fn close(&self) -> Result<()> {
        self.client.close().await
    }

    /// Reconnections so far.
    pub fn reconnects(&self) -> u32 {
        self.reconnects
    }

    /// Replaces the client with a fresh connection, retrying with growing pauses for up to
    /// [`reconnect_for`](Self::reconnect_for) (a rebooting device is away for a while).
    pub async fn reconnect(&mut self) -> Result<()> {
        self.reconnect_within(self.reconnect_for).await
    }

    /// Like [`reconnect`](Self::reconnect), but tries for `budget` this once (a device that
    /// is booting gets its boot time) and leaves [`reconnect_for`](Self::reconnect_for) as it is.
    pub async fn reconnect_within(&mut self, budget: Duration) -> Result<()> {
        self.version = self.client.version();
        let device_buf = self.client.device_buf();
        let deadline = tokio::time::Instant::now() + budget;
        let mut pause = Duration::from_millis(100);
        loop {
            match self.connector.connect().await {
                Ok(t) => {
                    let client = Client::new(t).with_timeout(self.timeout);
                    client.set_version(self.version);
                    // The same device: its buffers are what they were.
                    client.set_device_buf(device_buf);
                    self.client = client;
                    self.reconnects += 1;
                    return Ok(());
                }
                Err(e) if tokio::time::Instant::now() + pause < deadline => {
                    tracing::debug!("reconnect failed ({e}); retrying in {pause:?}");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(2));
                }
                Err(e) => {
                    return Err(Error::link_lost(format!(
                        "could not reconnect within {} s: {e}",
                        budget.as_secs()
                    )))
                }
            }
        }
    }
}
