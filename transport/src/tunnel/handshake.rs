//! Setting a session up: the IK handshake, with the [`Opening`] in the
//! first message and the [`Admission`] in the second.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use snow::resolvers::{DefaultResolver, FallbackResolver, RingResolver};
use snow::{Builder, HandshakeState, StatelessTransportState};
use tokio::net::TcpStream;
use tokio::time::timeout;

use super::binding::StaticKeypair;
use super::frame::{read_handshake, write_handshake, Admission, Opening, Refusal, MAX_MESSAGE};
use super::stats::TunnelStats;
use super::{TunnelError, TunnelSettings, NOISE_PARAMS};

/// Room for a handshake payload (an opening or an admission).
const PAYLOAD_ROOM: usize = 64;

/// A Noise builder using ring's ChaCha20-Poly1305 (assembly, the fastest
/// on hand) and snow's own X25519 and BLAKE2s, which ring does not offer.
fn builder() -> Builder<'static> {
    let params = NOISE_PARAMS
        .parse()
        // A constant the tests parse too.
        .expect("NOISE_PARAMS is a valid Noise protocol name");
    Builder::with_resolver(
        params,
        Box::new(FallbackResolver::new(
            Box::new(RingResolver),
            Box::new(DefaultResolver),
        )),
    )
}

/// `step`, or a timeout error once the handshake's `limit` is up.
async fn within<T>(
    limit: Duration,
    step: impl Future<Output = Result<T, TunnelError>>,
) -> Result<T, TunnelError> {
    timeout(limit, step)
        .await
        .unwrap_or(Err(TunnelError::HandshakeTimeout(limit)))
}

fn handshake_error(e: snow::Error) -> TunnelError {
    TunnelError::Handshake(e)
}

/// An established session, ready to relay one connection.
pub struct Session {
    pub(crate) stream: TcpStream,
    pub(crate) transport: StatelessTransportState,
    pub(crate) settings: TunnelSettings,
    pub(crate) stats: Arc<TunnelStats>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("peer", &self.stream.peer_addr().ok())
            .finish_non_exhaustive()
    }
}

/// Opens a session over `stream` to the node whose static key is `peer`,
/// asking for `opening`. Fails when the peer refuses.
pub async fn connect(
    mut stream: TcpStream,
    local: &StaticKeypair,
    peer: [u8; 32],
    opening: Opening,
    settings: &TunnelSettings,
    stats: Arc<TunnelStats>,
) -> Result<Session, TunnelError> {
    stream.set_nodelay(true)?;
    let exchange = async {
        let mut handshake = builder()
            .local_private_key(local.secret())
            .and_then(|b| b.remote_public_key(&peer))
            .and_then(Builder::build_initiator)
            .map_err(handshake_error)?;
        let mut buf = vec![0u8; MAX_MESSAGE];
        let n = handshake
            .write_message(&opening.encode(), &mut buf)
            .map_err(handshake_error)?;
        write_handshake(&mut stream, &buf[..n]).await?;
        let n = read_handshake(&mut stream, &mut buf).await?;
        let mut payload = [0u8; PAYLOAD_ROOM];
        let m = handshake
            .read_message(&buf[..n], &mut payload)
            .map_err(handshake_error)?;
        let admission = Admission::decode(&payload[..m])?;
        let transport = handshake
            .into_stateless_transport_mode()
            .map_err(handshake_error)?;
        Ok::<_, TunnelError>((admission, transport))
    };
    let outcome = within(settings.handshake_timeout, exchange).await;
    match outcome {
        Ok((Admission::Admitted, transport)) => {
            stats.opened();
            Ok(Session {
                stream,
                transport,
                settings: settings.clone(),
                stats,
            })
        }
        Ok((Admission::Refused(why), _)) => {
            stats.refusal_received();
            Err(TunnelError::Refused(why))
        }
        Err(e) => {
            stats.handshake_failed();
            Err(e)
        }
    }
}

/// A connection whose first handshake message checked out: the caller
/// looks at who sent it and what it asks, then admits or refuses it.
pub struct Incoming {
    stream: TcpStream,
    handshake: HandshakeState,
    peer: [u8; 32],
    opening: Opening,
    settings: TunnelSettings,
    stats: Arc<TunnelStats>,
}

impl std::fmt::Debug for Incoming {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Incoming")
            .field("opening", &self.opening)
            .finish_non_exhaustive()
    }
}

/// Reads the first handshake message of a connection to this node's tunnel.
pub async fn accept(
    stream: TcpStream,
    local: &StaticKeypair,
    settings: &TunnelSettings,
    stats: Arc<TunnelStats>,
) -> Result<Incoming, TunnelError> {
    accept_any(stream, &[local], settings, stats).await
}

/// Like [`accept`], for a node that answers to any of several static keys:
/// while its key is being renewed, peers may still dial the old one (or
/// already the new one). The first key that opens the message answers.
pub async fn accept_any(
    mut stream: TcpStream,
    locals: &[&StaticKeypair],
    settings: &TunnelSettings,
    stats: Arc<TunnelStats>,
) -> Result<Incoming, TunnelError> {
    stream.set_nodelay(true)?;
    let exchange = async {
        let mut buf = vec![0u8; MAX_MESSAGE];
        let n = read_handshake(&mut stream, &mut buf).await?;
        let mut payload = [0u8; PAYLOAD_ROOM];
        let mut failure = None;
        for local in locals {
            let mut handshake = builder()
                .local_private_key(local.secret())
                .and_then(Builder::build_responder)
                .map_err(handshake_error)?;
            let m = match handshake.read_message(&buf[..n], &mut payload) {
                Ok(m) => m,
                Err(e) => {
                    failure = Some(handshake_error(e));
                    continue;
                }
            };
            let opening = Opening::decode(&payload[..m])?;
            let peer: [u8; 32] = handshake
                .get_remote_static()
                .and_then(|k| k.try_into().ok())
                .ok_or(TunnelError::Malformed(
                    "IK's first message carries the static key",
                ))?;
            return Ok::<_, TunnelError>((handshake, peer, opening));
        }
        Err(failure.unwrap_or(TunnelError::Malformed("no key to answer with")))
    };
    let outcome = within(settings.handshake_timeout, exchange).await;
    match outcome {
        Ok((handshake, peer, opening)) => Ok(Incoming {
            stream,
            handshake,
            peer,
            opening,
            settings: settings.clone(),
            stats,
        }),
        Err(e) => {
            stats.handshake_failed();
            Err(e)
        }
    }
}

impl Incoming {
    /// The static key the initiator proved it holds.
    pub fn peer_key(&self) -> &[u8; 32] {
        &self.peer
    }

    /// What the initiator asks for.
    pub fn opening(&self) -> &Opening {
        &self.opening
    }

    /// The counters this connection updates.
    pub fn stats(&self) -> &Arc<TunnelStats> {
        &self.stats
    }

    /// Admits the connection: answers, and returns the session to relay.
    pub async fn admit(mut self) -> Result<Session, TunnelError> {
        self.answer(Admission::Admitted).await?;
        let transport = self
            .handshake
            .into_stateless_transport_mode()
            .map_err(handshake_error)?;
        self.stats.accepted();
        Ok(Session {
            stream: self.stream,
            transport,
            settings: self.settings,
            stats: self.stats,
        })
    }

    /// Refuses the connection, telling the initiator why.
    pub async fn refuse(mut self, why: Refusal) -> Result<(), TunnelError> {
        self.stats.refusal_sent();
        self.answer(Admission::Refused(why)).await
    }

    async fn answer(&mut self, admission: Admission) -> Result<(), TunnelError> {
        let mut buf = vec![0u8; MAX_MESSAGE];
        let n = self
            .handshake
            .write_message(&admission.encode(), &mut buf)
            .map_err(handshake_error)?;
        within(
            self.settings.handshake_timeout,
            write_handshake(&mut self.stream, &buf[..n]),
        )
        .await
    }
}
