//! [`BleConnector`]: scans for one device and connects to it, again after every reset.

use std::sync::Arc;

use async_trait::async_trait;
use smpflash_core::session::Connector;
use smpflash_core::transport::Transport;
use smpflash_core::Result;

use crate::{BtleplugLink, ConnectOptions, GattTransport};

/// A [`Connector`] for a device found by name or address through btleplug: each connection
/// scans, connects and discovers the SMP service ([`BtleplugLink::connect`]), and speaks SMP
/// over it through [`GattTransport`].
#[derive(Debug, Clone)]
pub struct BleConnector {
    target: String,
    options: ConnectOptions,
}

impl BleConnector {
    /// A connector for the device named (or addressed) `target`.
    pub fn new(target: impl Into<String>, options: ConnectOptions) -> Self {
        BleConnector { target: target.into(), options }
    }
}

#[async_trait]
impl Connector for BleConnector {
    async fn connect(&self) -> Result<Arc<dyn Transport>> {
        Ok(Arc::new(GattTransport::new(BtleplugLink::connect(&self.target, &self.options).await?)))
    }
}
