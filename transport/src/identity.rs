//! What a node holds once it belongs to the cluster: the CA certificate every
//! node trusts, and its own identity (certificate chain and private key). A
//! node id lives in its certificate as the DNS name `n{id}.node.stockade`, so
//! standard name verification checks it and no payload can claim another.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::pki::PkiError;
use crate::NodeId;

/// The DNS suffix under which node certificates name their ids.
pub const NODE_NAME_SUFFIX: &str = ".node.stockade";

/// The DNS name that carries `node_id` in a certificate: `n{id}.node.stockade`.
pub fn node_dns_name(node_id: NodeId) -> String {
    format!("n{node_id}{NODE_NAME_SUFFIX}")
}

/// The node id a DNS name encodes; only the canonical form counts (no signs,
/// no leading zeros), so one id has exactly one name.
pub(crate) fn parse_node_dns_name(name: &str) -> Option<NodeId> {
    let digits = name.strip_prefix('n')?.strip_suffix(NODE_NAME_SUFFIX)?;
    let id: NodeId = digits.parse().ok()?;
    (node_dns_name(id) == name).then_some(id)
}

/// The node id a certificate (DER) names in its subject alternative names, if
/// it names exactly one. It does not verify the certificate: use it on
/// certificates the TLS stack has already verified against the cluster CA.
pub fn node_id_of(cert_der: &[u8]) -> Option<NodeId> {
    let (_, cert) = X509Certificate::from_der(cert_der).ok()?;
    let san = cert.subject_alternative_name().ok()??;
    let mut ids = san.value.general_names.iter().filter_map(|n| match n {
        GeneralName::DNSName(d) => parse_node_dns_name(d),
        _ => None,
    });
    let id = ids.next()?;
    // Two node names in one certificate would make the identity ambiguous.
    ids.next().is_none().then_some(id)
}

/// Lowercase hex SHA-256 of a DER certificate: the fingerprint pinned in join tokens.
pub fn sha256_fingerprint(der: &[u8]) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, der))
}

/// Normalises a fingerprint as a user may type it (upper case, colons) and
/// checks it is 32 bytes of hex.
pub(crate) fn normalize_fingerprint(fp: &str) -> Result<String, PkiError> {
    let clean: String = fp
        .chars()
        .filter(|c| *c != ':')
        .map(|c| c.to_ascii_lowercase())
        .collect();
    if clean.len() == 64 && clean.chars().all(|c| c.is_ascii_hexdigit()) {
        Ok(clean)
    } else {
        Err(PkiError::BadFingerprint(fp.to_owned()))
    }
}

/// All certificates in a PEM text.
pub(crate) fn parse_certs(pem: &str) -> Result<Vec<CertificateDer<'static>>, PkiError> {
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| PkiError::Pem(e.to_string()))
}

/// The one certificate of a PEM text.
pub(crate) fn parse_one_cert(pem: &str) -> Result<CertificateDer<'static>, PkiError> {
    let mut certs = parse_certs(pem)?;
    match certs.len() {
        1 => Ok(certs.remove(0)),
        n => Err(PkiError::CertCount(n)),
    }
}

/// PEM text of a DER certificate.
pub(crate) fn cert_pem(der: &[u8]) -> String {
    pem::encode(&pem::Pem::new("CERTIFICATE", der.to_vec()))
}

/// Parses a DER certificate, naming the failure.
pub(crate) fn parse_x509(der: &[u8]) -> Result<X509Certificate<'_>, PkiError> {
    X509Certificate::from_der(der)
        .map(|(_, c)| c)
        .map_err(|e| PkiError::BadCertificate(e.to_string()))
}

/// What a node certificate says about itself, for status displays.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificateInfo {
    /// The node id it names, if it names exactly one.
    pub node_id: Option<NodeId>,
    /// Its serial number, lowercase hex.
    pub serial: String,
    /// `notBefore`, in seconds since the Unix epoch.
    pub not_before: i64,
    /// `notAfter`, in seconds since the Unix epoch.
    pub not_after: i64,
    /// Lowercase hex SHA-256 of the certificate (DER).
    pub fingerprint: String,
}

impl CertificateInfo {
    /// Reads the first certificate of a PEM text (it does not verify it).
    pub fn from_pem(pem: &str) -> Result<CertificateInfo, PkiError> {
        let leaf = parse_certs(pem)?
            .into_iter()
            .next()
            .ok_or(PkiError::CertCount(0))?;
        Self::from_der(&leaf)
    }

    /// Reads a DER certificate (it does not verify it).
    pub fn from_der(der: &[u8]) -> Result<CertificateInfo, PkiError> {
        let cert = parse_x509(der)?;
        let validity = cert.validity();
        Ok(CertificateInfo {
            node_id: node_id_of(der),
            serial: hex::encode(cert.tbs_certificate.raw_serial()),
            not_before: validity.not_before.timestamp(),
            not_after: validity.not_after.timestamp(),
            fingerprint: sha256_fingerprint(der),
        })
    }
}

/// The cluster CA's certificate: what every node keeps to verify its peers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaCertificate {
    der: CertificateDer<'static>,
    pem: String,
}

impl CaCertificate {
    /// Reads the CA certificate from PEM (exactly one certificate, marked as a CA).
    pub fn from_pem(pem: &str) -> Result<Self, PkiError> {
        Self::from_der(parse_one_cert(pem)?)
    }

    /// Wraps a DER CA certificate, checking it is one.
    pub fn from_der(der: CertificateDer<'static>) -> Result<Self, PkiError> {
        if !parse_x509(&der)?.is_ca() {
            return Err(PkiError::NotCa);
        }
        let pem = cert_pem(&der);
        Ok(CaCertificate { der, pem })
    }

    /// The certificate as PEM.
    pub fn pem(&self) -> &str {
        &self.pem
    }

    /// The certificate as DER.
    pub fn der(&self) -> &CertificateDer<'static> {
        &self.der
    }

    /// Lowercase hex SHA-256 of the DER certificate (the join-token pin).
    pub fn fingerprint(&self) -> String {
        sha256_fingerprint(&self.der)
    }
}

/// A node's credentials: its id, its certificate chain (leaf, then the CA)
/// and its private key. Built from what the node stored after joining.
pub struct NodeIdentity {
    node_id: NodeId,
    cert_chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

impl NodeIdentity {
    /// Builds the identity from the node's certificate (PEM), its private key
    /// (PEM) and the cluster CA. Checks that the certificate names a node id,
    /// is signed by `ca` and belongs to `key`.
    pub fn from_pem(cert_pem: &str, key_pem: &str, ca: &CaCertificate) -> Result<Self, PkiError> {
        let leaf = parse_certs(cert_pem)?
            .into_iter()
            .next()
            .ok_or(PkiError::CertCount(0))?;
        let node_id = node_id_of(&leaf).ok_or(PkiError::NoNodeId)?;
        {
            let parsed = parse_x509(&leaf)?;
            let ca_parsed = parse_x509(ca.der())?;
            parsed
                .verify_signature(Some(ca_parsed.public_key()))
                .map_err(|_| PkiError::NotIssuedByCa)?;
            let key_pair = rcgen::KeyPair::from_pem(key_pem)?;
            if parsed.public_key().subject_public_key.data.as_ref() != key_pair.public_key_raw() {
                return Err(PkiError::KeyMismatch);
            }
        }
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
            .map_err(|e| PkiError::Pem(e.to_string()))?;
        Ok(NodeIdentity {
            node_id,
            cert_chain: vec![leaf, ca.der().clone()],
            key,
        })
    }

    /// The node id named by the certificate.
    pub fn node_id(&self) -> NodeId {
        self.node_id
    }

    /// The node's own certificate as PEM.
    pub fn cert_pem(&self) -> String {
        // `from_pem` refuses a chain without a leaf; the guard keeps it total.
        self.cert_chain
            .first()
            .map(|c| cert_pem(c))
            .unwrap_or_default()
    }

    /// The chain sent in handshakes: the node's certificate, then the CA's
    /// (joiners need the CA certificate to check their pin).
    pub fn cert_chain(&self) -> &[CertificateDer<'static>] {
        &self.cert_chain
    }

    /// The secret of the node's QUIC stateless resets, derived from its
    /// private key so that it survives a restart: a peer that still holds
    /// a connection to the node's previous process (after kill -9 nobody
    /// closed it) is told at its next packet that the connection is gone,
    /// and reconnects at once instead of waiting out the idle timeout.
    pub(crate) fn stateless_reset_secret(&self) -> [u8; 32] {
        let mut context = ring::digest::Context::new(&ring::digest::SHA256);
        context.update(b"stockade quic stateless reset v1\0");
        context.update(self.key.secret_der());
        let mut secret = [0; 32];
        secret.copy_from_slice(context.finish().as_ref());
        secret
    }

    /// An identity from parts, unchecked: lets tests build the forgeries the
    /// checked constructor refuses.
    #[cfg(test)]
    pub(crate) fn from_parts_unchecked(
        node_id: NodeId,
        cert_chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Self {
        NodeIdentity {
            node_id,
            cert_chain,
            key,
        }
    }

    /// The private key (for building TLS configurations).
    pub(crate) fn key(&self) -> PrivateKeyDer<'static> {
        self.key.clone_key()
    }
}

impl Clone for NodeIdentity {
    fn clone(&self) -> Self {
        NodeIdentity {
            node_id: self.node_id,
            cert_chain: self.cert_chain.clone(),
            key: self.key.clone_key(),
        }
    }
}

impl std::fmt::Debug for NodeIdentity {
    // The private key stays out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeIdentity")
            .field("node_id", &self.node_id)
            .field("cert_chain_len", &self.cert_chain.len())
            .finish_non_exhaustive()
    }
}
