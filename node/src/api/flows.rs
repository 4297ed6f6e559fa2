//! Flows and topology: `GET /v1/flows` (every node's flow records, merged),
//! `GET /v1/flows/stream` (this node's records as JSON lines, live),
//! `GET /v1/topology` (the graph of who talks to whom, as JSON or DOT) and
//! `GET /v1/rules/hits` (how often each rule decided, cluster-wide).

use axum::body::Body;
use axum::extract::{Query, RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::stream;
use serde::Deserialize;
use stockade_policy::{
    to_dot, topology, FlowFilter, FlowRecord, Level, NodeId, RuleId, RuleRef, Topology,
};
use tokio::sync::broadcast::error::RecvError;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::auth::Caller;
use crate::api::error::{known_parameters, ApiError, ApiResult, ErrorBody};
use crate::api::openapi::doc;
use crate::api::AppState;
use crate::flows::hits::{local_rule_hits, HitCounter, RuleHits};
use crate::flows::query::{
    cluster_flows, fan_out, ClusterFlows, FanOut, MissingNode, NodeQuery, MAX_QUERY_LIMIT,
};

/// The routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_flows))
        .routes(routes!(stream_flows))
        .routes(routes!(get_topology))
        .routes(routes!(rule_hits))
}

/// The filter's parameters (see [`FlowFilter`]).
const FILTER_PARAMETERS: &[&str] = &[
    "node",
    "zone",
    "app",
    "service",
    "identity",
    "ip",
    "port",
    "protocol",
    "action",
    "rule",
    "direction",
    "since_ms",
    "until_ms",
    "unknown",
];

/// How `GET /v1/flows` answers.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FlowParams {
    /// At most this many records, newest first (default 1000, at most
    /// 10 000).
    limit: Option<usize>,
    /// `json` (default: one object with the records and which nodes
    /// answered) or `jsonl` (one record per line, for a SIEM; the nodes
    /// that did not answer are in the `Stockade-Missing-Nodes` header).
    format: Option<String>,
}

/// Flow records of every node (or of the node `node` names) that match the
/// filter, newest first. Nodes that do not answer within 3 s are listed in
/// `missing`: the result is then partial.
#[utoipa::path(
    get,
    path = "/v1/flows",
    tag = "flows",
    params(FlowFilter, FlowParams),
    responses(
        (status = 200, description = "The records and the nodes they come from", body = ClusterFlows),
        (status = 400, description = doc::BAD_QUERY, content(
            (ErrorBody = "application/json"),
            (String = "text/plain"),
        )),
        (status = 401, description = doc::UNAUTHORIZED, body = ErrorBody),
    )
)]
async fn list_flows(
    State(app): State<AppState>,
    _: Caller,
    Query(filter): Query<FlowFilter>,
    Query(params): Query<FlowParams>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    known_parameters(
        raw.as_deref(),
        &with(FILTER_PARAMETERS, &["limit", "format"]),
    )?;
    let limit = params.limit.unwrap_or(1000);
    if limit == 0 || limit > MAX_QUERY_LIMIT {
        return Err(ApiError::bad_field(
            "limit",
            format!("{limit} is not within 1..={MAX_QUERY_LIMIT}"),
        ));
    }
    let flows = cluster_flows(&app.cluster, &filter, limit).await;
    match params.format.as_deref() {
        None | Some("json") => Ok(Json(flows).into_response()),
        Some("jsonl") => Ok(json_lines(flows)),
        Some(other) => Err(ApiError::bad_field(
            "format",
            format!("`{other}` is neither `json` nor `jsonl`"),
        )),
    }
}

fn with(a: &[&'static str], b: &[&'static str]) -> Vec<&'static str> {
    a.iter().chain(b).copied().collect()
}

fn json_lines(flows: ClusterFlows) -> Response {
    let mut body = String::new();
    for record in &flows.records {
        body.push_str(&line(record));
    }
    let missing = flows
        .missing
        .iter()
        .map(|MissingNode { node, .. }| node.to_string())
        .collect::<Vec<_>>()
        .join(",");
    (
        [
            (header::CONTENT_TYPE, "application/x-ndjson".to_owned()),
            (
                header::HeaderName::from_static("stockade-missing-nodes"),
                missing,
            ),
        ],
        body,
    )
        .into_response()
}

fn line(record: &FlowRecord) -> String {
    // A record always serialises: it holds no map with non-string keys.
    let mut text = serde_json::to_string(record).unwrap_or_default();
    text.push('\n');
    text
}

/// This node's flow records as they are written, one JSON object per line,
/// for as long as the client reads (a SIEM's collector). A client too slow
/// to keep up gets a line `{"lost": N}` saying how many records it missed.
#[utoipa::path(
    get,
    path = "/v1/flows/stream",
    tag = "flows",
    params(FlowFilter),
    responses(
        (status = 200, description = "Records as JSON lines, until the client disconnects", body = FlowRecord, content_type = "application/x-ndjson"),
        (status = 400, description = doc::BAD_QUERY, content(
            (ErrorBody = "application/json"),
            (String = "text/plain"),
        )),
        (status = 401, description = doc::UNAUTHORIZED, body = ErrorBody),
        (status = 404, description = "This node runs no dataplane: it records no flows", body = ErrorBody),
    )
)]
async fn stream_flows(
    State(app): State<AppState>,
    _: Caller,
    Query(filter): Query<FlowFilter>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    known_parameters(raw.as_deref(), FILTER_PARAMETERS)?;
    let Some(store) = app.cluster.flows() else {
        return Err(ApiError::not_found(
            "this node runs no dataplane: it records no flows",
        ));
    };
    let feed = store.subscribe();
    let lines = stream::unfold((feed, filter), |(mut feed, filter)| async move {
        loop {
            match feed.recv().await {
                Ok(record) if filter.matches(&record) => {
                    return Some((Ok::<_, std::io::Error>(line(&record)), (feed, filter)))
                }
                Ok(_) => continue,
                Err(RecvError::Lagged(lost)) => {
                    return Some((Ok(format!("{{\"lost\":{lost}}}\n")), (feed, filter)))
                }
                Err(RecvError::Closed) => return None,
            }
        }
    });
    Ok((
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(lines),
    )
        .into_response())
}

/// How `GET /v1/topology` answers.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TopologyParams {
    /// `zone`, `app` (default), `service` or `process`.
    #[param(value_type = Option<String>)]
    level: Option<Level>,
    /// `json` (default) or `dot` (Graphviz).
    format: Option<String>,
}

/// The topology and the nodes whose flows it is drawn from.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct TopologyReply {
    /// The graph.
    #[serde(flatten)]
    pub topology: Topology,
    /// Nodes whose flows are missing from it.
    pub missing: Vec<MissingNode>,
}

/// The cluster-wide graph of observed flows at one level, from the newest
/// flow records of every node that match the filter.
#[utoipa::path(
    get,
    path = "/v1/topology",
    tag = "flows",
    params(TopologyParams, FlowFilter),
    responses(
        (status = 200, description = "The graph (JSON), or Graphviz DOT with `format=dot`", body = TopologyReply),
        (status = 400, description = doc::BAD_QUERY, content(
            (ErrorBody = "application/json"),
            (String = "text/plain"),
        )),
        (status = 401, description = doc::UNAUTHORIZED, body = ErrorBody),
    )
)]
async fn get_topology(
    State(app): State<AppState>,
    _: Caller,
    Query(params): Query<TopologyParams>,
    Query(filter): Query<FlowFilter>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    known_parameters(
        raw.as_deref(),
        &with(FILTER_PARAMETERS, &["level", "format"]),
    )?;
    let flows = cluster_flows(&app.cluster, &filter, MAX_QUERY_LIMIT).await;
    let graph = topology(&flows.records, params.level.unwrap_or(Level::App));
    match params.format.as_deref() {
        None | Some("json") => Ok(Json(TopologyReply {
            topology: graph,
            missing: flows.missing,
        })
        .into_response()),
        Some("dot") => Ok((
            [(header::CONTENT_TYPE, "text/vnd.graphviz")],
            to_dot(&graph),
        )
            .into_response()),
        Some(other) => Err(ApiError::bad_field(
            "format",
            format!("`{other}` is neither `json` nor `dot`"),
        )),
    }
}

/// Which records `GET /v1/rules/hits` counts.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HitsParams {
    /// Only records last seen at or after this time (ms since the Unix
    /// epoch); every record the flow logs hold without it.
    since_ms: Option<u64>,
}

/// The reply of `GET /v1/rules/hits`.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct RuleHitsReply {
    /// Every built-in reason, then every rule of the policy by number
    /// (with zeros when it never decided), then rules the flow logs still
    /// name but the policy no longer has.
    pub hits: Vec<RuleHits>,
    /// The nodes whose flow logs are counted.
    pub answered: Vec<NodeId>,
    /// The nodes whose are not: the counts are then too low.
    pub missing: Vec<MissingNode>,
}

/// How often each rule, and each built-in reason, decided: the flow
/// records of every node counted by deciding rule. Nodes that do not
/// answer within 3 s are listed in `missing`.
#[utoipa::path(
    get,
    path = "/v1/rules/hits",
    tag = "rules",
    params(HitsParams),
    responses(
        (status = 200, description = "The counts by rule and the nodes they come from", body = RuleHitsReply),
        (status = 400, description = doc::BAD_QUERY, content(
            (ErrorBody = "application/json"),
            (String = "text/plain"),
        )),
        (status = 401, description = doc::UNAUTHORIZED, body = ErrorBody),
    )
)]
async fn rule_hits(
    State(app): State<AppState>,
    _: Caller,
    Query(params): Query<HitsParams>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<RuleHitsReply>> {
    known_parameters(raw.as_deref(), &["since_ms"])?;
    let since_ms = params.since_ms;
    let FanOut { answers, missing } = fan_out(
        &app.cluster,
        None,
        NodeQuery::RuleHits { since_ms },
        move |control| local_rule_hits(control, since_ms),
    )
    .await;
    let mut counter = HitCounter::default();
    let built_in = (0..RuleId::FIRST_ALLOCATED).filter_map(RuleRef::from_raw);
    let rules: Vec<RuleRef> = app
        .cluster
        .with_state(|state| state.rules.keys().map(|id| RuleRef::Rule(*id)).collect());
    counter.include(built_in.chain(rules));
    let mut answered = Vec::new();
    for (node, hits) in answers {
        counter.merge(hits);
        answered.push(node);
    }
    Ok(Json(RuleHitsReply {
        hits: counter.into_vec(),
        answered,
        missing,
    }))
}
