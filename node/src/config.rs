//! Node configuration: a TOML file, overridden by `STOCKADE_*` environment
//! variables, overridden by command-line flags.
//!
//! clap reads flags and environment together (each flag names its variable),
//! so the merge here is only "command line or environment, else file, else
//! default".

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};
use clap::Args;
use serde::{Deserialize, Serialize};

use crate::logging::LogFormat;

/// What a node needs to know to run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeConfig {
    /// Name of the node, unique in the cluster.
    pub name: String,
    /// Where the node keeps its keys, certificates and Raft data.
    pub data_dir: PathBuf,
    /// UDP address the control plane (QUIC) binds to.
    pub listen: SocketAddr,
    /// Address peers dial to reach this node (differs from `listen` behind
    /// NAT or in another cloud).
    pub advertise: SocketAddr,
    /// TCP address of the HTTP admin API.
    pub api_listen: SocketAddr,
    /// Build a Raft snapshot after this many applied entries.
    pub snapshot_every: u64,
    /// The kernel dataplane's settings; `None` when enforcement is off.
    pub dataplane: Option<DataplaneConfig>,
    /// The Noise tunnel's ports; `None` without a dataplane (nothing could
    /// send connections into it) or when turned off.
    pub tunnel: Option<TunnelConfig>,
    /// How the daemon writes its log lines.
    pub log_format: LogFormat,
    /// Periodic backups; `None` (the default) when `backup_dir` is unset.
    pub backup: Option<BackupConfig>,
}

/// Periodic backups of the cluster state (see `crate::backups`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackupConfig {
    /// Where the backup files go (created 0700; files are 0600).
    pub dir: PathBuf,
    /// How often the cluster takes one.
    pub interval: std::time::Duration,
    /// How many of this cluster's files the directory keeps; older ones are
    /// removed.
    pub keep: usize,
}

impl BackupConfig {
    /// The default interval: a day.
    pub const DEFAULT_INTERVAL: std::time::Duration = std::time::Duration::from_secs(24 * 3600);
    /// The default number of files kept.
    pub const DEFAULT_KEEP: usize = 14;
}

/// Where the Noise tunnel listens.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TunnelConfig {
    /// TCP port for other nodes' tunnels, on the control plane's listen IP.
    pub port: u16,
    /// TCP port on 127.0.0.1 the connect hook sends encrypted connections to.
    pub local_port: u16,
}

impl TunnelConfig {
    /// The default peer-facing port.
    pub const DEFAULT_PORT: u16 = 7401;
    /// The default loopback port.
    pub const DEFAULT_LOCAL_PORT: u16 = 7402;
}

/// Where the node enforces: its cgroup v2 subtree and its bpffs pin folder.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataplaneConfig {
    /// The cgroup v2 directory whose subtree the hooks enforce; `None` for
    /// the root of the cgroup v2 hierarchy (the whole machine).
    pub cgroup: Option<PathBuf>,
    /// The bpffs folder of this node's pins.
    pub pin_dir: PathBuf,
}

/// The config file; every field optional, since flags may supply it. It is
/// also what `init` and `join` save as the data directory's `node.toml`.
/// `packaging/node.toml` documents every key (a test keeps the two in step).
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    data_dir: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    listen: Option<SocketAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    advertise: Option<SocketAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    api_listen: Option<SocketAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    snapshot_every: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    dataplane: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cgroup: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pin_dir: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tunnel: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tunnel_port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tunnel_local_port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    log_format: Option<LogFormat>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    backup_dir: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    backup_interval: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    backup_keep: Option<usize>,
}

/// The node settings on the command line; each can also come from its
/// `STOCKADE_*` environment variable, or from the `--config` file.
#[derive(Clone, Debug, Default, Args)]
pub struct NodeArgs {
    /// TOML file with the settings below (flags and environment win over it).
    #[arg(long, env = "STOCKADE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Name of this node [default: the host name].
    #[arg(long, env = "STOCKADE_NAME")]
    pub name: Option<String>,
    /// Data directory [default: /var/lib/stockade].
    #[arg(long, env = "STOCKADE_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// UDP address for node-to-node QUIC [default: 0.0.0.0:7400].
    #[arg(long, env = "STOCKADE_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Address peers dial [default: the listen address, which must then be
    /// a concrete one].
    #[arg(long, env = "STOCKADE_ADVERTISE")]
    pub advertise: Option<SocketAddr>,
    /// TCP address of the HTTP admin API [default: 127.0.0.1:7480].
    #[arg(long, env = "STOCKADE_API_LISTEN")]
    pub api_listen: Option<SocketAddr>,
    /// Build a Raft snapshot after this many applied entries [default: 1000].
    #[arg(long, env = "STOCKADE_SNAPSHOT_EVERY")]
    pub snapshot_every: Option<u64>,
    /// Run without the kernel dataplane: replicate policy, enforce nothing.
    #[arg(long, env = "STOCKADE_NO_DATAPLANE")]
    pub no_dataplane: bool,
    /// cgroup v2 directory whose subtree this node enforces [default: the
    /// root of the cgroup v2 hierarchy].
    #[arg(long, env = "STOCKADE_CGROUP")]
    pub cgroup: Option<PathBuf>,
    /// bpffs folder for this node's pinned programs, links and maps
    /// [default: /sys/fs/bpf/stockade].
    #[arg(long, env = "STOCKADE_PIN_DIR")]
    pub pin_dir: Option<PathBuf>,
    /// Run without the Noise tunnel: connections a rule encrypts are then
    /// refused.
    #[arg(long, env = "STOCKADE_NO_TUNNEL")]
    pub no_tunnel: bool,
    /// TCP port other nodes' tunnels connect to [default: 7401].
    #[arg(long, env = "STOCKADE_TUNNEL_PORT")]
    pub tunnel_port: Option<u16>,
    /// TCP port on 127.0.0.1 where encrypted connections enter the tunnel
    /// [default: 7402].
    #[arg(long, env = "STOCKADE_TUNNEL_LOCAL_PORT")]
    pub tunnel_local_port: Option<u16>,
    /// Log lines as `text` or `json` (one object per line), each with the
    /// node's id and name [default: text].
    #[arg(long, env = "STOCKADE_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
    /// Directory for periodic backups of the cluster state; none are taken
    /// when unset. The leader writes them (set it on every voter).
    #[arg(long, env = "STOCKADE_BACKUP_DIR")]
    pub backup_dir: Option<PathBuf>,
    /// How often to take a periodic backup, e.g. `6h` [default: 24h].
    #[arg(long, env = "STOCKADE_BACKUP_INTERVAL", value_parser = humantime::parse_duration)]
    pub backup_interval: Option<std::time::Duration>,
    /// How many backup files to keep [default: 14].
    #[arg(long, env = "STOCKADE_BACKUP_KEEP")]
    pub backup_keep: Option<usize>,
}

impl NodeArgs {
    /// The settings in force: flags or environment, else the file, else the
    /// defaults. Errors name the file or the setting at fault.
    pub fn resolve(&self) -> Result<NodeConfig> {
        let file = match &self.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        let listen = self
            .listen
            .or(file.listen)
            .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 7400)));
        let advertise = self.advertise.or(file.advertise).unwrap_or(listen);
        if advertise.ip().is_unspecified() {
            bail!("advertise: {advertise} is not an address peers can dial; set --advertise (or STOCKADE_ADVERTISE)");
        }
        let tunnel = TunnelConfig {
            port: self
                .tunnel_port
                .or(file.tunnel_port)
                .unwrap_or(TunnelConfig::DEFAULT_PORT),
            local_port: self
                .tunnel_local_port
                .or(file.tunnel_local_port)
                .unwrap_or(TunnelConfig::DEFAULT_LOCAL_PORT),
        };
        if tunnel.port == 0 || tunnel.local_port == 0 {
            bail!("tunnel_port and tunnel_local_port must not be 0; turn the tunnel off with --no-tunnel");
        }
        let dataplane_on = !self.no_dataplane && file.dataplane.unwrap_or(true);
        let tunnel_on = dataplane_on && !self.no_tunnel && file.tunnel.unwrap_or(true);
        let backup = self.backup(&file)?;
        let name = match self.name.clone().or(file.name) {
            Some(name) => name,
            None => host_name()?,
        };
        Ok(NodeConfig {
            backup,
            name,
            data_dir: self
                .data_dir
                .clone()
                .or(file.data_dir)
                .unwrap_or_else(|| PathBuf::from("/var/lib/stockade")),
            listen,
            advertise,
            api_listen: self
                .api_listen
                .or(file.api_listen)
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 7480))),
            snapshot_every: self.snapshot_every.or(file.snapshot_every).unwrap_or(1000),
            tunnel: tunnel_on.then_some(tunnel),
            log_format: self.log_format.or(file.log_format).unwrap_or_default(),
            dataplane: dataplane_on.then(|| DataplaneConfig {
                cgroup: self.cgroup.clone().or(file.cgroup),
                pin_dir: self
                    .pin_dir
                    .clone()
                    .or(file.pin_dir)
                    .unwrap_or_else(|| PathBuf::from(stockade_bpf::DEFAULT_PIN_DIR)),
            }),
        })
    }
}

impl NodeArgs {
    fn backup(&self, file: &FileConfig) -> Result<Option<BackupConfig>> {
        let interval = match (self.backup_interval, &file.backup_interval) {
            (Some(flag), _) => flag,
            (None, Some(text)) => humantime::parse_duration(text)
                .with_context(|| format!("backup_interval: `{text}` is not a duration"))?,
            (None, None) => BackupConfig::DEFAULT_INTERVAL,
        };
        if interval < std::time::Duration::from_secs(1) {
            bail!("backup_interval: must be at least 1s");
        }
        let keep = self
            .backup_keep
            .or(file.backup_keep)
            .unwrap_or(BackupConfig::DEFAULT_KEEP);
        if keep == 0 {
            bail!("backup_keep: must be at least 1 (leave backup_dir unset for no backups)");
        }
        Ok(self
            .backup_dir
            .clone()
            .or_else(|| file.backup_dir.clone())
            .map(|dir| BackupConfig {
                dir,
                interval,
                keep,
            }))
    }
}

impl NodeConfig {
    /// These settings as a config file (TOML) that gives them back: what
    /// `init` and `join` save as the data directory's `node.toml`, so that
    /// `start` needs nothing but the directory.
    pub fn to_toml(&self) -> Result<String> {
        let file = FileConfig {
            name: Some(self.name.clone()),
            data_dir: Some(self.data_dir.clone()),
            listen: Some(self.listen),
            advertise: Some(self.advertise),
            api_listen: Some(self.api_listen),
            snapshot_every: Some(self.snapshot_every),
            dataplane: Some(self.dataplane.is_some()),
            cgroup: self.dataplane.as_ref().and_then(|d| d.cgroup.clone()),
            pin_dir: self.dataplane.as_ref().map(|d| d.pin_dir.clone()),
            // Without a dataplane the tunnel is off whatever this says:
            // leave it to the defaults for the day the dataplane is on.
            tunnel: self.dataplane.as_ref().map(|_| self.tunnel.is_some()),
            tunnel_port: self.tunnel.map(|t| t.port),
            tunnel_local_port: self.tunnel.map(|t| t.local_port),
            log_format: Some(self.log_format),
            backup_dir: self.backup.as_ref().map(|b| b.dir.clone()),
            backup_interval: self
                .backup
                .as_ref()
                .map(|b| humantime::format_duration(b.interval).to_string()),
            backup_keep: self.backup.as_ref().map(|b| b.keep),
        };
        toml::to_string(&file).context("writing the settings as TOML")
    }
}

fn read_file(path: &Path) -> Result<FileConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading config file {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("in config file {}", path.display()))
}

fn host_name() -> Result<String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .context("reading the host name for the node name; set --name")?;
    Ok(name.trim().to_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_win_over_the_file_which_wins_over_defaults() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("stockade.toml");
        std::fs::write(
            &path,
            "name = \"from-file\"\nlisten = \"10.0.0.1:7400\"\napi_listen = \"10.0.0.1:9000\"\n",
        )
        .expect("write config");
        let args = NodeArgs {
            config: Some(path),
            api_listen: Some("127.0.0.1:9999".parse().expect("addr")),
            ..NodeArgs::default()
        };
        let config = args.resolve().expect("valid config");
        assert_eq!(config.name, "from-file");
        assert_eq!(config.listen, "10.0.0.1:7400".parse().expect("addr"));
        assert_eq!(
            config.advertise, config.listen,
            "advertise defaults to listen"
        );
        assert_eq!(config.api_listen, "127.0.0.1:9999".parse().expect("addr"));
        assert_eq!(config.data_dir, PathBuf::from("/var/lib/stockade"));
    }

    #[test]
    fn bad_files_and_undialable_addresses_are_named() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, "lisen = \"10.0.0.1:7400\"\n").expect("write config");
        let err = NodeArgs {
            config: Some(path),
            ..NodeArgs::default()
        }
        .resolve()
        .expect_err("unknown key");
        let err = format!("{err:#}");
        assert!(err.contains("bad.toml") && err.contains("lisen"), "{err}");

        let err = NodeArgs {
            name: Some("n".into()),
            ..NodeArgs::default()
        }
        .resolve()
        .expect_err("0.0.0.0 cannot be advertised");
        assert!(format!("{err:#}").contains("--advertise"), "{err:#}");
    }

    /// The keys the config loader knows: serde hands a struct's field
    /// names to `deserialize_struct`, and this deserializer keeps them.
    fn loader_keys() -> std::collections::BTreeSet<&'static str> {
        use serde::de::{self, Visitor};
        struct Recorder(&'static [&'static str]);
        impl<'de> de::Deserializer<'de> for &mut Recorder {
            type Error = de::value::Error;
            fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
                Err(de::Error::custom("only a struct is expected"))
            }
            fn deserialize_struct<V: Visitor<'de>>(
                self,
                _: &'static str,
                fields: &'static [&'static str],
                _: V,
            ) -> Result<V::Value, Self::Error> {
                self.0 = fields;
                Err(de::Error::custom("fields recorded"))
            }
            serde::forward_to_deserialize_any! {
                bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
                bytes byte_buf option unit unit_struct newtype_struct seq tuple
                tuple_struct map enum identifier ignored_any
            }
        }
        let mut recorder = Recorder(&[]);
        let _ = FileConfig::deserialize(&mut recorder);
        recorder.0.iter().copied().collect()
    }

    /// `packaging/node.toml` with its commented-out settings switched on.
    fn packaged_file_uncommented() -> String {
        let text = include_str!("../../packaging/node.toml");
        text.lines()
            .map(|line| match line.strip_prefix("# ") {
                Some(rest)
                    if rest.split_once(" = ").is_some_and(|(k, _)| {
                        k.chars().all(|c| c.is_ascii_lowercase() || c == '_')
                    }) =>
                {
                    rest
                }
                _ => line,
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn the_packaged_file_documents_every_key_the_loader_knows() {
        let text = packaged_file_uncommented();
        let table: toml::Table = text.parse().expect("packaging/node.toml is TOML");
        let documented: std::collections::BTreeSet<&str> =
            table.keys().map(String::as_str).collect();
        assert_eq!(
            documented,
            loader_keys(),
            "packaging/node.toml against FileConfig"
        );
        // Each key's comment names its flag and its environment variable.
        let raw = include_str!("../../packaging/node.toml");
        for key in loader_keys() {
            let at = raw
                .find(&format!("\n# {key} = "))
                .unwrap_or_else(|| panic!("{key} is not a commented-out setting"));
            let comment = &raw[..at];
            let comment = &comment[comment.rfind("\n\n").unwrap_or(0)..];
            assert!(
                comment.contains("STOCKADE_") && comment.contains("--"),
                "the comment of {key} names no flag or environment variable: {comment}"
            );
        }
    }

    #[test]
    fn the_packaged_file_loads_and_its_values_are_the_defaults() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("node.toml");
        std::fs::write(&path, packaged_file_uncommented()).expect("write config");
        let from_file = NodeArgs {
            config: Some(path),
            ..NodeArgs::default()
        }
        .resolve()
        .expect("the packaged file is valid");
        // The name, the advertised address and the cgroup are examples;
        // everything else shows its default.
        let defaults = NodeArgs {
            name: Some(from_file.name.clone()),
            advertise: Some(from_file.advertise),
            cgroup: from_file.dataplane.as_ref().and_then(|d| d.cgroup.clone()),
            backup_dir: from_file.backup.as_ref().map(|b| b.dir.clone()),
            ..NodeArgs::default()
        }
        .resolve()
        .expect("defaults");
        assert_eq!(from_file, defaults);
    }

    #[test]
    fn saved_settings_load_back_as_they_were() {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = NodeArgs {
            name: Some("n2".into()),
            data_dir: Some(dir.path().to_owned()),
            advertise: Some("198.51.100.7:7400".parse().expect("addr")),
            snapshot_every: Some(77),
            cgroup: Some("/sys/fs/cgroup/stockade".into()),
            tunnel_port: Some(7501),
            log_format: Some(LogFormat::Json),
            backup_dir: Some(dir.path().join("backups")),
            backup_interval: Some(std::time::Duration::from_secs(5400)),
            ..NodeArgs::default()
        }
        .resolve()
        .expect("config");
        let path = dir.path().join("node.toml");
        std::fs::write(&path, config.to_toml().expect("toml")).expect("write");
        let again = NodeArgs {
            config: Some(path),
            ..NodeArgs::default()
        }
        .resolve()
        .expect("saved settings load");
        assert_eq!(again, config);
    }
}
