//! Socket.IO v4 over WebSocket: the framing ([`frame`]) and an async client ([`client`]).

pub mod client;
pub mod frame;

pub use client::{Refused, ServerEvent, SioClient, refusal};
