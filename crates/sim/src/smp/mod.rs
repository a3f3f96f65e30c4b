//! What the SMP server answers: [`server`] decodes a request frame, dispatches it to the
//! group's handler ([`os`], [`img`]) and encodes the answer. The handlers and the dispatcher
//! share one vocabulary, [`request`], so neither imports the other.

pub mod fs;
pub mod groups;
pub mod img;
pub mod os;
pub mod request;
pub mod server;
