//! The SMP service as BlueZ exports it after service discovery: `.../service000a`
//! (`org.bluez.GattService1`), its characteristic `.../char000b`
//! (`org.bluez.GattCharacteristic1`) and that characteristic's CCC descriptor `.../desc000d`.

use std::collections::HashMap;
use std::sync::Arc;

use smpflash_core::gatt::{SMP_CHARACTERISTIC_UUID, SMP_SERVICE_UUID};
use zbus::interface;
use zbus::message::Header;
use zbus::zvariant::{OwnedFd, OwnedObjectPath, OwnedValue};

use super::error::{BluezError, Result};
use super::names::sender;
use super::radio::Radio;

/// Client Characteristic Configuration descriptor.
const CCC_UUID: &str = "00002902-0000-1000-8000-00805f9b34fb";

fn path(p: String) -> OwnedObjectPath {
    OwnedObjectPath::try_from(p).expect("paths are built from valid parts")
}

/// The SMP service.
pub(crate) struct SmpService {
    radio: Arc<Radio>,
}

impl SmpService {
    pub fn new(radio: Arc<Radio>) -> Self {
        SmpService { radio }
    }
}

#[interface(name = "org.bluez.GattService1")]
impl SmpService {
    #[zbus(property, name = "UUID")]
    fn uuid(&self) -> String {
        SMP_SERVICE_UUID.into()
    }

    #[zbus(property)]
    fn primary(&self) -> bool {
        true
    }

    #[zbus(property)]
    fn device(&self) -> OwnedObjectPath {
        path(self.radio.device_path.clone())
    }

    #[zbus(property)]
    fn includes(&self) -> Vec<OwnedObjectPath> {
        Vec::new()
    }
}

/// The SMP characteristic.
pub(crate) struct SmpCharacteristic {
    radio: Arc<Radio>,
}

impl SmpCharacteristic {
    pub fn new(radio: Arc<Radio>) -> Self {
        SmpCharacteristic { radio }
    }
}

// Calls are handled one at a time in arrival order (no task per call): write commands must
// reach the device in the order the client sent them, as they do through bluetoothd.
#[interface(name = "org.bluez.GattCharacteristic1", spawn = false)]
impl SmpCharacteristic {
    /// The device answers ATT "read not permitted": Zephyr's SMP characteristic has no read.
    fn read_value(&self, _options: HashMap<String, OwnedValue>) -> Result<Vec<u8>> {
        if !self.radio.st().connected() {
            return Err(BluezError::not_connected());
        }
        Err(BluezError::NotPermitted("Read not permitted".into()))
    }

    async fn write_value(&self, value: Vec<u8>, options: HashMap<String, OwnedValue>) -> Result<()> {
        self.radio.write_value(value, &options).await
    }

    async fn start_notify(&self, #[zbus(header)] header: Header<'_>) -> Result<()> {
        self.radio.start_notify(&sender(&header)).await
    }

    async fn stop_notify(&self, #[zbus(header)] header: Header<'_>) -> Result<()> {
        self.radio.stop_notify(&sender(&header)).await
    }

    /// A `SOCK_SEQPACKET` socket whose packets are write commands, and the ATT MTU; the
    /// characteristic's `WriteAcquired` is true until the client closes it.
    async fn acquire_write(&self, _options: HashMap<String, OwnedValue>) -> Result<(OwnedFd, u16)> {
        self.radio.acquire_write().await
    }

    /// A `SOCK_SEQPACKET` socket that receives each notification as one packet, and the ATT
    /// MTU; `NotifyAcquired` is true until the client closes it or calls StopNotify.
    async fn acquire_notify(&self, _options: HashMap<String, OwnedValue>) -> Result<(OwnedFd, u16)> {
        self.radio.acquire_notify().await
    }

    #[zbus(property, name = "UUID")]
    fn uuid(&self) -> String {
        SMP_CHARACTERISTIC_UUID.into()
    }

    #[zbus(property)]
    fn service(&self) -> OwnedObjectPath {
        path(self.radio.service_path())
    }

    #[zbus(property)]
    fn value(&self) -> Vec<u8> {
        self.radio.st().value.clone()
    }

    #[zbus(property)]
    fn notifying(&self) -> bool {
        self.radio.st().notifying()
    }

    #[zbus(property)]
    fn write_acquired(&self) -> bool {
        self.radio.st().write_io.is_some()
    }

    #[zbus(property)]
    fn notify_acquired(&self) -> bool {
        self.radio.st().notify_io.is_some()
    }

    #[zbus(property)]
    fn flags(&self) -> Vec<String> {
        vec!["write-without-response".into(), "notify".into()]
    }

    /// The negotiated ATT MTU (BlueZ 5.62 and later); btleplug and Bleak size writes by it.
    #[zbus(property, name = "MTU")]
    fn mtu(&self) -> u16 {
        self.radio.mtu()
    }
}

/// The CCC descriptor of the SMP characteristic.
pub(crate) struct CccDescriptor {
    radio: Arc<Radio>,
}

impl CccDescriptor {
    pub fn new(radio: Arc<Radio>) -> Self {
        CccDescriptor { radio }
    }
}

#[interface(name = "org.bluez.GattDescriptor1")]
impl CccDescriptor {
    fn read_value(&self, _options: HashMap<String, OwnedValue>) -> Result<Vec<u8>> {
        let st = self.radio.st();
        if !st.connected() {
            return Err(BluezError::not_connected());
        }
        Ok(vec![u8::from(st.subscribed()), 0])
    }

    /// BlueZ owns the CCC: clients subscribe with StartNotify.
    fn write_value(&self, _value: Vec<u8>, _options: HashMap<String, OwnedValue>) -> Result<()> {
        Err(BluezError::NotPermitted("Write not permitted".into()))
    }

    #[zbus(property, name = "UUID")]
    fn uuid(&self) -> String {
        CCC_UUID.into()
    }

    #[zbus(property)]
    fn characteristic(&self) -> OwnedObjectPath {
        path(self.radio.char_path())
    }

    #[zbus(property)]
    fn value(&self) -> Vec<u8> {
        vec![u8::from(self.radio.st().subscribed()), 0]
    }
}
