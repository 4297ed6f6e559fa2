//! Alerts: `GET /v1/alerts`, the replicated alert log with each alert's
//! delivery state per sink, and the sinks' progress and counters.

use std::collections::BTreeMap;

use axum::extract::{Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use stockade_alerting::route;
use stockade_policy::{Alert, AlertKind, ClusterState};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::alerts::SinkCounters;
use crate::api::auth::Caller;
use crate::api::error::{ApiError, ApiResult, ErrorBody};
use crate::api::openapi::doc;
use crate::api::{AppState, ReadParams};

/// The routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_alerts))
}

/// The most alerts one reply carries.
const MAX_LIMIT: usize = 1000;

/// Which alerts `GET /v1/alerts` returns.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AlertQuery {
    /// Only alerts after this sequence number, oldest first; without it,
    /// the newest `limit` alerts.
    after: Option<u64>,
    /// At most this many (default 100, at most 1000).
    limit: Option<usize>,
    /// Only alerts of this kind (`policy_violation`, `unknown_binary`, …).
    #[param(value_type = Option<String>)]
    kind: Option<AlertKind>,
}

/// Where one alert stands with one sink.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// The sink has received it.
    Delivered,
    /// The sink wants it and has not received it yet.
    Pending,
    /// The sink's filters (severity, class, zones, apps) leave it out.
    NotRouted,
}

/// An alert with its delivery state per sink.
#[derive(Debug, Serialize, ToSchema)]
pub struct AlertEntry {
    /// The alert.
    #[serde(flatten)]
    pub alert: Alert,
    /// Its delivery state for each sink, by sink name.
    pub delivery: BTreeMap<String, DeliveryState>,
}

/// One sink's progress.
#[derive(Debug, Serialize, ToSchema)]
pub struct SinkProgress {
    /// The sink's name.
    pub name: String,
    /// Every alert up to this sequence number is delivered (or not routed).
    pub delivered_through: u64,
    /// When the leader last recorded progress (ms since the Unix epoch).
    pub progress_at_ms: u64,
    /// Alerts the sink wants and has not received.
    pub pending: usize,
    /// Whether a `sink_failing` alert stands for it.
    pub failing: bool,
    /// What this node did for it while it led (only the leader sends).
    pub counters: SinkCounters,
}

/// The reply of `GET /v1/alerts`.
#[derive(Debug, Serialize, ToSchema)]
pub struct AlertsReply {
    /// The sequence number of the newest alert.
    pub last_seq: u64,
    /// Undelivered alerts the bounded backlog had to drop (each drop is
    /// told by a `backlog_overflow` alert).
    pub dropped: u64,
    /// Observations this node could not raise because it was too far
    /// behind.
    pub lost_here: u64,
    /// The alerts asked for, oldest first.
    pub alerts: Vec<AlertEntry>,
    /// Every sink's progress.
    pub sinks: Vec<SinkProgress>,
}

/// Lists alerts with their delivery state per sink.
#[utoipa::path(
    get,
    path = "/v1/alerts",
    tag = "alerts",
    params(AlertQuery, ReadParams),
    responses(
        (status = 200, description = "Alerts, oldest first, and the sinks' progress", body = AlertsReply),
        (status = 400, description = doc::BAD_QUERY, body = ErrorBody),
        (status = 401, description = doc::UNAUTHORIZED, body = ErrorBody),
        (status = 503, description = doc::UNAVAILABLE_READ, body = ErrorBody),
    )
)]
async fn list_alerts(
    State(app): State<AppState>,
    _: Caller,
    Query(query): Query<AlertQuery>,
    Query(read): Query<ReadParams>,
) -> ApiResult<Json<AlertsReply>> {
    let limit = query.limit.unwrap_or(100);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(ApiError::bad_field(
            "limit",
            format!("{limit} is not within 1..={MAX_LIMIT}"),
        ));
    }
    let counters = app.cluster.alerting().sinks();
    let lost_here = app.cluster.alerting().lost();
    let mut reply = app
        .cluster
        .read(read.consistency, |state| {
            reply(state, &query, limit, &counters)
        })
        .await?;
    reply.lost_here = lost_here;
    Ok(Json(reply))
}

fn reply(
    state: &ClusterState,
    query: &AlertQuery,
    limit: usize,
    counters: &BTreeMap<String, SinkCounters>,
) -> AlertsReply {
    let log = &state.alerts;
    let matches = |alert: &&Alert| query.kind.is_none_or(|kind| alert.kind == kind);
    let mut alerts: Vec<&Alert> = match query.after {
        Some(after) => log
            .records
            .range(after + 1..)
            .map(|(_, a)| a)
            .filter(matches)
            .take(limit)
            .collect(),
        None => log
            .records
            .values()
            .rev()
            .filter(matches)
            .take(limit)
            .collect(),
    };
    alerts.sort_by_key(|a| a.seq);
    let through = |sink: &str| log.cursors.get(sink).map_or(0, |c| c.through);
    let entries = alerts
        .into_iter()
        .map(|alert| AlertEntry {
            delivery: state
                .sinks
                .values()
                .map(|sink| {
                    let delivery = if !route::wants(sink, alert) {
                        DeliveryState::NotRouted
                    } else if alert.seq <= through(&sink.name) {
                        DeliveryState::Delivered
                    } else {
                        DeliveryState::Pending
                    };
                    (sink.name.clone(), delivery)
                })
                .collect(),
            alert: alert.clone(),
        })
        .collect();
    let sinks = state
        .sinks
        .values()
        .map(|sink| {
            let cursor = log.cursors.get(&sink.name).copied().unwrap_or_default();
            SinkProgress {
                name: sink.name.clone(),
                delivered_through: cursor.through,
                progress_at_ms: cursor.at_ms,
                pending: log
                    .records
                    .range(cursor.through + 1..)
                    .filter(|(_, a)| route::wants(sink, a))
                    .count(),
                failing: log.sinks_failing.contains(&sink.name),
                counters: counters.get(&sink.name).cloned().unwrap_or_default(),
            }
        })
        .collect();
    AlertsReply {
        last_seq: log.last_seq(),
        dropped: log.dropped,
        lost_here: 0,
        alerts: entries,
        sinks,
    }
}
