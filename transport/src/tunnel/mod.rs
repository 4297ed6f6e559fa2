//! The Noise tunnel that carries workload connections between nodes.
//!
//! One application connection is one TCP connection between the two nodes'
//! tunnels, secured with `Noise_IK_25519_ChaChaPoly_BLAKE2s`:
//!
//! - The initiator knows the responder's static key (published through Raft,
//!   signed by the responder's certificate: see [`TunnelKeyBinding`]) and
//!   sends its own, encrypted, in the first message, with the connection's
//!   [`Opening`]: where it goes and who opened it. The responder thus learns
//!   the sending node from a key it can check, never from an address.
//! - The responder answers with an authenticated [`Admission`]: admitted, or
//!   refused and why. Then both sides relay bytes as transport messages.
//! - Every transport message carries its nonce, so a replayed or forged frame
//!   is dropped and counted instead of breaking the stream; too many in a row
//!   end the session. A session rekeys after a byte or time budget.
//!
//! The crate knows nothing of policy: the node decides whom to admit.

mod binding;
mod frame;
mod handshake;
mod relay;
mod stats;

#[cfg(test)]
mod tests;

use std::time::Duration;

pub use binding::{verify_tunnel_key, StaticKeypair, TunnelKeyBinding, TunnelKeyError};
pub use frame::{Admission, Opening, Refusal};
pub use handshake::{accept, accept_any, connect, Incoming, Session};
pub use relay::RelayTotals;
pub use stats::{TunnelCounters, TunnelStats};

/// The Noise protocol every tunnel session speaks.
pub const NOISE_PARAMS: &str = "Noise_IK_25519_ChaChaPoly_BLAKE2s";

/// How a tunnel session behaves.
#[derive(Clone, Debug)]
pub struct TunnelSettings {
    /// Rekey each direction after this many bytes of application data.
    pub rekey_after_bytes: u64,
    /// Rekey each direction after this long.
    pub rekey_after: Duration,
    /// How long the handshake may take, either side.
    pub handshake_timeout: Duration,
    /// How many bad frames in a row (forged, replayed) end a session.
    pub max_bad_frames: u32,
}

impl Default for TunnelSettings {
    fn default() -> Self {
        TunnelSettings {
            rekey_after_bytes: 1 << 30,
            rekey_after: Duration::from_secs(120),
            handshake_timeout: Duration::from_secs(5),
            max_bad_frames: 8,
        }
    }
}

/// Why a tunnel session could not be set up or went down.
#[derive(Debug, thiserror::Error)]
pub enum TunnelError {
    /// The socket failed.
    #[error("tunnel socket: {0}")]
    Io(#[from] std::io::Error),
    /// The Noise handshake failed (a wrong key, a corrupt message).
    #[error("Noise handshake: {0}")]
    Handshake(snow::Error),
    /// The handshake did not finish in time.
    #[error("the Noise handshake did not finish within {0:?}")]
    HandshakeTimeout(Duration),
    /// A handshake message or its payload is not what the protocol says.
    #[error("malformed tunnel message: {0}")]
    Malformed(&'static str),
    /// The peer ended the stream in the middle of a frame.
    #[error("the peer closed the tunnel in the middle of a frame")]
    Truncated,
    /// Too many frames in a row failed authentication or were replays.
    #[error("{0} bad frames in a row; the session is closed")]
    TooManyBadFrames(u32),
    /// The responder refused the connection.
    #[error("the destination node refused the connection: {0}")]
    Refused(Refusal),
}
