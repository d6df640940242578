//! The transfer layer: the PCI bus as a network link.
//!
//! A link is modelled per direction like a network link (Hockney): moving `b` bytes
//! takes `alpha + b / beta` seconds. The GPU device measures and fits its link; the
//! scheduler reads it to predict what moving a share's data will cost.

pub(crate) mod calibrate;

use serde::{Deserialize, Serialize};

/// One direction of a link: latency and bandwidth.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LinkDir {
    /// Seconds per transfer, whatever its size.
    pub alpha_s: f64,
    /// Bytes per second once a transfer is under way.
    pub beta_bytes_per_s: f64,
}

impl LinkDir {
    /// Predicted seconds to move `bytes` (0 for no bytes).
    pub fn time_s(&self, bytes: u64) -> f64 {
        if bytes == 0 {
            0.0
        } else {
            self.alpha_s + bytes as f64 / self.beta_bytes_per_s
        }
    }
}

/// A device's link to the host, both directions.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Link {
    /// Host to device.
    pub up: LinkDir,
    /// Device to host.
    pub down: LinkDir,
}
