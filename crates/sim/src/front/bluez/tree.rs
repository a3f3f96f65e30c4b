//! The [`ObjectTree`] that puts the D-Bus objects on the bus: the only module that knows both
//! the radio and the objects holding it.

use std::sync::Arc;

use async_trait::async_trait;

use super::gatt::{CccDescriptor, SmpCharacteristic, SmpService};
use super::radio::{ObjectTree, Radio};
use super::remote::RemoteDevice;

/// Exports the objects on the radio's own connection.
pub(crate) struct DbusObjects;

#[async_trait]
impl ObjectTree for DbusObjects {
    async fn export_device(&self, radio: &Arc<Radio>) -> zbus::Result<bool> {
        radio.conn().object_server().at(radio.device_path.as_str(), RemoteDevice::new(radio.clone())).await
    }

    async fn remove_device(&self, radio: &Radio) {
        let _ = radio.conn().object_server().remove::<RemoteDevice, _>(radio.device_path.as_str()).await;
    }

    async fn export_gatt(&self, radio: &Arc<Radio>) {
        let server = radio.conn().object_server();
        let results = [
            server.at(radio.service_path(), SmpService::new(radio.clone())).await,
            server.at(radio.char_path(), SmpCharacteristic::new(radio.clone())).await,
            server.at(radio.desc_path(), CccDescriptor::new(radio.clone())).await,
        ];
        for r in results {
            if let Err(e) = r {
                tracing::warn!("bluez sim: cannot export the SMP service: {e}");
            }
        }
    }

    async fn remove_gatt(&self, radio: &Radio) {
        let server = radio.conn().object_server();
        // Children first, as BlueZ removes them.
        let _ = server.remove::<CccDescriptor, _>(radio.desc_path()).await;
        let _ = server.remove::<SmpCharacteristic, _>(radio.char_path()).await;
        let _ = server.remove::<SmpService, _>(radio.service_path()).await;
    }
}
