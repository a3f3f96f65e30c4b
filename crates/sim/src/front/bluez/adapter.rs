//! `/org/bluez/hci0` (`org.bluez.Adapter1`) and `/org/bluez` (`org.bluez.AgentManager1`).

use std::collections::HashMap;
use std::sync::Arc;

use zbus::interface;
use zbus::message::Header;
use zbus::zvariant::{ObjectPath, OwnedValue};

use super::error::Result;
use super::filter::DiscoveryFilter;
use super::names::sender;
use super::radio::Radio;

/// The adapter.
pub(crate) struct Adapter {
    radio: Arc<Radio>,
}

impl Adapter {
    pub fn new(radio: Arc<Radio>) -> Self {
        Adapter { radio }
    }
}

#[interface(name = "org.bluez.Adapter1")]
impl Adapter {
    async fn start_discovery(&self, #[zbus(header)] header: Header<'_>) -> Result<()> {
        self.radio.start_discovery(&sender(&header)).await
    }

    async fn stop_discovery(&self, #[zbus(header)] header: Header<'_>) -> Result<()> {
        self.radio.stop_discovery(&sender(&header)).await
    }

    async fn set_discovery_filter(
        &self,
        #[zbus(header)] header: Header<'_>,
        filter: HashMap<String, OwnedValue>,
    ) -> Result<()> {
        let filter = DiscoveryFilter::parse(&filter)?;
        self.radio.set_discovery_filter(&sender(&header), filter);
        Ok(())
    }

    fn get_discovery_filters(&self) -> Vec<String> {
        ["UUIDs", "RSSI", "Pathloss", "Transport", "DuplicateData", "Discoverable", "Pattern"]
            .map(String::from)
            .to_vec()
    }

    async fn remove_device(&self, device: ObjectPath<'_>) -> Result<()> {
        self.radio.remove_device(device.as_str()).await
    }

    #[zbus(property)]
    fn address(&self) -> String {
        self.radio.opts.adapter_address.clone()
    }

    #[zbus(property)]
    fn address_type(&self) -> String {
        "public".into()
    }

    #[zbus(property)]
    fn name(&self) -> String {
        self.radio.opts.adapter_name.clone()
    }

    #[zbus(property)]
    fn alias(&self) -> String {
        self.radio.st().adapter_alias.clone()
    }

    #[zbus(property)]
    fn set_alias(&self, alias: String) {
        self.radio.st().adapter_alias = alias;
    }

    #[zbus(property)]
    fn class(&self) -> u32 {
        0
    }

    #[zbus(property)]
    fn powered(&self) -> bool {
        self.radio.st().powered
    }

    #[zbus(property)]
    async fn set_powered(&self, on: bool) {
        self.radio.set_powered(on).await;
    }

    #[zbus(property)]
    fn power_state(&self) -> String {
        if self.radio.st().powered { "on" } else { "off" }.into()
    }

    #[zbus(property)]
    fn discoverable(&self) -> bool {
        false
    }

    #[zbus(property)]
    fn discoverable_timeout(&self) -> u32 {
        180
    }

    #[zbus(property)]
    fn pairable(&self) -> bool {
        true
    }

    #[zbus(property)]
    fn pairable_timeout(&self) -> u32 {
        0
    }

    #[zbus(property)]
    fn discovering(&self) -> bool {
        self.radio.st().discovering()
    }

    #[zbus(property, name = "UUIDs")]
    fn uuids(&self) -> Vec<String> {
        Vec::new()
    }

    /// Linux Foundation / BlueZ, as bluetoothd reports it; bluez-async insists on the format.
    #[zbus(property)]
    fn modalias(&self) -> String {
        "usb:v1D6Bp0246d0548".into()
    }

    /// Bleak only uses adapters that can be an LE central.
    #[zbus(property)]
    fn roles(&self) -> Vec<String> {
        vec!["central".into(), "peripheral".into()]
    }
}

/// `org.bluez.AgentManager1`: accepted and ignored. Pairing with the virtual device needs no
/// passkey, so no agent is ever asked anything; tools like bluetoothctl still register one.
pub(crate) struct AgentManager;

#[interface(name = "org.bluez.AgentManager1")]
impl AgentManager {
    fn register_agent(&self, _agent: ObjectPath<'_>, _capability: String) {}

    fn unregister_agent(&self, _agent: ObjectPath<'_>) {}

    fn request_default_agent(&self, _agent: ObjectPath<'_>) {}
}
