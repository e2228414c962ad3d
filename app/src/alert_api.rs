//! The alerts API of `wholechild run` (`[alerts.api]`): a recipient acknowledges an alert
//! (it is no longer repeated nor escalated) or snoozes it (not repeated before a time),
//! through the dashboard or another district system acting for them.
//!
//! Requests carry `Authorization: Bearer TOKEN` (the token from `token_file` or
//! `token_env`; the caller authenticates its staff), name the alert by its opaque
//! reference and the staff member acting, who must be the one the alert was told to.
//! Each request is handed to the run loop, which owns the pipeline and the store: the
//! action is logged in the store before the pipeline acts on it, and the answer comes
//! back when it has (docs/alerts-api.md).

use alerts::LocalTime;
use anyhow::Result;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::time::Duration;

/// What a recipient does to an alert.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Acknowledge,
    Snooze { until: LocalTime },
}

/// How the run loop answered a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    Done,
    /// No open alert of that reference was told to that staff member.
    NotFound,
    Failed(String),
}

/// One request for the run loop.
pub struct Request {
    pub reference: String,
    pub staff: String,
    pub action: Action,
    pub reply: tokio::sync::oneshot::Sender<Answer>,
}

#[derive(Clone)]
struct ApiState {
    token: String,
    requests: SyncSender<Request>,
}

/// Serves the API on `address`; the requests arrive on the returned receiver, for the
/// run loop to answer.
pub fn serve(address: SocketAddr, token: String) -> Result<(SocketAddr, Receiver<Request>)> {
    // A bounded queue: a flood of requests waits here instead of growing without limit.
    let (requests, received) = sync_channel(1024);
    let app = Router::new()
        .route("/api/alerts/{reference}/acknowledge", post(acknowledge))
        .route("/api/alerts/{reference}/snooze", post(snooze))
        .with_state(ApiState { token, requests });
    Ok((crate::http::serve("alerts API", address, app)?, received))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AcknowledgeBody {
    staff: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SnoozeBody {
    staff: String,
    /// District local time, `YYYY-MM-DDTHH:MM`.
    until: String,
}

type Reply = (StatusCode, Json<Value>);

fn refusal(status: StatusCode, message: &str) -> Reply {
    (status, Json(json!({ "error": message })))
}

type Body<B> = Result<Json<B>, axum::extract::rejection::JsonRejection>;

/// The request's body, once its token is checked.
fn accept<B>(state: &ApiState, headers: &HeaderMap, body: Body<B>) -> Result<B, Reply> {
    authorize(state, headers)?;
    body.map(|Json(body)| body).map_err(|rejection| refusal(StatusCode::BAD_REQUEST, &rejection.body_text()))
}

async fn acknowledge(
    State(state): State<ApiState>,
    Path(reference): Path<String>,
    headers: HeaderMap,
    body: Body<AcknowledgeBody>,
) -> Reply {
    match accept(&state, &headers, body) {
        Ok(body) => hand_over(&state, reference, body.staff, Action::Acknowledge).await,
        Err(refused) => refused,
    }
}

async fn snooze(
    State(state): State<ApiState>,
    Path(reference): Path<String>,
    headers: HeaderMap,
    body: Body<SnoozeBody>,
) -> Reply {
    let body = match accept(&state, &headers, body) {
        Ok(body) => body,
        Err(refused) => return refused,
    };
    let Ok(until) = chrono::NaiveDateTime::parse_from_str(&body.until, "%Y-%m-%dT%H:%M") else {
        return refusal(StatusCode::BAD_REQUEST, "until: expected district local time as YYYY-MM-DDTHH:MM");
    };
    let until = LocalTime(until.and_utc().timestamp());
    if until <= crate::live_alerts::local_now() {
        return refusal(StatusCode::BAD_REQUEST, "until: must be in the future");
    }
    hand_over(&state, reference, body.staff, Action::Snooze { until }).await
}

/// Checks the bearer token, comparing every byte whatever the first mismatch.
fn authorize(state: &ApiState, headers: &HeaderMap) -> Result<(), Reply> {
    let presented = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .unwrap_or_default();
    let same = presented.len() == state.token.len()
        && presented.bytes().zip(state.token.bytes()).fold(0u8, |diff, (a, b)| diff | (a ^ b)) == 0;
    match same {
        true => Ok(()),
        false => Err(refusal(StatusCode::UNAUTHORIZED, "a valid bearer token is required")),
    }
}

async fn hand_over(state: &ApiState, reference: String, staff: String, action: Action) -> Reply {
    let (reply, answer) = tokio::sync::oneshot::channel();
    let request = Request { reference: reference.clone(), staff: staff.clone(), action, reply };
    if state.requests.try_send(request).is_err() {
        return refusal(StatusCode::SERVICE_UNAVAILABLE, "the engine is busy or stopping; try again");
    }
    match tokio::time::timeout(Duration::from_secs(10), answer).await {
        Ok(Ok(Answer::Done)) => {
            let action = match action {
                Action::Acknowledge => json!("acknowledged"),
                Action::Snooze { .. } => json!("snoozed"),
            };
            (StatusCode::OK, Json(json!({ "reference": reference, "staff": staff, "action": action })))
        }
        Ok(Ok(Answer::NotFound)) => {
            refusal(StatusCode::NOT_FOUND, "no open alert of this reference was sent to this staff member")
        }
        Ok(Ok(Answer::Failed(error))) => refusal(StatusCode::INTERNAL_SERVER_ERROR, &error),
        Ok(Err(_)) | Err(_) => refusal(StatusCode::SERVICE_UNAVAILABLE, "the engine did not answer; try again"),
    }
}
