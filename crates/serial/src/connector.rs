//! [`SerialConnector`]: opens a serial link to one device again and again (after a reset, after
//! a dropped link), remembering the framing the first connection found.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use smpflash_core::session::Connector;
use smpflash_core::transport::Transport;
use smpflash_core::Result;

use crate::{Framing, SerialTransport, DEFAULT_PROBE_WAIT};

/// A [`Connector`] for a serial port, a pty or `tcp://HOST:PORT`.
///
/// Without a framing given, the first connection probes for it
/// ([`SerialTransport::detect_framing`]) and later connections reuse what it found: after a
/// reset the device speaks what it spoke before.
#[derive(Debug)]
pub struct SerialConnector {
    path: String,
    baud: u32,
    max_frame: Option<usize>,
    line_delay: Option<Duration>,
    framing: Mutex<Option<Framing>>,
}

impl SerialConnector {
    /// A connector for `path` at `baud`, the framing detected at the first connection.
    pub fn new(path: impl Into<String>, baud: u32) -> Self {
        SerialConnector {
            path: path.into(),
            baud,
            max_frame: None,
            line_delay: None,
            framing: Mutex::new(None),
        }
    }

    /// The largest SMP frame to send ([`SerialTransport::with_max_frame`]).
    pub fn with_max_frame(mut self, max_frame: Option<usize>) -> Self {
        self.max_frame = max_frame;
        self
    }

    /// A pause after each line of a multi-line packet ([`SerialTransport::with_line_delay`]).
    pub fn with_line_delay(mut self, delay: Option<Duration>) -> Self {
        self.line_delay = delay;
        self
    }

    /// The framing to speak; `None` detects it at the first connection.
    pub fn with_framing(self, framing: Option<Framing>) -> Self {
        SerialConnector { framing: Mutex::new(framing), ..self }
    }

    /// The framing given or found so far.
    pub fn framing(&self) -> Option<Framing> {
        *self.framing.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl Connector for SerialConnector {
    async fn connect(&self) -> Result<Arc<dyn Transport>> {
        let mut t = SerialTransport::connect(&self.path, self.baud).await?;
        if let Some(n) = self.max_frame {
            t = t.with_max_frame(n);
        }
        // Before the framing probe: a device that needs pacing needs it for the probe too.
        if let Some(delay) = self.line_delay {
            t = t.with_line_delay(delay);
        }
        t = match self.framing() {
            Some(framing) => t.with_framing(framing),
            None => {
                let (t, found) = t.detect_framing(DEFAULT_PROBE_WAIT).await?;
                match found {
                    Some(framing) => {
                        tracing::debug!("serial framing detected: {framing}");
                        *self.framing.lock().unwrap_or_else(|e| e.into_inner()) = Some(framing);
                    }
                    None => tracing::debug!(
                        "serial framing: no answer to a console or a raw echo; using console (see --framing)"
                    ),
                }
                t
            }
        };
        Ok(Arc::new(t))
    }
}
