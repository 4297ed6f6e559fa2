//! A node's QUIC endpoint: one UDP socket that serves its peers and calls
//! them, with one cached connection per peer and one stream per call.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use quinn::Connection;
use tokio::io::AsyncRead;

use crate::client::{self, within};
use crate::frame::{self, code};
use crate::handler::RpcHandler;
use crate::identity::{node_dns_name, CaCertificate, NodeIdentity};
use crate::{server, tls, NodeId, TransportError};

/// Limits and timeouts of an endpoint.
#[derive(Clone, Debug)]
pub struct TransportConfig {
    /// Largest frame (request, reply, header or body chunk) accepted or sent.
    pub max_frame_bytes: usize,
    /// Time limit of a call; for streaming calls, of each step (connect, each
    /// body chunk, the reply).
    pub call_timeout: Duration,
    /// A connection with no traffic for this long is dropped; keep-alives are
    /// sent at a third of it, so only a dead peer idles out.
    pub idle_timeout: Duration,
}

impl Default for TransportConfig {
    fn default() -> Self {
        TransportConfig {
            max_frame_bytes: 16 * 1024 * 1024,
            call_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
        }
    }
}

/// The connection slot of one peer. The async lock makes concurrent first
/// calls share one handshake instead of racing several.
type Slot = Arc<tokio::sync::Mutex<Option<Connection>>>;

struct Inner {
    quic: quinn::Endpoint,
    node_id: NodeId,
    /// The cluster CA the configurations trust (kept to rebuild them).
    ca: CaCertificate,
    /// The client configuration of new outgoing connections; replaced when
    /// the node's certificate is (see [`Endpoint::set_identity`]).
    client: Mutex<quinn::ClientConfig>,
    config: TransportConfig,
    peers: Mutex<HashMap<NodeId, Slot>>,
    serving: Mutex<bool>,
}

impl Drop for Inner {
    // The accept loop holds its own handle on the socket: without this, an
    // endpoint dropped without `close` would go on serving.
    fn drop(&mut self) {
        self.quic
            .close(code::varint(code::SHUTDOWN), b"endpoint dropped");
    }
}

impl TransportConfig {
    /// Refuses limits that would make every call fail or never time out.
    fn validate(&self) -> Result<(), TransportError> {
        let bad = |what: &str| Err(TransportError::Config(format!("{what} must not be zero")));
        if self.max_frame_bytes == 0 {
            return bad("max_frame_bytes");
        }
        if self.call_timeout.is_zero() {
            return bad("call_timeout");
        }
        if self.idle_timeout.is_zero() {
            return bad("idle_timeout");
        }
        Ok(())
    }
}

/// A node's endpoint: serves calls (after [`Endpoint::serve`]) and makes them,
/// on one UDP port. Cheap to clone; clones share the socket and connections.
#[derive(Clone)]
pub struct Endpoint {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("node_id", &self.inner.node_id)
            .field("local_addr", &self.inner.quic.local_addr().ok())
            .finish_non_exhaustive()
    }
}

impl Endpoint {
    /// Binds the node's UDP port (`:0` picks a free one). Must run inside a
    /// Tokio runtime. Peers are trusted if their certificates chain to `ca`.
    pub fn bind(
        bind: SocketAddr,
        identity: NodeIdentity,
        ca: &CaCertificate,
        config: TransportConfig,
    ) -> Result<Endpoint, TransportError> {
        config.validate()?;
        tls::install_crypto_provider();
        let transport = tls::transport(config.idle_timeout)?;
        let server = tls::quic_server(tls::server_config(&identity, ca)?, transport.clone())?;
        let client = tls::quic_client(tls::client_config(&identity, ca)?, transport)?;
        let quic = tls::quic_endpoint(bind, Some(server), Some(identity.stateless_reset_secret()))?;
        Ok(Endpoint {
            inner: Arc::new(Inner {
                quic,
                node_id: identity.node_id(),
                ca: ca.clone(),
                client: Mutex::new(client),
                config,
                peers: Mutex::new(HashMap::new()),
                serving: Mutex::new(false),
            }),
        })
    }

    /// The bound address (with the port chosen if `:0` was asked for).
    pub fn local_addr(&self) -> Result<SocketAddr, TransportError> {
        self.inner.quic.local_addr().map_err(TransportError::Io)
    }

    /// This node's id, from its certificate.
    pub fn node_id(&self) -> NodeId {
        self.inner.node_id
    }

    /// Switches to a renewed identity (a new key and certificate for the
    /// same node id) without closing anything: new connections, in and
    /// out, present the new certificate; connections already open keep the
    /// one they were made with until they end. Refuses an identity for
    /// another node, or one whose configuration cannot be built, and then
    /// changes nothing.
    pub fn set_identity(&self, identity: &NodeIdentity) -> Result<(), TransportError> {
        if identity.node_id() != self.inner.node_id {
            return Err(TransportError::Config(format!(
                "the new certificate names node {}, this endpoint is node {}",
                identity.node_id(),
                self.inner.node_id
            )));
        }
        let transport = tls::transport(self.inner.config.idle_timeout)?;
        let server = tls::quic_server(
            tls::server_config(identity, &self.inner.ca)?,
            transport.clone(),
        )?;
        let client = tls::quic_client(tls::client_config(identity, &self.inner.ca)?, transport)?;
        self.inner.quic.set_server_config(Some(server));
        *self
            .inner
            .client
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = client;
        tracing::info!(
            node_id = self.inner.node_id,
            "switched to a renewed certificate"
        );
        Ok(())
    }

    /// Starts accepting connections in a Tokio task. `handler` serves
    /// authenticated peers and, separately, join requests. Only the first call
    /// has an effect; until then incoming connections wait.
    pub fn serve(&self, handler: Arc<dyn RpcHandler>) {
        let mut serving = self
            .inner
            .serving
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if *serving {
            tracing::warn!(node_id = self.inner.node_id, "serve called twice; ignored");
            return;
        }
        *serving = true;
        tokio::spawn(server::accept_loop(
            self.inner.quic.clone(),
            handler,
            self.inner.config.max_frame_bytes,
        ));
    }

    /// Calls node `peer` at `addr` and returns its reply. The server must
    /// present a certificate for exactly `peer`.
    pub async fn call(
        &self,
        peer: NodeId,
        addr: SocketAddr,
        request: Bytes,
    ) -> Result<Bytes, TransportError> {
        self.single(frame::KIND_CALL, peer, addr, request).await
    }

    /// Asks node `peer` at `addr` a query (see [`RpcHandler::query`]) and
    /// returns its reply.
    pub async fn query(
        &self,
        peer: NodeId,
        addr: SocketAddr,
        request: Bytes,
    ) -> Result<Bytes, TransportError> {
        self.single(frame::KIND_QUERY, peer, addr, request).await
    }

    /// One request frame of `kind` to node `peer`, one reply, within the
    /// call timeout.
    async fn single(
        &self,
        kind: u8,
        peer: NodeId,
        addr: SocketAddr,
        request: Bytes,
    ) -> Result<Bytes, TransportError> {
        let limit = self.inner.config.max_frame_bytes;
        client::check_len(request.len(), limit)?;
        within(addr, self.inner.config.call_timeout, async {
            let stream = self.open(peer, addr).await?;
            client::single(addr, stream, kind, request, limit).await
        })
        .await
    }

    /// Calls node `peer` with a header frame, then `body` streamed in bounded
    /// chunks (snapshots). The call timeout bounds each step, not the whole
    /// transfer.
    pub async fn call_streaming(
        &self,
        peer: NodeId,
        addr: SocketAddr,
        header: Bytes,
        body: impl AsyncRead + Unpin + Send,
    ) -> Result<Bytes, TransportError> {
        let config = &self.inner.config;
        client::check_len(header.len(), config.max_frame_bytes)?;
        let stream = within(addr, config.call_timeout, self.open(peer, addr)).await?;
        client::streaming(
            addr,
            stream,
            header,
            body,
            config.max_frame_bytes,
            config.call_timeout,
        )
        .await
    }

    /// Closes every connection and stops serving; waits until the peers were told.
    pub async fn close(&self) {
        self.inner
            .quic
            .close(code::varint(code::SHUTDOWN), b"endpoint closed");
        self.inner.quic.wait_idle().await;
    }

    /// Connections this endpoint has open, both directions (for tests).
    #[cfg(test)]
    pub(crate) fn open_connections(&self) -> usize {
        self.inner.quic.open_connections()
    }

    /// Opens a stream to `peer`, reusing its connection. A cached connection
    /// that turns out dead is replaced once: nothing was sent on it yet, so the
    /// retry cannot deliver a request twice.
    pub(crate) async fn open(
        &self,
        peer: NodeId,
        addr: SocketAddr,
    ) -> Result<(quinn::SendStream, quinn::RecvStream), TransportError> {
        let slot = {
            let mut peers = self
                .inner
                .peers
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            peers.entry(peer).or_default().clone()
        };
        let (conn, fresh) = self.connection(&slot, peer, addr).await?;
        match conn.open_bi().await {
            Ok(stream) => Ok(stream),
            Err(e) if fresh => Err(TransportError::from_connection(addr, e)),
            Err(e) => {
                tracing::debug!(peer, %addr, error = %e, "cached connection broken; reconnecting");
                let (conn, _) = self.connection(&slot, peer, addr).await?;
                conn.open_bi()
                    .await
                    .map_err(|e| TransportError::from_connection(addr, e))
            }
        }
    }

    /// The live connection in `slot` if it goes to `addr`, else a new one;
    /// `true` when it was just made.
    ///
    /// The handshake runs in a task of its own that holds the slot: a
    /// caller that gives up (Raft's heartbeats allow 75 ms) does not abort
    /// it. Otherwise a handshake slower than one call (a long round trip
    /// between clouds, a loaded peer) would be started and abandoned
    /// forever, and the peer never reached again.
    async fn connection(
        &self,
        slot: &Slot,
        peer: NodeId,
        addr: SocketAddr,
    ) -> Result<(Connection, bool), TransportError> {
        let mut cached = Arc::clone(slot).lock_owned().await;
        if let Some(conn) = cached.as_ref() {
            if conn.close_reason().is_none() && conn.remote_address() == addr {
                return Ok((conn.clone(), false));
            }
        }
        // A dead or moved connection is dropped: quinn closes it once its
        // last stream ends.
        *cached = None;
        let client = self
            .inner
            .client
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let connecting = self
            .inner
            .quic
            .connect_with(client, addr, &node_dns_name(peer))
            .map_err(|source| TransportError::Connect { addr, source })?;
        // Bounded by quinn's handshake (idle) timeout.
        let handshake = tokio::spawn(async move {
            let conn = connecting
                .await
                .map_err(|e| TransportError::from_connection(addr, e))?;
            *cached = Some(conn.clone());
            Ok::<_, TransportError>(conn)
        });
        let conn = handshake
            .await
            .map_err(|e| TransportError::Io(std::io::Error::other(e)))??;
        Ok((conn, true))
    }

    /// The certificate chain peer `peer` presented on the cached
    /// connection to it, if there is one (for tests).
    #[cfg(test)]
    pub(crate) async fn peer_chain(
        &self,
        peer: NodeId,
    ) -> Option<Vec<rustls::pki_types::CertificateDer<'static>>> {
        let slot = self
            .inner
            .peers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&peer)
            .cloned()?;
        let conn = slot.lock().await.clone()?;
        conn.peer_identity()?
            .downcast::<Vec<rustls::pki_types::CertificateDer<'static>>>()
            .ok()
            .map(|chain| *chain)
    }

    /// Peers with a live connection cached (for tests).
    #[cfg(test)]
    pub(crate) async fn cached_connections(&self) -> usize {
        let slots: Vec<Slot> = self
            .inner
            .peers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect();
        let mut live = 0;
        for slot in slots {
            if slot
                .lock()
                .await
                .as_ref()
                .is_some_and(|c| c.close_reason().is_none())
            {
                live += 1;
            }
        }
        live
    }
}
