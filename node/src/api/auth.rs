//! Bearer-token authentication and role checks.
//!
//! Tokens live in the replicated state (hashed), so every node authenticates
//! every call locally, without asking the leader.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use stockade_policy::{Author, Role};

use super::error::ApiError;
use super::AppState;
use crate::tokens::ApiTokenText;

/// The authenticated caller of a request: its token and where it called
/// from, which the audit log records with every change it makes.
#[derive(Clone, Debug)]
pub struct Caller {
    /// What the caller's token may do.
    pub role: Role,
    /// The token's public id.
    pub token_id: String,
    /// The token's name.
    pub token_name: String,
    /// The client's address, when the server knows it (it serves with
    /// connection info).
    pub address: Option<SocketAddr>,
}

impl Caller {
    /// Who the caller is, for the audit log.
    pub fn author(&self) -> Author {
        Author {
            token_id: self.token_id.clone(),
            token_name: self.token_name.clone(),
            role: self.role,
        }
    }

    /// 403 unless the caller's role includes `needed`.
    pub fn require(&self, needed: Role) -> Result<(), ApiError> {
        if self.role.allows(needed) {
            Ok(())
        } else {
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                format!("this needs the {needed} role; the token has {}", self.role),
            ))
        }
    }
}

fn unauthorized(why: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, why)
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(header::AUTHORIZATION)
            .ok_or_else(|| unauthorized("missing `Authorization: Bearer <token>`"))?;
        let token: ApiTokenText = header
            .to_str()
            .ok()
            .and_then(|h| h.strip_prefix("Bearer "))
            .ok_or_else(|| unauthorized("the Authorization header is not `Bearer <token>`"))?
            .parse()
            .map_err(|_| unauthorized("malformed token"))?;
        let now_ms = crate::clock::now_ms();
        let address = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|info| info.0);
        app.cluster
            .with_state(|state| {
                state
                    .access
                    .authenticate_token(&token.id, &token.secret_digest(), now_ms)
                    .map(|t| Caller {
                        role: t.role,
                        token_id: t.id.clone(),
                        token_name: t.name.clone(),
                        address,
                    })
            })
            .ok_or_else(|| unauthorized("unknown, revoked or expired token"))
    }
}
