//! The names clients match on: the bus name BlueZ owns, interface names, object paths, and
//! the caller of a method. Every other module here reads them; this one imports nothing.

use zbus::message::Header;

/// The well-known name BlueZ owns.
pub const BLUEZ_NAME: &str = "org.bluez";

/// Interface names, as clients match them.
pub(crate) const DEVICE1: &str = "org.bluez.Device1";
pub(crate) const ADAPTER1: &str = "org.bluez.Adapter1";
pub(crate) const CHARACTERISTIC1: &str = "org.bluez.GattCharacteristic1";

/// Object path of the one adapter.
pub const ADAPTER_PATH: &str = "/org/bluez/hci0";

/// Node names under the device. BlueZ names GATT objects after attribute handles, and
/// bluez-async finds them by these prefixes when it introspects.
pub(crate) const SERVICE_NODE: &str = "service000a";
pub(crate) const CHAR_NODE: &str = "char000b";
pub(crate) const DESC_NODE: &str = "desc000d";

/// The unique bus name of the caller: BlueZ keeps discovery and notify sessions per client.
pub(crate) fn sender(header: &Header<'_>) -> String {
    header.sender().map(|s| s.to_string()).unwrap_or_default()
}
