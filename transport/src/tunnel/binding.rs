//! A node's Noise static key and its binding to the node's certificate.
//!
//! The key is derived from the node's private key, so it survives restarts
//! and needs no file of its own. The node signs "this is node N's tunnel key"
//! with its certificate's key; any node checks that signature, and that the
//! certificate is the cluster CA's and names N, before it trusts the key.

use ring::signature::{
    EcdsaKeyPair, UnparsedPublicKey, ECDSA_P256_SHA256_ASN1, ECDSA_P256_SHA256_ASN1_SIGNING,
};
use rustls::pki_types::PrivateKeyDer;
use snow::params::DHChoice;
use snow::resolvers::{CryptoResolver, DefaultResolver};

use crate::identity::{node_id_of, parse_one_cert, parse_x509, CaCertificate, NodeIdentity};
use crate::NodeId;

/// What a node signs: a label, its id and its Noise public key.
fn signed_message(node: NodeId, public_key: &[u8; 32]) -> Vec<u8> {
    let mut message = b"stockade tunnel key v1\0".to_vec();
    message.extend_from_slice(&node.to_be_bytes());
    message.extend_from_slice(public_key);
    message
}

/// A Noise static (X25519) key pair.
#[derive(Clone)]
pub struct StaticKeypair {
    secret: [u8; 32],
    public: [u8; 32],
}

impl StaticKeypair {
    /// The key pair of a secret.
    pub fn from_secret(secret: [u8; 32]) -> Self {
        let mut dh = DefaultResolver
            .resolve_dh(&DHChoice::Curve25519)
            // The default resolver implements X25519 (snow's `use-curve25519`).
            .expect("snow's default resolver has X25519");
        dh.set(&secret);
        let mut public = [0; 32];
        public.copy_from_slice(dh.pubkey());
        StaticKeypair { secret, public }
    }

    /// The public half.
    pub fn public(&self) -> &[u8; 32] {
        &self.public
    }

    pub(crate) fn secret(&self) -> &[u8; 32] {
        &self.secret
    }
}

impl std::fmt::Debug for StaticKeypair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaticKeypair")
            .field("public", &hex::encode(self.public))
            .finish_non_exhaustive()
    }
}

/// A node's published tunnel key with what binds it to the node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TunnelKeyBinding {
    /// The node.
    pub node: NodeId,
    /// Its Noise static public key.
    pub public_key: [u8; 32],
    /// Its certificate (PEM).
    pub cert_pem: String,
    /// The certificate key's ECDSA P-256 signature (DER).
    pub signature: Vec<u8>,
}

/// Why a tunnel key cannot be trusted, or made.
#[derive(Debug, thiserror::Error)]
pub enum TunnelKeyError {
    /// The certificate does not parse, is not the cluster CA's, or is not
    /// valid now.
    #[error("the certificate is not a valid cluster certificate: {0}")]
    Certificate(String),
    /// The certificate names another node (or none).
    #[error("the certificate names node {found:?}, not node {expected}")]
    WrongNode {
        /// The node the key claims to be of.
        expected: NodeId,
        /// The node the certificate names.
        found: Option<NodeId>,
    },
    /// The signature does not verify.
    #[error("the signature over the key does not verify with the certificate")]
    BadSignature,
    /// The node's private key cannot sign (not a PKCS#8 P-256 key).
    #[error("the node key cannot sign its tunnel key: {0}")]
    Signing(String),
}

impl NodeIdentity {
    /// The node's Noise static key pair, derived from its private key.
    pub fn tunnel_keypair(&self) -> StaticKeypair {
        let mut context = ring::digest::Context::new(&ring::digest::SHA256);
        context.update(b"stockade noise static key v1\0");
        context.update(self.key().secret_der());
        let mut secret = [0; 32];
        secret.copy_from_slice(context.finish().as_ref());
        StaticKeypair::from_secret(secret)
    }

    /// The node's tunnel key, signed by its certificate's key.
    pub fn tunnel_key_binding(&self) -> Result<TunnelKeyBinding, TunnelKeyError> {
        let public_key = *self.tunnel_keypair().public();
        let PrivateKeyDer::Pkcs8(pkcs8) = self.key() else {
            return Err(TunnelKeyError::Signing("not a PKCS#8 key".into()));
        };
        let rng = ring::rand::SystemRandom::new();
        let signer = EcdsaKeyPair::from_pkcs8(
            &ECDSA_P256_SHA256_ASN1_SIGNING,
            pkcs8.secret_pkcs8_der(),
            &rng,
        )
        .map_err(|e| TunnelKeyError::Signing(e.to_string()))?;
        let signature = signer
            .sign(&rng, &signed_message(self.node_id(), &public_key))
            .map_err(|e| TunnelKeyError::Signing(e.to_string()))?;
        let leaf = self
            .cert_chain()
            .first()
            // `from_pem` refuses a chain without a leaf.
            .expect("a node identity has its certificate");
        Ok(TunnelKeyBinding {
            node: self.node_id(),
            public_key,
            cert_pem: crate::identity::cert_pem(leaf),
            signature: signature.as_ref().to_vec(),
        })
    }
}

/// Checks that `binding` is what its node signed with a certificate of the
/// cluster CA, valid now, that names that node.
pub fn verify_tunnel_key(
    binding: &TunnelKeyBinding,
    ca: &CaCertificate,
) -> Result<(), TunnelKeyError> {
    let bad_cert = |e: &dyn std::fmt::Display| TunnelKeyError::Certificate(e.to_string());
    let der = parse_one_cert(&binding.cert_pem).map_err(|e| bad_cert(&e))?;
    let cert = parse_x509(&der).map_err(|e| bad_cert(&e))?;
    let ca_cert = parse_x509(ca.der()).map_err(|e| bad_cert(&e))?;
    cert.verify_signature(Some(ca_cert.public_key()))
        .map_err(|_| bad_cert(&"not signed by the cluster CA"))?;
    if !cert.validity().is_valid() {
        return Err(bad_cert(&"outside its validity period"));
    }
    let found = node_id_of(&der);
    if found != Some(binding.node) {
        return Err(TunnelKeyError::WrongNode {
            expected: binding.node,
            found,
        });
    }
    UnparsedPublicKey::new(
        &ECDSA_P256_SHA256_ASN1,
        cert.public_key().subject_public_key.data.as_ref(),
    )
    .verify(
        &signed_message(binding.node, &binding.public_key),
        &binding.signature,
    )
    .map_err(|_| TunnelKeyError::BadSignature)
}
