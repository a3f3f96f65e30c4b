//! What the SMP server answers: [`server`] decodes a request frame, dispatches it to the
//! group's handler ([`os`], [`img`]) and encodes the answer. The handlers and the dispatcher
//! share one vocabulary, [`request`], so neither imports the other.

pub mod basic;
pub mod enumeration;
pub mod fs;
pub mod groups;
pub mod img;
pub mod os;
pub mod os_extra;
pub mod request;
pub mod server;
pub mod settings;
pub mod shell;
pub mod stat;
