//! The ways in: UDP ([`udp`]), a serial console on a pty ([`pty`]), and BLE: the timed radio
//! link model ([`ble_link`]), the device's BLE front end on it ([`ble`]) and the BlueZ D-Bus
//! emulation that puts that front end on a bus ([`bluez`]).

pub mod ble;
pub mod ble_link;
pub mod bluez;
pub mod pty;
pub mod udp;
