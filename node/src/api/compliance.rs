//! The HIPAA / NIST CSF report: `GET /v1/compliance/hipaa` makes it from
//! the live cluster, as JSON, HTML or PDF; `POST
//! /v1/compliance/hipaa/verify` checks a report made earlier.

use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use stockade_compliance::{HipaaReport, ReportError, Summary};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Caller;
use super::error::{ApiError, ApiResult, ErrorBody};
use super::openapi::doc;
use super::AppState;
use crate::cluster::Consistency;
use crate::compliance::{make_report, DEFAULT_WINDOW, MAX_WINDOW};

/// The largest report `verify` takes (a PDF of a large cluster included).
const MAX_REPORT_BYTES: usize = 8 * 1024 * 1024;

/// The routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(hipaa_report)).merge(
        OpenApiRouter::new()
            .routes(routes!(verify_report))
            .layer(DefaultBodyLimit::max(MAX_REPORT_BYTES)),
    )
}

/// How the report is written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ReportFormat {
    /// The report as JSON (the default).
    #[default]
    Json,
    /// One self-contained HTML page.
    Html,
    /// A PDF document.
    Pdf,
}

/// The query of `GET /v1/compliance/hipaa`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ReportParams {
    /// `json` (default), `html` or `pdf`.
    #[serde(default)]
    #[param(inline)]
    pub format: ReportFormat,
    /// How far back the flow logs are read, e.g. `24h` (the default),
    /// `7d`; at most `90d`.
    #[serde(default)]
    pub window: Option<String>,
    /// `local` (default) or `linearizable`: whether the state the report
    /// judges must reflect every write committed before it began.
    #[serde(default)]
    #[param(inline, value_type = super::openapi::ConsistencySchema)]
    pub consistency: Consistency,
}

/// The HIPAA Security Rule / NIST CSF report of the live cluster: every
/// subcategory of the crosswalk (ID.AM-2 … DE.DP-4) judged met, partly met
/// or not met, with its HIPAA sections, the evidence behind the judgement
/// and what would close the gap. It is dated, names the cluster and its
/// policy version, and carries a digest and the cluster's signature
/// (check it later with `POST /v1/compliance/hipaa/verify`). Every node is
/// asked for its dataplane and for counts of its flow log.
#[utoipa::path(
    get,
    path = "/v1/compliance/hipaa",
    tag = "compliance",
    params(ReportParams),
    responses(
        (status = 200, description = "The report as JSON (or HTML, or PDF, as `format` asks)", body = Object),
        (status = 400, description = "A query parameter is unknown or invalid (`window` not a duration, or over 90 days)", body = ErrorBody),
        (status = 401, description = doc::UNAUTHORIZED, body = ErrorBody),
        (status = 500, description = "The cluster has no CA to sign with", body = ErrorBody),
        (status = 503, description = doc::UNAVAILABLE_READ, body = ErrorBody),
    )
)]
async fn hipaa_report(
    State(app): State<AppState>,
    _: Caller,
    Query(params): Query<ReportParams>,
) -> ApiResult<Response> {
    let window = match params.window.as_deref() {
        None => DEFAULT_WINDOW,
        Some(text) => parse_window(text)?,
    };
    if params.consistency == Consistency::Linearizable {
        app.cluster.read(Consistency::Linearizable, |_| ()).await?;
    }
    let report = make_report(&app.cluster, window)
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}")))?;
    let file_name = |ext: &str| {
        let stamp: String = report
            .generated_at
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .collect();
        format!("attachment; filename=\"stockade-hipaa-{stamp}.{ext}\"")
    };
    Ok(match params.format {
        ReportFormat::Json => Json(report).into_response(),
        ReportFormat::Html => (
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            report.to_html(),
        )
            .into_response(),
        ReportFormat::Pdf => {
            let disposition = file_name("pdf");
            let pdf = tokio::task::spawn_blocking(move || report.to_pdf())
                .await
                .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
                .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
            (
                [
                    (header::CONTENT_TYPE, "application/pdf".to_owned()),
                    (header::CONTENT_DISPOSITION, disposition),
                ],
                pdf,
            )
                .into_response()
        }
    })
}

/// `window=` as a duration of at least a minute and at most 90 days.
fn parse_window(text: &str) -> Result<Duration, ApiError> {
    let bad = |why: String| ApiError::new(StatusCode::BAD_REQUEST, format!("window: {why}"));
    let window = humantime::parse_duration(text)
        .map_err(|e| bad(format!("`{text}` is not a duration like 24h or 7d: {e}")))?;
    if window < Duration::from_secs(60) || window > MAX_WINDOW {
        return Err(bad(format!("`{text}` is outside 1m..=90d")));
    }
    Ok(window)
}

/// The reply of `POST /v1/compliance/hipaa/verify`.
#[derive(Debug, Serialize, ToSchema)]
pub struct VerifyReply {
    /// Always true: a report that fails is refused with 400.
    pub valid: bool,
    /// The cluster it names.
    pub cluster: String,
    /// When it was made (RFC 3339).
    pub generated_at: String,
    /// The policy version it judged.
    pub policy_version: u64,
    /// Its digest.
    pub digest: String,
    /// Its totals.
    #[schema(value_type = Object)]
    pub summary: Summary,
}

/// Checks a report made earlier by `GET /v1/compliance/hipaa`, in any of
/// its formats: that its contents still match its digest, and that the
/// digest was signed by this cluster.
#[utoipa::path(
    post,
    path = "/v1/compliance/hipaa/verify",
    tag = "compliance",
    request_body(
        content = String,
        content_type = "application/octet-stream",
        description = "The report, as JSON, HTML or PDF"
    ),
    responses(
        (status = 200, description = "The report is unchanged and was made by this cluster", body = VerifyReply),
        (status = 400, description = "Not a report, changed since it was made, or not made by this cluster; `reason` says which", body = ErrorBody),
        (status = 401, description = doc::UNAUTHORIZED, body = ErrorBody),
        (status = 413, description = "Larger than 8 MiB", body = String, content_type = "text/plain"),
    )
)]
async fn verify_report(
    State(app): State<AppState>,
    _: Caller,
    body: axum::body::Bytes,
) -> ApiResult<Json<VerifyReply>> {
    let refused = |e: ReportError| ApiError::new(StatusCode::BAD_REQUEST, e.to_string());
    let report = match body.starts_with(b"%PDF-") {
        true => HipaaReport::parse_pdf(&body),
        false => match std::str::from_utf8(&body) {
            Ok(text) => HipaaReport::parse(text),
            Err(_) => Err(ReportError::NotAReport(
                "neither a PDF nor text (JSON or HTML)".into(),
            )),
        },
    }
    .map_err(refused)?;
    app.cluster
        .with_state(|state| report.verify(state))
        .map_err(refused)?;
    Ok(Json(VerifyReply {
        valid: true,
        cluster: report.cluster,
        generated_at: report.generated_at,
        policy_version: report.policy_version,
        digest: report.digest,
        summary: report.summary,
    }))
}
