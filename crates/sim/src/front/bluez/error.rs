//! The errors BlueZ answers with, by name (`org.bluez.Error.*`): clients match on these names,
//! and btleplug's and Bleak's handling of a failure depends on them.

/// A BlueZ error reply.
#[derive(Debug, zbus::DBusError)]
#[zbus(prefix = "org.bluez.Error")]
pub enum BluezError {
    /// A zbus failure (not a BlueZ answer).
    #[zbus(error)]
    ZBus(zbus::Error),
    /// `org.bluez.Error.Failed`.
    Failed(String),
    /// `org.bluez.Error.NotReady`: the adapter is powered off.
    NotReady(String),
    /// `org.bluez.Error.InvalidArguments`.
    InvalidArguments(String),
    /// `org.bluez.Error.InvalidValueLength`: a value longer than the ATT MTU allows.
    InvalidValueLength(String),
    /// `org.bluez.Error.InvalidOffset`.
    InvalidOffset(String),
    /// `org.bluez.Error.NotPermitted`: the device refused (read not permitted, or an ATT
    /// insufficient authentication error before pairing).
    NotPermitted(String),
    /// `org.bluez.Error.NotSupported`.
    NotSupported(String),
    /// `org.bluez.Error.InProgress`.
    InProgress(String),
    /// `org.bluez.Error.AlreadyExists`.
    AlreadyExists(String),
    /// `org.bluez.Error.DoesNotExist`.
    DoesNotExist(String),
}

/// Result of a BlueZ method.
pub type Result<T> = std::result::Result<T, BluezError>;

impl BluezError {
    /// BlueZ's answer when the device is not connected.
    pub fn not_connected() -> Self {
        BluezError::Failed("Not connected".into())
    }

    /// What BlueZ relays when the device answers a request with ATT error 0x05 (insufficient
    /// authentication): the link must be paired first.
    pub fn insufficient_authentication() -> Self {
        BluezError::NotPermitted("Operation failed with ATT error: 0x05".into())
    }
}
