//! Engine.IO v4 and Socket.IO v5 (the protocol of socket.io 4.x) text framing.
//!
//! Only what a WebSocket-only client needs: no long-polling payload concatenation and no
//! binary attachments (the signaling protocol is all JSON). Parsing never panics on
//! input from the server; anything unexpected is a [`FrameError`].

use serde_json::Value;

/// An Engine.IO packet: the first character of a WebSocket text frame.
#[derive(Debug, PartialEq)]
pub enum EioPacket<'a> {
    /// `0{"sid":…,"pingInterval":…,…}`: the handshake.
    Open(&'a str),
    /// `1`
    Close,
    /// `2`: the server's heartbeat; the client answers [`EioPacket::Pong`] (`3`).
    Ping,
    /// `3`
    Pong,
    /// `4…`: a Socket.IO packet.
    Message(&'a str),
    /// `5`, `6`: transport upgrade packets, meaningless on a WebSocket-only session.
    Upgrade,
    Noop,
}

/// A Socket.IO packet (default namespace unless `nsp` says otherwise).
#[derive(Debug, PartialEq)]
pub enum SioPacket {
    /// `0{…}`: the server accepted the connection (`{"sid":…}`).
    Connect(Option<Value>),
    /// `1`
    Disconnect,
    /// `2[id]["name", args…]`
    Event {
        id: Option<u64>,
        name: String,
        args: Vec<Value>,
    },
    /// `3<id>[args…]`
    Ack { id: u64, args: Vec<Value> },
    /// `4{"message":…}`: the server refused the connection.
    ConnectError(Value),
}

#[derive(Debug, PartialEq)]
pub enum FrameError {
    Empty,
    /// A packet type this client does not know or does not support (binary events).
    UnknownType(char),
    /// The JSON part did not parse or had the wrong shape.
    BadJson(String),
    /// An ack without an id, or an id that does not fit in u64.
    BadId,
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::Empty => write!(f, "empty frame"),
            FrameError::UnknownType(c) => write!(f, "unknown packet type {c:?}"),
            FrameError::BadJson(e) => write!(f, "bad JSON: {e}"),
            FrameError::BadId => write!(f, "bad ack id"),
        }
    }
}

impl std::error::Error for FrameError {}

pub fn parse_eio(text: &str) -> Result<EioPacket<'_>, FrameError> {
    let mut chars = text.chars();
    let kind = chars.next().ok_or(FrameError::Empty)?;
    let rest = chars.as_str();
    Ok(match kind {
        '0' => EioPacket::Open(rest),
        '1' => EioPacket::Close,
        '2' => EioPacket::Ping,
        '3' => EioPacket::Pong,
        '4' => EioPacket::Message(rest),
        '5' => EioPacket::Upgrade,
        '6' => EioPacket::Noop,
        other => return Err(FrameError::UnknownType(other)),
    })
}

/// Parses the Socket.IO packet inside an Engine.IO message (the text after `4`).
pub fn parse_sio(text: &str) -> Result<SioPacket, FrameError> {
    let mut chars = text.chars();
    let kind = chars.next().ok_or(FrameError::Empty)?;
    let mut rest = chars.as_str();
    // Namespace: present only when not "/", as "/nsp," before the id.
    if rest.starts_with('/') {
        rest = match rest.find(',') {
            Some(i) => &rest[i + 1..],
            None => "",
        };
    }
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let id = if digits > 0 {
        Some(
            rest[..digits]
                .parse::<u64>()
                .map_err(|_| FrameError::BadId)?,
        )
    } else {
        None
    };
    let json = &rest[digits..];
    let parse =
        |s: &str| serde_json::from_str::<Value>(s).map_err(|e| FrameError::BadJson(e.to_string()));
    match kind {
        '0' => Ok(SioPacket::Connect(if json.is_empty() {
            None
        } else {
            Some(parse(json)?)
        })),
        '1' => Ok(SioPacket::Disconnect),
        '2' => {
            let Value::Array(mut items) = parse(json)? else {
                return Err(FrameError::BadJson("an event must be an array".into()));
            };
            if items.is_empty() {
                return Err(FrameError::BadJson("an event needs a name".into()));
            }
            let Value::String(name) = items.remove(0) else {
                return Err(FrameError::BadJson("an event name must be a string".into()));
            };
            Ok(SioPacket::Event {
                id,
                name,
                args: items,
            })
        }
        '3' => {
            let id = id.ok_or(FrameError::BadId)?;
            let Value::Array(args) = parse(json)? else {
                return Err(FrameError::BadJson("an ack must be an array".into()));
            };
            Ok(SioPacket::Ack { id, args })
        }
        '4' => Ok(SioPacket::ConnectError(parse(json)?)),
        other => Err(FrameError::UnknownType(other)),
    }
}

/// The WebSocket text frame connecting to the default namespace with `auth`.
pub fn encode_connect(auth: &Value) -> String {
    if auth.is_null() {
        // What a client without `auth` sends (`io(url)`).
        return "40".to_owned();
    }
    format!("40{auth}")
}

/// The WebSocket text frame of an event, asking for an ack when `id` is set.
pub fn encode_event(id: Option<u64>, name: &str, data: &Value) -> String {
    let body = Value::Array(vec![Value::String(name.to_owned()), data.clone()]);
    match id {
        Some(id) => format!("42{id}{body}"),
        None => format!("42{body}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn engine_io_packets() {
        assert_eq!(
            parse_eio("0{\"sid\":\"x\"}"),
            Ok(EioPacket::Open("{\"sid\":\"x\"}"))
        );
        assert_eq!(parse_eio("2"), Ok(EioPacket::Ping));
        assert_eq!(parse_eio("42[\"a\"]"), Ok(EioPacket::Message("2[\"a\"]")));
        assert_eq!(parse_eio(""), Err(FrameError::Empty));
        assert_eq!(parse_eio("x"), Err(FrameError::UnknownType('x')));
    }

    #[test]
    fn socket_io_connect_and_refusal() {
        assert_eq!(
            parse_sio("0{\"sid\":\"abc\"}"),
            Ok(SioPacket::Connect(Some(json!({"sid": "abc"}))))
        );
        assert_eq!(
            parse_sio("4{\"message\":\"TOKEN_INVALID: bad\"}"),
            Ok(SioPacket::ConnectError(
                json!({"message": "TOKEN_INVALID: bad"})
            ))
        );
    }

    #[test]
    fn events_with_and_without_ack_ids() {
        assert_eq!(
            parse_sio("2[\"sfu-offer\",{\"offerId\":3}]"),
            Ok(SioPacket::Event {
                id: None,
                name: "sfu-offer".into(),
                args: vec![json!({"offerId": 3})]
            })
        );
        assert_eq!(
            parse_sio("217[\"ping\"]"),
            Ok(SioPacket::Event {
                id: Some(17),
                name: "ping".into(),
                args: vec![]
            })
        );
        assert_eq!(
            parse_sio("2/admin,[\"x\",1]"),
            Ok(SioPacket::Event {
                id: None,
                name: "x".into(),
                args: vec![json!(1)]
            })
        );
    }

    #[test]
    fn acks() {
        assert_eq!(
            parse_sio("312[{\"ok\":true,\"data\":{}}]"),
            Ok(SioPacket::Ack {
                id: 12,
                args: vec![json!({"ok": true, "data": {}})]
            })
        );
        assert_eq!(parse_sio("3[]"), Err(FrameError::BadId));
        assert_eq!(
            parse_sio("399999999999999999999999[]"),
            Err(FrameError::BadId)
        );
    }

    #[test]
    fn malformed_input_is_an_error_not_a_panic() {
        for bad in [
            "2", "2{}", "2[]", "2[1]", "3x", "9", "2[\"a\"", "/nsp", "5-[]",
        ] {
            assert!(parse_sio(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn encoding_round_trips() {
        let frame = encode_event(Some(5), "join-meeting", &json!({"roomId": "ABC"}));
        assert_eq!(frame, "425[\"join-meeting\",{\"roomId\":\"ABC\"}]");
        let EioPacket::Message(inner) = parse_eio(&frame).expect("eio") else {
            panic!("not a message")
        };
        assert_eq!(
            parse_sio(inner),
            Ok(SioPacket::Event {
                id: Some(5),
                name: "join-meeting".into(),
                args: vec![json!({"roomId": "ABC"})]
            })
        );
        assert_eq!(
            encode_connect(&json!({"token": "t"})),
            "40{\"token\":\"t\"}"
        );
    }
}
