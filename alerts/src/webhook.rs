//! Webhooks, signed as the Standard Webhooks convention has it: headers `webhook-id`
//! (the notification's idempotency key, the same on every retry), `webhook-timestamp`
//! (Unix seconds of the attempt) and `webhook-signature` (`v1,` and the base64 HMAC-SHA256
//! of `id.timestamp.body` under the shared secret). A 2xx is delivered; a 429 or 5xx, or
//! no answer, is retried; any other 4xx is a permanent failure.

use crate::delivery::{DeliveryError, Notification, Notifier};
use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use std::time::Duration;

/// Posts notifications as JSON to one URL.
pub struct WebhookNotifier {
    url: String,
    secret: Vec<u8>,
    agent: ureq::Agent,
    /// Unix seconds now (the attempt's timestamp; a test passes a fixed one).
    clock: fn() -> i64,
}

/// The current Unix time, for [`WebhookNotifier::new`].
pub fn unix_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |since| since.as_secs() as i64)
}

impl WebhookNotifier {
    /// `secret` as Standard Webhooks gives it: `whsec_` and base64 (or plain base64).
    pub fn new(url: &str, secret: &str, timeout: Duration, clock: fn() -> i64) -> Result<WebhookNotifier, String> {
        let encoded = secret.strip_prefix("whsec_").unwrap_or(secret);
        let secret = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .map_err(|error| format!("the webhook secret is not base64: {error}"))?;
        let agent: ureq::Agent =
            ureq::Agent::config_builder().http_status_as_error(false).timeout_global(Some(timeout)).build().into();
        Ok(WebhookNotifier { url: url.to_string(), secret, agent, clock })
    }
}

/// The `webhook-signature` value for one attempt.
pub fn signature(secret: &[u8], id: &str, timestamp: i64, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
    format!("v1,{}", base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes()))
}

/// The JSON body: the digest's opaque references, changes and links, nothing more.
pub fn payload(notification: &Notification) -> String {
    let items: Vec<String> = notification
        .items
        .iter()
        .map(|(reference, change, link)| {
            format!(
                "{{\"reference\":{},\"change\":\"{change}\",\"link\":{}}}",
                json_string(reference),
                json_string(link)
            )
        })
        .collect();
    format!(
        "{{\"type\":\"wholechild.alert_digest\",\"recipient\":{},\"items\":[{}]}}",
        json_string(&notification.address),
        items.join(",")
    )
}

fn json_string(text: &str) -> String {
    serde_json::to_string(text).expect("a string serializes")
}

impl Notifier for WebhookNotifier {
    fn notify(&self, notification: &Notification) -> Result<(), DeliveryError> {
        let body = payload(notification);
        let timestamp = (self.clock)();
        let id = &notification.idempotency_key;
        let response = self
            .agent
            .post(&self.url)
            .header("content-type", "application/json")
            .header("webhook-id", id)
            .header("webhook-timestamp", &timestamp.to_string())
            .header("webhook-signature", &signature(&self.secret, id, timestamp, &body))
            .send(&body)
            .map_err(|error| DeliveryError::retryable(format!("posting the webhook: {error}")))?;
        match response.status().as_u16() {
            200..=299 => Ok(()),
            status @ (429 | 500..=599) => Err(DeliveryError::retryable(format!("the webhook answered {status}"))),
            status => Err(DeliveryError::permanent(format!("the webhook answered {status}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_follows_standard_webhooks() {
        // The example of the Standard Webhooks specification's reference libraries.
        let secret = base64::engine::general_purpose::STANDARD.decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = r#"{"test": 2432232314}"#;
        assert_eq!(
            signature(&secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn the_payload_carries_references_and_links_only() {
        let notification = Notification {
            address: String::from("c1@district.example"),
            idempotency_key: String::from("k"),
            subject: String::new(),
            body: String::new(),
            items: vec![(String::from("r-1"), "new", String::from("https://d/alerts/r-1"))],
        };
        assert_eq!(
            payload(&notification),
            r#"{"type":"wholechild.alert_digest","recipient":"c1@district.example","items":[{"reference":"r-1","change":"new","link":"https://d/alerts/r-1"}]}"#
        );
    }
}
