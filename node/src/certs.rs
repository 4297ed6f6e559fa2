//! The node's certificate: loading it (finishing a renewal a crash cut
//! short), showing it, and renewing it while the node runs.
//!
//! A renewal (`stockade certs rotate`, `POST /v1/certs/rotate`) happens on
//! the node itself: it makes a new key and a CSR, and the cluster CA signs
//! it for this node's id. The CA's key is in the replicated state every
//! member applies (that is how any node admits joiners), so this node signs
//! with the CA of its own applied state, after checking that it is the CA
//! its peers trust and that the node is still a member; the private key
//! never leaves the node and no call needs the leader (a node whose
//! certificate has expired, and so cannot reach its peers, can still renew
//! it). The new pair is written next to the old one and renamed over it
//! (the old pair is kept as `*.old` until the switch is done), then the
//! QUIC endpoint presents it on new connections; open connections go on
//! with the certificate they were made with. The tunnel key, derived from
//! the node key, follows (see [`crate::tunnel::TunnelKeys`]).

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context as _, Result};
use serde::{Deserialize, Serialize};
use stockade_policy::NodeId;
use stockade_transport::{
    CaCertificate, CertificateInfo, ClusterCa, Endpoint, NodeIdentity, NodeKey,
};
use utoipa::ToSchema;

use crate::cluster::ControlPlane;

/// The data directory's folder of TLS files.
pub const TLS_DIR: &str = "tls";
/// The cluster CA's certificate.
pub const CA_FILE: &str = "ca.pem";
/// The node's certificate.
pub const CERT_FILE: &str = "node.pem";
/// The node's private key.
pub const KEY_FILE: &str = "node.key";
/// Suffix of a renewed file before it is renamed over the one in use.
const NEW: &str = ".new";
/// Suffix of the file in use before a renewal, kept until the switch is done.
const OLD: &str = ".old";
/// Below this many days left, a certificate is flagged as expiring soon.
pub const WARN_DAYS: i64 = 30;
/// How long a renewal waits for the tunnel to take the new key.
const TUNNEL_SWITCH_LIMIT: Duration = Duration::from_secs(20);

/// A file of the data directory's `tls/` folder.
pub fn tls_path(data_dir: &Path, file: &str) -> PathBuf {
    data_dir.join(TLS_DIR).join(file)
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn read(path: &Path) -> Result<String> {
    fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

/// The node's identity from `pem` and `key` files, if both exist and match.
fn try_pair(cert: &Path, key: &Path, ca: &CaCertificate) -> Option<NodeIdentity> {
    let (cert, key) = (
        fs::read_to_string(cert).ok()?,
        fs::read_to_string(key).ok()?,
    );
    NodeIdentity::from_pem(&cert, &key, ca).ok()
}

/// Loads the CA certificate and the node's identity from the data
/// directory. A renewal cut short between its two renames leaves the new
/// key beside the old certificate: the new certificate is still in
/// `node.pem.new`, so the renewal is completed; failing that, the old key
/// is put back.
pub fn load_identity(data_dir: &Path) -> Result<(CaCertificate, NodeIdentity)> {
    let ca = CaCertificate::from_pem(&read(&tls_path(data_dir, CA_FILE))?)
        .context("the CA certificate")?;
    let cert = tls_path(data_dir, CERT_FILE);
    let key = tls_path(data_dir, KEY_FILE);
    let loaded = NodeIdentity::from_pem(&read(&cert)?, &read(&key)?, &ca);
    let error = match loaded {
        Ok(identity) => return Ok((ca, identity)),
        Err(e) => e,
    };
    let (new_cert, old_key) = (with_suffix(&cert, NEW), with_suffix(&key, OLD));
    if let Some(identity) = try_pair(&new_cert, &key, &ca) {
        tracing::warn!("completing a certificate renewal that was cut short");
        fs::rename(&new_cert, &cert).with_context(|| format!("renaming {}", new_cert.display()))?;
        return Ok((ca, identity));
    }
    if let Some(identity) = try_pair(&cert, &old_key, &ca) {
        tracing::warn!(
            "undoing a certificate renewal that was cut short; the old certificate stays"
        );
        fs::rename(&old_key, &key).with_context(|| format!("renaming {}", old_key.display()))?;
        return Ok((ca, identity));
    }
    Err(error).context("the node certificate")
}

/// Writes `contents` to `path` (mode 0600) and flushes it to the disk.
fn write_synced(path: &Path, contents: &str) -> Result<()> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(contents.as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", path.display()))
}

fn sync_dir(dir: &Path) -> Result<()> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("flushing {}", dir.display()))
}

/// Puts a new certificate and key in place of the node's: both are written
/// as `*.new`, the pair in use is copied to `*.old`, then the key and the
/// certificate are renamed over the old ones (see [`load_identity`] for a
/// crash between the two renames). The `*.old` backups stay until
/// [`drop_backups`].
pub fn install(data_dir: &Path, cert_pem: &str, key_pem: &str) -> Result<()> {
    let (cert, key) = (tls_path(data_dir, CERT_FILE), tls_path(data_dir, KEY_FILE));
    let (new_cert, new_key) = (with_suffix(&cert, NEW), with_suffix(&key, NEW));
    write_synced(&new_key, key_pem)?;
    write_synced(&new_cert, cert_pem)?;
    write_synced(&with_suffix(&key, OLD), &read(&key)?)?;
    write_synced(&with_suffix(&cert, OLD), &read(&cert)?)?;
    let dir = data_dir.join(TLS_DIR);
    sync_dir(&dir)?;
    fs::rename(&new_key, &key).with_context(|| format!("renaming {}", new_key.display()))?;
    fs::rename(&new_cert, &cert).with_context(|| format!("renaming {}", new_cert.display()))?;
    sync_dir(&dir)
}

/// Puts the `*.old` pair back (a renewal the endpoint refused).
fn restore_backups(data_dir: &Path) -> Result<()> {
    for file in [KEY_FILE, CERT_FILE] {
        let path = tls_path(data_dir, file);
        let old = with_suffix(&path, OLD);
        fs::rename(&old, &path).with_context(|| format!("restoring {}", old.display()))?;
    }
    sync_dir(&data_dir.join(TLS_DIR))
}

/// Removes the `*.old` pair once the new one is in use: the old key must
/// not outlive its retirement.
pub fn drop_backups(data_dir: &Path) -> Result<()> {
    for file in [KEY_FILE, CERT_FILE] {
        let old = with_suffix(&tls_path(data_dir, file), OLD);
        match fs::remove_file(&old) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("removing {}", old.display())),
        }
    }
    Ok(())
}

/// A certificate as `GET /v1/certs` shows it.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct CertStatus {
    /// The node the certificate names.
    pub node_id: u64,
    /// Its serial number (hex).
    pub serial: String,
    /// Valid from (RFC 3339, UTC).
    pub not_before: String,
    /// Valid until (RFC 3339, UTC).
    pub not_after: String,
    /// Whole days until `not_after` (negative once expired).
    pub days_left: i64,
    /// Fewer than 30 days left (or expired): renew it with
    /// `stockade certs rotate`.
    pub expires_soon: bool,
    /// SHA-256 of the certificate (hex).
    pub fingerprint: String,
    /// SHA-256 of the cluster CA's certificate (hex), as join tokens pin it.
    pub ca_fingerprint: String,
    /// When the cluster CA's certificate expires (RFC 3339, UTC).
    pub ca_not_after: String,
}

fn rfc3339(unix_seconds: i64) -> String {
    let at = UNIX_EPOCH + Duration::from_secs(u64::try_from(unix_seconds).unwrap_or(0));
    humantime::format_rfc3339_seconds(at).to_string()
}

fn now_seconds() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

impl CertStatus {
    /// The status of the certificate `cert_pem` issued by `ca`, at `now`
    /// (Unix seconds).
    pub fn of(cert_pem: &str, ca: &CaCertificate, now: i64) -> Result<CertStatus> {
        let info = CertificateInfo::from_pem(cert_pem).context("reading the node certificate")?;
        let ca_info = CertificateInfo::from_der(ca.der()).context("reading the CA certificate")?;
        let days_left = (info.not_after - now).div_euclid(86_400);
        Ok(CertStatus {
            node_id: info.node_id.unwrap_or(0),
            serial: info.serial,
            not_before: rfc3339(info.not_before),
            not_after: rfc3339(info.not_after),
            days_left,
            expires_soon: days_left < WARN_DAYS,
            fingerprint: info.fingerprint,
            ca_fingerprint: ca.fingerprint(),
            ca_not_after: rfc3339(ca_info.not_after),
        })
    }
}

/// What became of the tunnel key in a renewal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TunnelRenewal {
    /// The new tunnel key is published and in use.
    Switched,
    /// The new key's publication has not committed yet; it goes on in the
    /// background and the tunnel switches once it has.
    Pending,
    /// This node runs no tunnel.
    Off,
}

/// The reply of `POST /v1/certs/rotate`.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Rotated {
    /// The serial of the certificate that was replaced.
    pub previous_serial: String,
    /// The new certificate, now presented on new connections.
    pub certificate: CertStatus,
    /// The tunnel key, which is derived from the node key.
    pub tunnel_key: TunnelRenewal,
}

/// Renews this node's certificate while it runs.
pub struct Renewer {
    data_dir: PathBuf,
    endpoint: Endpoint,
    ca: CaCertificate,
    /// The certificate in use (PEM).
    cert_pem: RwLock<String>,
    /// One renewal at a time.
    busy: tokio::sync::Mutex<()>,
}

impl Renewer {
    /// A renewer for the node of `data_dir`, whose `endpoint` presents
    /// `identity` now.
    pub fn new(
        data_dir: PathBuf,
        endpoint: Endpoint,
        ca: CaCertificate,
        identity: &NodeIdentity,
    ) -> Self {
        Renewer {
            data_dir,
            endpoint,
            ca,
            cert_pem: RwLock::new(identity.cert_pem()),
            busy: tokio::sync::Mutex::new(()),
        }
    }

    /// The certificate in use.
    pub fn status(&self) -> Result<CertStatus> {
        let pem = self
            .cert_pem
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        CertStatus::of(&pem, &self.ca, now_seconds())
    }

    /// Renews the certificate: new key, signed by the cluster CA for this
    /// node, written to the data directory, presented on new connections;
    /// then the tunnel moves to the new key. A failure before the switch
    /// leaves the old certificate in use and on disk.
    pub async fn rotate(&self, control: &Arc<ControlPlane>) -> Result<Rotated> {
        let _one_at_a_time = self.busy.lock().await;
        let previous = self.status()?;
        let me = self.endpoint.node_id();
        let ca = control.with_state(|s| {
            if !s.nodes.contains_key(&NodeId(me)) {
                bail!("node {me} is not a member of the cluster any more: it cannot renew its certificate");
            }
            s.access.ca.clone().context("the cluster has no certificate authority")
        })?;
        let ca = ClusterCa::from_pem(&ca.cert_pem, &ca.key_pem.0).context("the cluster CA")?;
        if ca.fingerprint() != self.ca.fingerprint() {
            bail!(
                "the state's CA ({}) is not the one this node trusts ({})",
                ca.fingerprint(),
                self.ca.fingerprint()
            );
        }
        let key = NodeKey::generate().context("creating the new node key")?;
        let cert_pem = ca
            .sign_node_csr(&key.csr_pem(me)?, me)
            .context("signing the new certificate")?;
        let key_pem = key.key_pem();
        let identity = NodeIdentity::from_pem(&cert_pem, &key_pem, &self.ca)
            .context("checking the new certificate")?;
        install(&self.data_dir, &cert_pem, &key_pem)?;
        if let Err(e) = self.endpoint.set_identity(&identity) {
            restore_backups(&self.data_dir)?;
            return Err(e).context("switching the endpoint to the new certificate");
        }
        *self
            .cert_pem
            .write()
            .unwrap_or_else(PoisonError::into_inner) = cert_pem;
        drop_backups(&self.data_dir)?;
        let certificate = self.status()?;
        tracing::info!(previous = %previous.serial, serial = %certificate.serial, "renewed the node certificate");
        let tunnel_key = match control.tunnel() {
            None => TunnelRenewal::Off,
            Some(tunnel) => match tunnel.renew(&identity, TUNNEL_SWITCH_LIMIT).await? {
                true => TunnelRenewal::Switched,
                false => TunnelRenewal::Pending,
            },
        };
        Ok(Rotated {
            previous_serial: previous.serial,
            certificate,
            tunnel_key,
        })
    }
}

#[cfg(test)]
#[path = "certs_tests.rs"]
mod tests;
