//! Who may change the cluster, and who may join it: API tokens with roles,
//! single-use join tokens, the cluster's certificate authority, and how many
//! voters the control plane keeps.
//!
//! Secrets never enter the state in clear: a token's secret is kept as its
//! SHA-256, so a copy of the state (a snapshot, a backup) grants nothing.
//! Time is an input, not a clock read: a command that depends on "now"
//! carries the time its proposer saw, so every node applies it the same way.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use crate::error::ValidationError;
use crate::ids::NodeId;
use crate::state::ClusterState;
use crate::{Node, Secret, Sha256};

/// What an API token may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Role {
    /// Read everything.
    Viewer,
    /// Read everything and change policy (not tokens or membership).
    Operator,
    /// Everything.
    Admin,
}

impl Role {
    /// Whether this role includes everything `needed` may do.
    pub fn allows(self, needed: Role) -> bool {
        self >= needed
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        })
    }
}

/// A bearer token of the admin API, by its public id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiToken {
    /// Public part of the token, unique; shown in lists and logs.
    pub id: String,
    /// What it is for, for people.
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// SHA-256 of the secret part.
    pub secret_sha256: Sha256,
    /// Milliseconds since the epoch after which it is refused; never if absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at_ms: Option<u64>,
}

/// A single-use token that lets one new node join.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JoinToken {
    /// Public part of the token, unique.
    pub id: String,
    /// SHA-256 of the secret part.
    pub secret_sha256: Sha256,
    /// Milliseconds since the epoch after which it is refused.
    pub expires_at_ms: u64,
    /// The node that used it; a used token is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub used_by: Option<NodeId>,
}

/// The cluster's certificate authority. Every voter can sign a joining
/// node's certificate, so no node is special; the data directories that hold
/// the state must be protected like the key itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertificateAuthority {
    /// The CA certificate (PEM).
    pub cert_pem: String,
    /// Its private key (PEM).
    pub key_pem: Secret,
}

/// The access part of the cluster state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Access {
    /// API tokens by id.
    pub api_tokens: BTreeMap<String, ApiToken>,
    /// Join tokens by id.
    pub join_tokens: BTreeMap<String, JoinToken>,
    /// The certificate authority, once the cluster is initialised.
    pub ca: Option<CertificateAuthority>,
    /// How many voters the control plane keeps (odd); further nodes are learners.
    pub target_voters: u8,
    /// The next node id to hand to a joining node.
    pub next_node_id: u64,
}

impl Default for Access {
    fn default() -> Self {
        Access {
            api_tokens: BTreeMap::new(),
            join_tokens: BTreeMap::new(),
            ca: None,
            target_voters: 3,
            next_node_id: 2, // the node that initialises the cluster is 1
        }
    }
}

impl Access {
    /// The role of a presented token, if it is valid at `now_ms`.
    pub fn authenticate(&self, id: &str, secret_sha256: &Sha256, now_ms: u64) -> Option<Role> {
        self.authenticate_token(id, secret_sha256, now_ms)
            .map(|token| token.role)
    }

    /// The presented token (its name and role), if it is valid at `now_ms`.
    pub fn authenticate_token(
        &self,
        id: &str,
        secret_sha256: &Sha256,
        now_ms: u64,
    ) -> Option<&ApiToken> {
        let token = self.api_tokens.get(id)?;
        let live = token.expires_at_ms.is_none_or(|t| now_ms < t);
        (live && token.secret_sha256 == *secret_sha256).then_some(token)
    }
}

/// A change to who may change or join the cluster.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "access", rename_all = "snake_case", deny_unknown_fields)]
pub enum AccessCommand {
    /// Record the cluster's CA; done once, by `stockade init`.
    SetCertificateAuthority(CertificateAuthority),
    /// Create an API token.
    CreateApiToken(ApiToken),
    /// Revoke an API token.
    RevokeApiToken {
        /// Its id.
        id: String,
    },
    /// Create a join token.
    CreateJoinToken(JoinToken),
    /// Use a join token: a new node gets the next node id and its record.
    RedeemJoinToken {
        /// The token's id.
        id: String,
        /// SHA-256 of the secret the joining node presented.
        secret_sha256: Sha256,
        /// When the proposer received the request (ms since the epoch).
        now_ms: u64,
        /// The new node's name.
        node_name: String,
        /// Its advertised control-plane address.
        address: SocketAddr,
    },
    /// Set how many voters the control plane keeps.
    SetTargetVoters {
        /// An odd number from 1 to 7.
        voters: u8,
    },
}

/// The largest voter count accepted: more voters make every write slower and
/// buy no availability a 7-voter quorum does not have.
pub const MAX_VOTERS: u8 = 7;

fn fail<T>(field: &str, reason: impl Into<String>) -> Result<T, ValidationError> {
    Err(ValidationError::new(field, reason))
}

fn token_id(field: &str, id: &str) -> Result<(), ValidationError> {
    if id.is_empty() || id.len() > 32 || !id.chars().all(|c| c.is_ascii_alphanumeric()) {
        return fail(field, format!("`{id}` must be 1 to 32 letters or digits"));
    }
    Ok(())
}

impl AccessCommand {
    /// Checks the command against `state`; the error names the field.
    pub fn validate(&self, state: &ClusterState) -> Result<(), ValidationError> {
        let access = &state.access;
        match self {
            AccessCommand::SetCertificateAuthority(ca) => {
                if access.ca.is_some() {
                    return fail("ca", "the cluster already has a certificate authority");
                }
                if !ca.cert_pem.contains("BEGIN CERTIFICATE") {
                    return fail("cert_pem", "is not a PEM certificate");
                }
                Ok(())
            }
            AccessCommand::CreateApiToken(token) => {
                token_id("id", &token.id)?;
                if access.api_tokens.contains_key(&token.id) {
                    return fail("id", format!("an API token with id `{}` exists", token.id));
                }
                if token.name.trim().is_empty() {
                    return fail("name", "must not be empty");
                }
                Ok(())
            }
            AccessCommand::RevokeApiToken { id } => match access.api_tokens.get(id) {
                None => fail("id", format!("no API token has id `{id}`")),
                Some(token) if token.role == Role::Admin && admins(state) == 1 => {
                    fail("id", "this is the last admin token; create another first")
                }
                Some(_) => Ok(()),
            },
            AccessCommand::CreateJoinToken(token) => {
                token_id("id", &token.id)?;
                if access.join_tokens.contains_key(&token.id) {
                    return fail("id", format!("a join token with id `{}` exists", token.id));
                }
                if token.used_by.is_some() {
                    return fail("used_by", "a new join token cannot be used already");
                }
                Ok(())
            }
            AccessCommand::RedeemJoinToken {
                id,
                secret_sha256,
                now_ms,
                node_name,
                address,
            } => {
                // One answer for an unknown id and a wrong secret: the caller
                // learns nothing about which ids exist.
                let token = access
                    .join_tokens
                    .get(id)
                    .filter(|t| t.secret_sha256 == *secret_sha256);
                let Some(token) = token else {
                    return fail("token", "invalid join token");
                };
                if let Some(node) = token.used_by {
                    return fail(
                        "token",
                        format!("this join token was already used by node {node}"),
                    );
                }
                if *now_ms >= token.expires_at_ms {
                    return fail("token", "this join token has expired");
                }
                let node = self::joining_node(access.next_node_id, node_name, *address);
                crate::Command::UpsertNode(node).validate(state)
            }
            AccessCommand::SetTargetVoters { voters } => {
                if *voters == 0 || *voters > MAX_VOTERS || voters % 2 == 0 {
                    return fail(
                        "voters",
                        format!("{voters} is not an odd number from 1 to {MAX_VOTERS}"),
                    );
                }
                Ok(())
            }
        }
    }

    /// Applies a command [`validate`](Self::validate) accepted; returns the
    /// node id a redeemed join token allocated.
    pub(crate) fn apply_valid(&self, state: &mut ClusterState) -> Option<NodeId> {
        let access = &mut state.access;
        match self.clone() {
            AccessCommand::SetCertificateAuthority(ca) => access.ca = Some(ca),
            AccessCommand::CreateApiToken(token) => {
                access.api_tokens.insert(token.id.clone(), token);
            }
            AccessCommand::RevokeApiToken { id } => {
                access.api_tokens.remove(&id);
            }
            AccessCommand::CreateJoinToken(token) => {
                access.join_tokens.insert(token.id.clone(), token);
            }
            AccessCommand::RedeemJoinToken {
                id,
                node_name,
                address,
                ..
            } => {
                let node = joining_node(access.next_node_id, &node_name, address);
                access.next_node_id += 1;
                if let Some(token) = access.join_tokens.get_mut(&id) {
                    token.used_by = Some(node.id);
                }
                let id = node.id;
                state.nodes.insert(id, node);
                return Some(id);
            }
            AccessCommand::SetTargetVoters { voters } => access.target_voters = voters,
        }
        None
    }
}

fn joining_node(id: u64, name: &str, address: SocketAddr) -> Node {
    Node {
        id: NodeId(id),
        name: name.to_owned(),
        address,
        labels: BTreeMap::new(),
    }
}

fn admins(state: &ClusterState) -> usize {
    state
        .access
        .api_tokens
        .values()
        .filter(|t| t.role == Role::Admin)
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Command;

    fn digest(byte: u8) -> Sha256 {
        Sha256([byte; 32])
    }

    fn with_join_token(expires_at_ms: u64) -> ClusterState {
        let mut state = ClusterState::new();
        Command::Access(AccessCommand::CreateJoinToken(JoinToken {
            id: "j1".into(),
            secret_sha256: digest(7),
            expires_at_ms,
            used_by: None,
        }))
        .apply(&mut state)
        .expect("valid join token");
        state
    }

    fn redeem(secret: u8, now_ms: u64, name: &str, port: u16) -> Command {
        Command::Access(AccessCommand::RedeemJoinToken {
            id: "j1".into(),
            secret_sha256: digest(secret),
            now_ms,
            node_name: name.into(),
            address: SocketAddr::from(([10, 0, 0, 2], port)),
        })
    }

    #[test]
    fn a_join_token_admits_one_node_once_before_it_expires() {
        let mut state = with_join_token(1_000);
        let applied = redeem(7, 999, "node-2", 7400)
            .apply(&mut state)
            .expect("valid");
        assert_eq!(applied, crate::Applied::Node(NodeId(2)));
        assert_eq!(state.nodes[&NodeId(2)].name, "node-2");
        let again = redeem(7, 999, "node-3", 7401)
            .apply(&mut state)
            .expect_err("reused");
        assert!(again.reason.contains("already used by node 2"), "{again}");

        let mut expired = with_join_token(1_000);
        let err = redeem(7, 1_000, "node-2", 7400)
            .apply(&mut expired)
            .expect_err("expired");
        assert!(err.reason.contains("expired"), "{err}");
        let forged = redeem(8, 10, "node-2", 7400)
            .apply(&mut expired)
            .expect_err("forged");
        assert_eq!(
            (forged.field.as_str(), forged.reason.as_str()),
            ("token", "invalid join token")
        );
    }

    #[test]
    fn api_tokens_authenticate_by_secret_until_they_expire() {
        let mut state = ClusterState::new();
        for (id, role, expires) in [
            ("admin1", Role::Admin, None),
            ("ops1", Role::Operator, Some(50)),
        ] {
            Command::Access(AccessCommand::CreateApiToken(ApiToken {
                id: id.into(),
                name: format!("{id} token"),
                role,
                secret_sha256: digest(1),
                expires_at_ms: expires,
            }))
            .apply(&mut state)
            .expect("valid token");
        }
        let access = &state.access;
        assert_eq!(
            access.authenticate("admin1", &digest(1), 0),
            Some(Role::Admin)
        );
        assert_eq!(access.authenticate("admin1", &digest(2), 0), None);
        assert_eq!(
            access.authenticate("ops1", &digest(1), 49),
            Some(Role::Operator)
        );
        assert_eq!(access.authenticate("ops1", &digest(1), 50), None);
        assert_eq!(access.authenticate("nobody", &digest(1), 0), None);
        assert!(Role::Admin.allows(Role::Operator) && !Role::Viewer.allows(Role::Operator));

        let last_admin = Command::Access(AccessCommand::RevokeApiToken {
            id: "admin1".into(),
        });
        let err = last_admin.apply(&mut state).expect_err("last admin");
        assert!(err.reason.contains("last admin"), "{err}");
    }

    #[test]
    fn voter_targets_are_odd_and_bounded() {
        let mut state = ClusterState::new();
        for voters in [0, 2, 4, 9] {
            let err = Command::Access(AccessCommand::SetTargetVoters { voters })
                .apply(&mut state)
                .expect_err("refused");
            assert_eq!(err.field, "voters");
        }
        Command::Access(AccessCommand::SetTargetVoters { voters: 5 })
            .apply(&mut state)
            .expect("5 voters");
        assert_eq!(state.access.target_voters, 5);
    }

    #[test]
    fn access_commands_round_trip_through_json() {
        let command = redeem(7, 5, "node-2", 7400);
        let json = serde_json::to_string(&command).expect("serializes");
        assert!(
            json.contains(r#""op":"access","access":"redeem_join_token""#),
            "{json}"
        );
        let back: Command = serde_json::from_str(&json).expect("deserializes");
        assert_eq!(back, command);
    }
}
