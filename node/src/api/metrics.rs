//! `GET /metrics`: this node's metrics for Prometheus (see
//! [`crate::metrics`]).
//!
//! Like every other endpoint it takes `Authorization: Bearer <token>`; any
//! role will do, so a scraper gets a `viewer` token. Prometheus sends one
//! with `authorization: { credentials_file: ... }` in its scrape config.

use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Caller;
use super::error::{known_parameters, ApiError, ApiResult, ErrorBody};
use super::openapi::doc;
use super::AppState;
use crate::metrics::{encode, Format, Snapshot};

/// The routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(metrics))
}

/// This node's metrics, read at the time of the request: Raft role, term
/// and lags, the dataplane's index, lag, verdicts and map pressure, the
/// flow log's, alert delivery's and the tunnel's counters. OpenMetrics
/// text when the `Accept` header names `application/openmetrics-text`
/// (Prometheus does), else the Prometheus text format 0.0.4. Any role may
/// read it. Takes no query parameters.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "metrics",
    responses(
        (status = 200, description = "The metrics, in the format the `Accept` header asks for", content(
            (String = "text/plain; version=0.0.4; charset=utf-8"),
            (String = "application/openmetrics-text; version=1.0.0; charset=utf-8"),
        )),
        (status = 400, description = "A query parameter was given; there are none", body = ErrorBody),
        (status = 401, description = doc::UNAUTHORIZED, body = ErrorBody),
        (status = 500, description = "The metrics could not be encoded (a bug)", body = ErrorBody),
    )
)]
async fn metrics(
    State(app): State<AppState>,
    _: Caller,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    known_parameters(raw.as_deref(), &[])?;
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok());
    let format = Format::from_accept(accept);
    let text = encode(Snapshot::of(&app.cluster), format).map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot encode the metrics: {e}"),
        )
    })?;
    Ok(([(header::CONTENT_TYPE, format.content_type())], text).into_response())
}
