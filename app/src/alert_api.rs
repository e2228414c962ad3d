//! The alerts API of `wholechild run` (`[alerts.api]`): a recipient acknowledges an alert
//! (it is no longer repeated nor escalated) or snoozes it (not repeated before a time),
//! through the dashboard or another district system acting for them; an operator
//! silences a rule or a recipient for a while (a planned closure, a data fix in progress).
//!
//! Requests carry `Authorization: Bearer TOKEN` (the token from `token_file` or
//! `token_env`; the caller authenticates its staff). An acknowledgement or snooze names
//! the alert by its opaque reference and the staff member acting, who must be the one the
//! alert was told to. Each request is handed to the run loop, which owns the pipeline and
//! the store: the change is logged in the store before the pipeline acts on it, and the
//! answer comes back when it has (docs/alerts-api.md).

use alerts::LocalTime;
use anyhow::Result;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{delete, post};
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

/// A silence asked for: changes of matching alerts are not notified from `from` to `until`
/// (`None` matches every rule, or every recipient).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewSilence {
    pub rule: Option<String>,
    pub recipient: Option<String>,
    pub from: LocalTime,
    pub until: LocalTime,
    pub created_by: String,
    pub comment: String,
}

/// What the run loop is asked to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    Act { reference: String, staff: String, action: Action },
    Silence(NewSilence),
    ExpireSilence { id: String },
    ListSilences,
}

/// How the run loop answered a request.
#[derive(Clone, Debug, PartialEq)]
pub enum Answer {
    Done(Value),
    /// Nothing the request names (why, for the caller).
    NotFound(&'static str),
    Invalid(String),
    Failed(String),
}

/// One request for the run loop.
pub struct Request {
    pub command: Command,
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
        .route("/api/silences", post(silence).get(list_silences))
        .route("/api/silences/{id}", delete(expire_silence))
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SilenceBody {
    rule: Option<String>,
    recipient: Option<String>,
    /// District local time, `YYYY-MM-DDTHH:MM`; default now.
    from: Option<String>,
    until: String,
    created_by: String,
    comment: String,
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
    let command = accept(&state, &headers, body).map(|body| Command::Act {
        reference,
        staff: body.staff,
        action: Action::Acknowledge,
    });
    submit(&state, command).await
}

async fn snooze(
    State(state): State<ApiState>,
    Path(reference): Path<String>,
    headers: HeaderMap,
    body: Body<SnoozeBody>,
) -> Reply {
    let command = accept(&state, &headers, body).and_then(|body| {
        let until = future_time("until", &body.until)?;
        Ok(Command::Act { reference, staff: body.staff, action: Action::Snooze { until } })
    });
    submit(&state, command).await
}

async fn silence(State(state): State<ApiState>, headers: HeaderMap, body: Body<SilenceBody>) -> Reply {
    let command = accept(&state, &headers, body).and_then(silence_command);
    submit(&state, command).await
}

fn silence_command(body: SilenceBody) -> Result<Command, Reply> {
    let until = future_time("until", &body.until)?;
    let from = match body.from.as_deref() {
        None => crate::live_alerts::local_now(),
        Some(from) => local_time("from", from)?,
    };
    if from >= until {
        return Err(refusal(StatusCode::BAD_REQUEST, "from: must be before until"));
    }
    if body.created_by.trim().is_empty() || body.comment.trim().is_empty() {
        return Err(refusal(StatusCode::BAD_REQUEST, "created_by and comment: say who silences and why"));
    }
    Ok(Command::Silence(NewSilence {
        rule: body.rule,
        recipient: body.recipient,
        from,
        until,
        created_by: body.created_by,
        comment: body.comment,
    }))
}

/// Hands a well-formed request to the run loop; a refused one is answered at once.
async fn submit(state: &ApiState, command: Result<Command, Reply>) -> Reply {
    match command {
        Ok(command) => hand_over(state, command).await,
        Err(refused) => refused,
    }
}

async fn list_silences(State(state): State<ApiState>, headers: HeaderMap) -> Reply {
    submit(&state, authorize(&state, &headers).map(|()| Command::ListSilences)).await
}

async fn expire_silence(State(state): State<ApiState>, Path(id): Path<String>, headers: HeaderMap) -> Reply {
    submit(&state, authorize(&state, &headers).map(|()| Command::ExpireSilence { id })).await
}

/// District local time, `YYYY-MM-DDTHH:MM`.
fn local_time(field: &str, text: &str) -> Result<LocalTime, Reply> {
    match chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M") {
        Ok(time) => Ok(LocalTime(time.and_utc().timestamp())),
        Err(_) => {
            Err(refusal(StatusCode::BAD_REQUEST, &format!("{field}: expected district local time as YYYY-MM-DDTHH:MM")))
        }
    }
}

fn future_time(field: &str, text: &str) -> Result<LocalTime, Reply> {
    let time = local_time(field, text)?;
    match time > crate::live_alerts::local_now() {
        true => Ok(time),
        false => Err(refusal(StatusCode::BAD_REQUEST, &format!("{field}: must be in the future"))),
    }
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

async fn hand_over(state: &ApiState, command: Command) -> Reply {
    let (reply, answer) = tokio::sync::oneshot::channel();
    let created = matches!(command, Command::Silence(_));
    if state.requests.try_send(Request { command, reply }).is_err() {
        return refusal(StatusCode::SERVICE_UNAVAILABLE, "the engine is busy or stopping; try again");
    }
    match tokio::time::timeout(Duration::from_secs(10), answer).await {
        Ok(Ok(Answer::Done(value))) => match created {
            true => (StatusCode::CREATED, Json(value)),
            false => (StatusCode::OK, Json(value)),
        },
        Ok(Ok(Answer::NotFound(why))) => refusal(StatusCode::NOT_FOUND, why),
        Ok(Ok(Answer::Invalid(why))) => refusal(StatusCode::BAD_REQUEST, &why),
        Ok(Ok(Answer::Failed(error))) => refusal(StatusCode::INTERNAL_SERVER_ERROR, &error),
        Ok(Err(_)) | Err(_) => refusal(StatusCode::SERVICE_UNAVAILABLE, "the engine did not answer; try again"),
    }
}
