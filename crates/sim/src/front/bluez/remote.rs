//! `/org/bluez/hci0/dev_XX_XX_XX_XX_XX_XX` (`org.bluez.Device1`): the virtual device as the
//! adapter sees it.

use std::sync::Arc;

use smpflash_core::gatt::SMP_SERVICE_UUID;
use zbus::interface;
use zbus::zvariant::OwnedObjectPath;

use super::error::{BluezError, Result};
use super::names::ADAPTER_PATH;
use super::radio::Radio;

/// The remote device.
pub(crate) struct RemoteDevice {
    radio: Arc<Radio>,
}

impl RemoteDevice {
    pub fn new(radio: Arc<Radio>) -> Self {
        RemoteDevice { radio }
    }
}

#[interface(name = "org.bluez.Device1")]
impl RemoteDevice {
    async fn connect(&self) -> Result<()> {
        self.radio.connect().await
    }

    async fn disconnect(&self) {
        self.radio.disconnect().await;
    }

    async fn pair(&self) -> Result<()> {
        self.radio.pair().await
    }

    fn cancel_pairing(&self) -> Result<()> {
        Err(BluezError::DoesNotExist("Does Not Exist".into()))
    }

    fn connect_profile(&self, _uuid: String) -> Result<()> {
        Err(BluezError::NotSupported("Operation is not supported".into()))
    }

    fn disconnect_profile(&self, _uuid: String) -> Result<()> {
        Err(BluezError::NotSupported("Operation is not supported".into()))
    }

    #[zbus(property)]
    fn address(&self) -> String {
        self.radio.opts.device_address.clone()
    }

    /// Zephyr devices advertise with a random static identity address by default.
    #[zbus(property)]
    fn address_type(&self) -> String {
        "random".into()
    }

    #[zbus(property)]
    fn name(&self) -> String {
        self.radio.opts.device_name.clone()
    }

    #[zbus(property)]
    fn alias(&self) -> String {
        self.radio.device_alias()
    }

    #[zbus(property)]
    fn set_alias(&self, alias: String) {
        self.radio.st().alias = (!alias.is_empty()).then_some(alias);
    }

    #[zbus(property)]
    fn paired(&self) -> bool {
        self.radio.st().paired
    }

    #[zbus(property)]
    fn bonded(&self) -> bool {
        self.radio.st().paired
    }

    #[zbus(property)]
    fn trusted(&self) -> bool {
        self.radio.st().trusted
    }

    #[zbus(property)]
    fn set_trusted(&self, trusted: bool) {
        self.radio.st().trusted = trusted;
    }

    #[zbus(property)]
    fn blocked(&self) -> bool {
        self.radio.st().blocked
    }

    #[zbus(property)]
    async fn set_blocked(&self, blocked: bool) {
        self.radio.st().blocked = blocked;
        if blocked {
            self.radio.disconnect().await;
        }
    }

    #[zbus(property)]
    fn legacy_pairing(&self) -> bool {
        false
    }

    #[zbus(property)]
    fn wake_allowed(&self) -> bool {
        false
    }

    #[zbus(property, name = "RSSI")]
    fn rssi(&self) -> i16 {
        self.radio.st().rssi
    }

    #[zbus(property)]
    fn connected(&self) -> bool {
        self.radio.st().connected()
    }

    #[zbus(property, name = "UUIDs")]
    fn uuids(&self) -> Vec<String> {
        vec![SMP_SERVICE_UUID.into()]
    }

    #[zbus(property)]
    fn adapter(&self) -> OwnedObjectPath {
        OwnedObjectPath::try_from(ADAPTER_PATH).expect("constant path")
    }

    #[zbus(property)]
    fn services_resolved(&self) -> bool {
        self.radio.st().services_resolved
    }

    /// LE General Discoverable, BR/EDR not supported: what Zephyr's `BT_LE_AD_GENERAL |
    /// BT_LE_AD_NO_BREDR` advertises.
    #[zbus(property)]
    fn advertising_flags(&self) -> Vec<u8> {
        vec![0x06]
    }
}
