//! Joining: a node without a certificate yet calls a cluster member on the
//! join ALPN. It cannot verify the server against a CA it does not have, so it
//! pins the CA by the SHA-256 fingerprint from its join token: the server's
//! chain must hold a certificate with that fingerprint, and the server's leaf
//! must be a node certificate signed by it. Only then is the request sent.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::client::{self, within};
use crate::frame::{self, code};
use crate::identity::{
    cert_pem, node_dns_name, node_id_of, normalize_fingerprint, sha256_fingerprint,
};
use crate::server::JOIN_MAX_FRAME_BYTES;
use crate::{tls, TransportConfig, TransportError};

/// Calls `join` on the cluster member at `addr`, trusting it only if it
/// presents the CA whose fingerprint is `ca_fingerprint` (hex SHA-256, as in
/// the join token; colons and upper case are accepted). Returns the reply and
/// the PEM of the CA certificate that was verified, for the joiner to keep.
/// The whole exchange is bounded by `config.call_timeout`.
pub async fn join_call(
    addr: SocketAddr,
    ca_fingerprint: &str,
    request: Bytes,
    config: &TransportConfig,
) -> Result<(Bytes, String), TransportError> {
    let pin = normalize_fingerprint(ca_fingerprint)?;
    client::check_len(request.len(), JOIN_MAX_FRAME_BYTES)?;
    tls::install_crypto_provider();
    let verifier = Arc::new(PinnedCa::new(pin));
    let mut tls_config = rustls::ClientConfig::builder_with_provider(tls::provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| TransportError::Config(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(verifier.clone())
        .with_no_client_auth();
    tls_config.alpn_protocols = vec![tls::ALPN_JOIN.to_vec()];
    let quic_config = tls::quic_client(tls_config, tls::transport(config.idle_timeout)?)?;
    let local: SocketAddr = match addr {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let endpoint = tls::quic_endpoint(local, None, None)?;

    let result = within(addr, config.call_timeout, async {
        // The server name is not checked (the pin is); any valid name will do.
        let connecting = endpoint
            .connect_with(quic_config, addr, "join.node.stockade")
            .map_err(|source| TransportError::Connect { addr, source })?;
        let conn = connecting.await.map_err(|e| {
            if verifier.mismatched() {
                TransportError::PinMismatch { addr }
            } else {
                TransportError::from_connection(addr, e)
            }
        })?;
        let ca_der = verifier
            .verified()
            .ok_or(TransportError::PinMismatch { addr })?;
        let stream = conn
            .open_bi()
            .await
            .map_err(|e| TransportError::from_connection(addr, e))?;
        let reply = client::single(
            addr,
            stream,
            frame::KIND_JOIN,
            request,
            config.max_frame_bytes,
        )
        .await;
        conn.close(code::varint(code::DONE), b"join done");
        Ok((reply?, cert_pem(&ca_der)))
    })
    .await;
    // Let the close reach the server, but never wait long for a silent one.
    let grace = config.call_timeout.min(Duration::from_secs(1));
    let _ = tokio::time::timeout(grace, endpoint.wait_idle()).await;
    result
}

/// Verifies a join server by the pinned CA fingerprint, remembering the CA
/// certificate it accepted.
#[derive(Debug)]
struct PinnedCa {
    pin: String,
    provider: Arc<CryptoProvider>,
    verified: Mutex<Option<CertificateDer<'static>>>,
    mismatched: Mutex<bool>,
}

impl PinnedCa {
    fn new(pin: String) -> Self {
        PinnedCa {
            pin,
            provider: tls::provider(),
            verified: Mutex::new(None),
            mismatched: Mutex::new(false),
        }
    }

    fn verified(&self) -> Option<CertificateDer<'static>> {
        self.verified
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn mismatched(&self) -> bool {
        *self
            .mismatched
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn reject(&self, why: &str) -> rustls::Error {
        *self
            .mismatched
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = true;
        rustls::Error::InvalidCertificate(CertificateError::Other(rustls::OtherError(Arc::new(
            PinError(why.to_owned()),
        ))))
    }
}

/// Why the pinned verification failed (carried inside rustls' error).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct PinError(String);

impl ServerCertVerifier for PinnedCa {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(ca) = intermediates
            .iter()
            .find(|c| sha256_fingerprint(c) == self.pin)
        else {
            return Err(
                self.reject("no certificate in the chain matches the pinned CA fingerprint")
            );
        };
        let ca = ca.clone().into_owned();
        // With the pinned CA as the only root, webpki checks the leaf's
        // signature, validity and usage, and that it names the node id it carries.
        let mut roots = RootCertStore::empty();
        roots
            .add(ca.clone())
            .map_err(|_| self.reject("the pinned CA certificate is unusable"))?;
        let webpki =
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), self.provider.clone())
                .build()
                .map_err(|e| rustls::Error::General(e.to_string()))?;
        let node_id = node_id_of(end_entity)
            .ok_or_else(|| self.reject("the server certificate names no node id"))?;
        let name = ServerName::try_from(node_dns_name(node_id))
            .map_err(|e| rustls::Error::General(e.to_string()))?;
        webpki
            .verify_server_cert(end_entity, &[], &name, ocsp_response, now)
            .inspect_err(|_| {
                *self
                    .mismatched
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = true;
            })?;
        *self.verified.lock().unwrap_or_else(PoisonError::into_inner) = Some(ca);
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
