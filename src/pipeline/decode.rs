//! Decode: Kafka payload bytes → the alert object inside them.
//!
//! Three shapes are accepted (shippers wrap Wazuh alerts differently):
//! 1. the raw alert object (any object with `rule`, `agent`, `decoder`, `location` or `full_log`),
//! 2. an alert nested under one of the configured keys (Filebeat `json`, Logstash targets),
//! 3. an alert held as a JSON string in `message` (Filebeat without JSON decoding).
//!
//! Anything else is a per-message [`DecodeError`] with a reason; never a panic.

use simd_json::{Node, StaticNode};

use super::extract::span;

/// A per-message failure: the message goes to the dead-letter topic with this reason.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum DecodeError {
    #[error("empty message")]
    Empty,
    #[error("message of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge { len: usize, max: usize },
    #[error("invalid json: {0}")]
    InvalidJson(String),
    #[error("top-level json value is {0}, not an object")]
    NotAnObject(&'static str),
    #[error("object is not a wazuh alert: no rule/agent/decoder/location/full_log key, no alert under {nested_keys}, no alert json in message")]
    NotAnAlert { nested_keys: String },
    #[error("message field holds invalid alert json: {0}")]
    InvalidMessage(String),
}

impl DecodeError {
    /// Stable code for metrics labels and the DLQ `error_code` header.
    pub fn code(&self) -> &'static str {
        match self {
            DecodeError::Empty => "empty",
            DecodeError::TooLarge { .. } => "too_large",
            DecodeError::InvalidJson(_) => "invalid_json",
            DecodeError::NotAnObject(_) => "not_an_object",
            DecodeError::NotAnAlert { .. } => "not_an_alert",
            DecodeError::InvalidMessage(_) => "invalid_message",
        }
    }
}

/// Where the alert object is, within a parsed payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertLocation<'t> {
    /// The payload itself is the alert.
    Raw,
    /// The alert is the object at tape index `idx`, under top-level key `key`.
    Nested { key: &'t str, idx: usize },
    /// The alert is JSON text in the top-level `message` string.
    MessageString(&'t str),
}

/// Keys whose presence marks an object as a Wazuh alert (or archive event).
const ALERT_KEYS: [&str; 5] = ["rule", "agent", "decoder", "location", "full_log"];

/// Finds the alert inside a parsed payload. `nested_keys` are tried in order.
pub fn locate_alert<'t>(
    nodes: &[Node<'t>],
    nested_keys: &[String],
) -> Result<AlertLocation<'t>, DecodeError> {
    let Some(first) = nodes.first() else {
        return Err(DecodeError::Empty);
    };
    let len = match first {
        Node::Object { len, .. } => *len,
        Node::Array { .. } => return Err(DecodeError::NotAnObject("an array")),
        Node::String(_) => return Err(DecodeError::NotAnObject("a string")),
        Node::Static(StaticNode::Null) => return Err(DecodeError::NotAnObject("null")),
        Node::Static(StaticNode::Bool(_)) => return Err(DecodeError::NotAnObject("a boolean")),
        Node::Static(_) => return Err(DecodeError::NotAnObject("a number")),
    };
    let mut nested: Option<(usize, &'t str, usize)> = None; // (rank in nested_keys, key, idx)
    let mut message: Option<&'t str> = None;
    let mut idx = 1;
    for _ in 0..len {
        let Some(Node::String(key)) = nodes.get(idx) else {
            break;
        };
        let value_idx = idx + 1;
        if ALERT_KEYS.contains(key) {
            return Ok(AlertLocation::Raw);
        }
        if let Some(Node::Object { .. }) = nodes.get(value_idx) {
            if let Some(rank) = nested_keys.iter().position(|nested_key| nested_key == key) {
                if nested.is_none_or(|(best, _, _)| rank < best) {
                    nested = Some((rank, key, value_idx));
                }
            }
        }
        if *key == "message" {
            if let Some(Node::String(text)) = nodes.get(value_idx) {
                if text.trim_start().starts_with('{') {
                    message = Some(text);
                }
            }
        }
        idx = value_idx + span(nodes, value_idx);
    }
    if let Some((_, key, idx)) = nested {
        return Ok(AlertLocation::Nested { key, idx });
    }
    if let Some(text) = message {
        return Ok(AlertLocation::MessageString(text));
    }
    Err(DecodeError::NotAnAlert {
        nested_keys: format!("{nested_keys:?}"),
    })
}

/// Writes the JSON value at tape index `idx` as compact JSON (used for nested alerts, whose
/// original bytes are not a contiguous copy we can splice into).
pub fn write_json(nodes: &[Node<'_>], idx: usize, out: &mut Vec<u8>) {
    match nodes.get(idx) {
        Some(Node::Object { len, .. }) => {
            out.push(b'{');
            let mut child = idx + 1;
            for n in 0..*len {
                if n > 0 {
                    out.push(b',');
                }
                write_json(nodes, child, out);
                out.push(b':');
                write_json(nodes, child + 1, out);
                child = child + 1 + span(nodes, child + 1);
            }
            out.push(b'}');
        }
        Some(Node::Array { len, .. }) => {
            out.push(b'[');
            let mut child = idx + 1;
            for n in 0..*len {
                if n > 0 {
                    out.push(b',');
                }
                write_json(nodes, child, out);
                child += span(nodes, child);
            }
            out.push(b']');
        }
        Some(Node::String(text)) => write_json_str(text, out),
        Some(Node::Static(value)) => match value {
            StaticNode::Null => out.extend_from_slice(b"null"),
            StaticNode::Bool(true) => out.extend_from_slice(b"true"),
            StaticNode::Bool(false) => out.extend_from_slice(b"false"),
            StaticNode::I64(n) => out.extend_from_slice(n.to_string().as_bytes()),
            StaticNode::U64(n) => out.extend_from_slice(n.to_string().as_bytes()),
            StaticNode::F64(n) => {
                let text = serde_json::to_string(n).unwrap_or_else(|_| "null".to_string());
                out.extend_from_slice(text.as_bytes())
            }
            #[allow(unreachable_patterns)]
            _ => out.extend_from_slice(b"null"),
        },
        None => out.extend_from_slice(b"null"),
    }
}

/// Appends `text` as a JSON string literal.
pub fn write_json_str(text: &str, out: &mut Vec<u8>) {
    // serde_json's escaper is correct and fast; writing to a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, text);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn locate(json: &str) -> Result<String, DecodeError> {
        let mut bytes = json.as_bytes().to_vec();
        let tape = simd_json::to_tape(&mut bytes)
            .map_err(|err| DecodeError::InvalidJson(err.to_string()))?;
        let keys = vec!["json".to_string(), "alert".to_string()];
        locate_alert(&tape.0, &keys).map(|loc| match loc {
            AlertLocation::Raw => "raw".to_string(),
            AlertLocation::Nested { key, .. } => format!("nested:{key}"),
            AlertLocation::MessageString(text) => format!("message:{text}"),
        })
    }

    #[test]
    fn shapes() {
        assert_eq!(
            locate(r#"{"rule":{"level":3},"agent":{"id":"001"}}"#).unwrap(),
            "raw"
        );
        assert_eq!(
            locate(r#"{"@timestamp":"x","json":{"rule":{}}}"#).unwrap(),
            "nested:json"
        );
        assert_eq!(
            locate(r#"{"alert":{"rule":{}},"json":{"rule":{}}}"#).unwrap(),
            "nested:json"
        );
        assert_eq!(
            locate(r#"{"message":" {\"rule\":{}}","host":{}}"#).unwrap(),
            r#"message: {"rule":{}}"#
        );
        assert_eq!(
            locate(r#"[1,2]"#),
            Err(DecodeError::NotAnObject("an array"))
        );
        assert_eq!(locate(r#""x""#), Err(DecodeError::NotAnObject("a string")));
        assert_eq!(locate(r#"42"#), Err(DecodeError::NotAnObject("a number")));
        assert!(matches!(
            locate(r#"{"message":"plain text"}"#),
            Err(DecodeError::NotAnAlert { .. })
        ));
        assert!(matches!(
            locate(r#"{"a":1"#),
            Err(DecodeError::InvalidJson(_))
        ));
    }

    #[test]
    fn write_json_round_trips() {
        let json =
            r#"{"a":[1,-2,3.5,true,null,"x\"y\\z\n"],"b":{"c":"é"},"d":18446744073709551615}"#;
        let mut bytes = json.as_bytes().to_vec();
        let tape = simd_json::to_tape(&mut bytes).unwrap();
        let mut out = Vec::new();
        write_json(&tape.0, 0, &mut out);
        let left: serde_json::Value = serde_json::from_str(json).unwrap();
        let right: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(left, right);
    }
}
