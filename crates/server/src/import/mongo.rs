//! One record of `mongoexport --collection meetings --jsonArray` as an
//! [`ImportedMeeting`], or the reason it cannot be one.
//!
//! mongoexport writes MongoDB Extended JSON: relaxed by default (`{"$date":
//! "2024-03-01T09:00:00.000Z"}`, plain numbers) and canonical with `--jsonFormat
//! canonical` (`{"$date": {"$numberLong": "1709283600000"}}`, `{"$numberInt": "50"}`);
//! old versions wrote `{"$date": 1709283600000}`. All are read, as are plain ISO strings.
//! The fields are those of the original model (`../shared/design/protocol.md`): roomId,
//! title, description, hostId, status, maxParticipants, settings, topology, scheduledAt,
//! startedAt, endedAt, participants (userId, userName, userPicture, isHost, joinedAt,
//! leftAt; their live audio/video/screen flags are not history and are not kept),
//! createdAt, updatedAt. Unknown fields (`__v`, `duration`, …) are ignored: duration is
//! derived from the start and end here.

use chrono::{DateTime, TimeZone, Utc};
use proto::signaling::limits;
use proto::{PeerId, UserId};
use serde_json::{Map, Value};

use crate::room_code;
use crate::store::{
    ImportedMeeting, ImportedParticipant, Meeting, MeetingSettings, MeetingStatus, Topology,
};

/// Why a record was skipped: the field (`participants[2].joinedAt`) and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct BadRecord {
    pub field: String,
    pub problem: String,
}

fn bad(field: impl Into<String>, problem: impl Into<String>) -> BadRecord {
    BadRecord {
        field: field.into(),
        problem: problem.into(),
    }
}

/// What the importer needs to know of the configuration.
#[derive(Clone, Copy, Debug)]
pub struct Defaults {
    /// `MAX_PARTICIPANTS`: a larger cap is lowered to it.
    pub max_participants: u32,
    /// `SFU_MODE_ENABLED`: the topology of records that have none.
    pub topology: Topology,
}

/// The record's `_id` as text (an ObjectId's hex, or a string id), for the report even
/// when the rest is bad.
pub fn record_id(record: &Value) -> Option<String> {
    record.get("_id").and_then(id_text)
}

/// `record` as a meeting to write; `now` closes the stays the export left open.
pub fn meeting(
    record: &Value,
    defaults: Defaults,
    now: DateTime<Utc>,
) -> Result<ImportedMeeting, BadRecord> {
    let r = record
        .as_object()
        .ok_or_else(|| bad("record", "not a JSON object"))?;
    let legacy_id = r
        .get("_id")
        .and_then(id_text)
        .filter(|id| !id.is_empty() && id.len() <= 128)
        .ok_or_else(|| bad("_id", "missing, or not an ObjectId or a string"))?;
    let raw_room = text(r, "roomId")?.ok_or_else(|| bad("roomId", "missing"))?;
    let room_id = room_code::normalise(&raw_room).ok_or_else(|| {
        bad(
            "roomId",
            format!("{raw_room:?} cannot be a meeting id (1 to 32 letters, digits, - or _)"),
        )
    })?;
    let title = text(r, "title")?
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| bad("title", "missing or empty"))?;
    if title.chars().count() > 200 {
        return Err(bad("title", "longer than 200 characters"));
    }
    let description = text(r, "description")?.unwrap_or_default();
    if description.chars().count() > 2000 {
        return Err(bad("description", "longer than 2000 characters"));
    }
    let host_id = r
        .get("hostId")
        .and_then(id_text)
        .filter(|h| !h.is_empty() && h.chars().count() <= limits::USER_ID)
        .ok_or_else(|| bad("hostId", "missing, or not a user id (text or ObjectId)"))?;
    let status = match text(r, "status")? {
        None => MeetingStatus::Ended,
        Some(s) => MeetingStatus::parse(&s)
            .ok_or_else(|| bad("status", format!("{s:?} is not scheduled, active or ended")))?,
    };
    let max_participants = match r
        .get("maxParticipants")
        .or_else(|| r.get("settings").and_then(|s| s.get("maxParticipants")))
    {
        None | Some(Value::Null) => defaults.max_participants,
        Some(v) => {
            let n = number(v).ok_or_else(|| bad("maxParticipants", "not a whole number"))?;
            if n < 2 {
                return Err(bad("maxParticipants", format!("{n} is below 2")));
            }
            u32::try_from(n)
                .unwrap_or(u32::MAX)
                .min(defaults.max_participants)
        }
    };
    let settings = match r.get("settings") {
        None | Some(Value::Null) => MeetingSettings::default(),
        Some(s @ Value::Object(_)) => serde_json::from_value::<MeetingSettings>(s.clone())
            .map_err(|e| bad("settings", e.to_string()))?,
        Some(_) => return Err(bad("settings", "not an object")),
    };
    let topology = match text(r, "topology")? {
        None => defaults.topology,
        Some(t) => Topology::parse(&t)
            .ok_or_else(|| bad("topology", format!("{t:?} is not mesh or sfu")))?,
    };
    let created_at = match date(r, "createdAt")? {
        Some(t) => t,
        None => object_id_time(&legacy_id).ok_or_else(|| {
            bad(
                "createdAt",
                "missing, and _id is not an ObjectId to date it",
            )
        })?,
    };
    let updated_at = date(r, "updatedAt")?.unwrap_or(created_at).max(created_at);
    let scheduled_at = date(r, "scheduledAt")?;
    let started_at = date(r, "startedAt")?;
    let mut ended_at = date(r, "endedAt")?;
    if let (Some(s), Some(e)) = (started_at, ended_at)
        && e < s
    {
        return Err(bad("endedAt", "before startedAt"));
    }
    if status == MeetingStatus::Ended && ended_at.is_none() {
        // Ended without a time: as late as the record knows of.
        ended_at = Some(updated_at);
    }
    let end_reason = text(r, "endReason")?;
    let participants = match r.get("participants") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(list)) => list
            .iter()
            .enumerate()
            .map(|(i, p)| participant(p, i, &legacy_id, &host_id, ended_at.unwrap_or(now)))
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(bad("participants", "not an array")),
    };
    let last_activity_at = participants
        .iter()
        .map(|p: &ImportedParticipant| p.left_at)
        .chain([updated_at, created_at])
        .chain(ended_at)
        .max()
        .unwrap_or(created_at);
    // The TTL clock of a meeting nobody is in: from its end, from its scheduled time (as
    // for a new meeting), or from now for one the old service still had open.
    let empty_since = match status {
        MeetingStatus::Ended => ended_at.unwrap_or(last_activity_at),
        MeetingStatus::Scheduled => scheduled_at.map_or(now, |t| t.max(now)),
        MeetingStatus::Active => now,
    };
    Ok(ImportedMeeting {
        meeting: Meeting {
            room_id,
            title,
            description,
            host_id: UserId::new(host_id),
            status,
            max_participants,
            settings,
            topology,
            scheduled_at,
            started_at,
            ended_at,
            end_reason,
            duration: Meeting::duration_at(started_at, ended_at, status, now),
            created_at,
            updated_at,
            last_activity_at,
            empty_since: Some(empty_since),
            peak_participants: peak(&participants),
            legacy_id: Some(legacy_id),
        },
        participants,
    })
}

/// Most stays open at one instant: the peak the old service would have shown. A leave
/// at the same instant as a join counts first (back-to-back stays are not overlapping).
fn peak(stays: &[ImportedParticipant]) -> u32 {
    let mut edges: Vec<(i64, i32)> = stays
        .iter()
        .flat_map(|p| {
            [
                (p.joined_at.timestamp_millis(), 1),
                (p.left_at.timestamp_millis(), -1),
            ]
        })
        .collect();
    edges.sort();
    let (mut open, mut most) = (0i32, 0i32);
    for (_, step) in edges {
        open += step;
        most = most.max(open);
    }
    u32::try_from(most).unwrap_or(0)
}

fn participant(
    p: &Value,
    i: usize,
    meeting: &str,
    host: &str,
    close_at: DateTime<Utc>,
) -> Result<ImportedParticipant, BadRecord> {
    let at = |f: &str| format!("participants[{i}].{f}");
    let p = p
        .as_object()
        .ok_or_else(|| bad(format!("participants[{i}]"), "not an object"))?;
    let user_id = p
        .get("userId")
        .and_then(id_text)
        .filter(|u| !u.is_empty() && u.chars().count() <= limits::USER_ID)
        .ok_or_else(|| bad(at("userId"), "missing, or not a user id (text or ObjectId)"))?;
    let user_name = text(p, "userName")
        .map_err(|e| bad(at("userName"), e.problem))?
        .map(|n| n.trim().to_owned())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| user_id.clone());
    let user_name: String = user_name.chars().take(limits::USER_NAME).collect();
    let user_picture = text(p, "userPicture")
        .map_err(|e| bad(at("userPicture"), e.problem))?
        .filter(|u| !u.is_empty() && u.len() <= limits::PICTURE_URL);
    let is_host = match p.get("isHost") {
        None | Some(Value::Null) => user_id == host,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(bad(at("isHost"), "not true or false")),
    };
    let joined_at = date(p, "joinedAt")
        .map_err(|e| bad(at("joinedAt"), e.problem))?
        .ok_or_else(|| bad(at("joinedAt"), "missing"))?;
    let left_at = date(p, "leftAt")
        .map_err(|e| bad(at("leftAt"), e.problem))?
        .unwrap_or(close_at.max(joined_at));
    if left_at < joined_at {
        return Err(bad(at("leftAt"), "before joinedAt"));
    }
    let key = p
        .get("_id")
        .and_then(id_text)
        .unwrap_or_else(|| format!("{meeting}.{i}"));
    Ok(ImportedParticipant {
        peer_id: PeerId::new(format!("legacy:{key}")),
        user_id: UserId::new(user_id),
        user_name,
        user_picture,
        is_host,
        joined_at,
        left_at,
    })
}

/// A string field; `Ok(None)` when absent or null, an error when of another type.
fn text(r: &Map<String, Value>, field: &str) -> Result<Option<String>, BadRecord> {
    match r.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(bad(field, "not a string")),
    }
}

/// An id: text, `{"$oid": "…"}`, or a whole number.
fn id_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.trim().to_owned()),
        Value::Object(o) => o.get("$oid").and_then(Value::as_str).map(str::to_owned),
        Value::Number(n) if n.is_i64() || n.is_u64() => Some(n.to_string()),
        _ => None,
    }
}

/// A whole number: plain, or `{"$numberInt"|"$numberLong"|"$numberDouble": "…"}`.
fn number(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64)),
        Value::Object(o) if o.len() == 1 => {
            let (kind, text) = o.iter().next()?;
            let text = text.as_str()?;
            match kind.as_str() {
                "$numberInt" | "$numberLong" => text.parse().ok(),
                "$numberDouble" => text
                    .parse::<f64>()
                    .ok()
                    .filter(|f| f.fract() == 0.0)
                    .map(|f| f as i64),
                _ => None,
            }
        }
        _ => None,
    }
}

/// A date: `{"$date": "<ISO 8601>"}`, `{"$date": {"$numberLong": "<ms>"}}`,
/// `{"$date": <ms>}`, or a plain ISO 8601 string.
fn date(r: &Map<String, Value>, field: &str) -> Result<Option<DateTime<Utc>>, BadRecord> {
    let v = match r.get(field) {
        None | Some(Value::Null) => return Ok(None),
        Some(v) => v,
    };
    let inner = v.get("$date").unwrap_or(v);
    let parsed = match inner {
        Value::String(s) => DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .ok(),
        other => number(other).and_then(|ms| Utc.timestamp_millis_opt(ms).single()),
    };
    parsed.map(Some).ok_or_else(|| {
        bad(
            field,
            format!("{v} is not a date (Extended JSON $date or ISO 8601)"),
        )
    })
}

/// When an ObjectId was made: its first four bytes are seconds since the epoch.
fn object_id_time(id: &str) -> Option<DateTime<Utc>> {
    if id.len() != 24 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let secs = i64::from_str_radix(&id[..8], 16).ok()?;
    Utc.timestamp_opt(secs, 0).single()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_date_form() {
        let want = Utc.timestamp_millis_opt(1_709_283_600_000).single();
        for v in [
            serde_json::json!({ "t": { "$date": "2024-03-01T09:00:00.000Z" } }),
            serde_json::json!({ "t": { "$date": "2024-03-01T10:00:00+01:00" } }),
            serde_json::json!({ "t": { "$date": { "$numberLong": "1709283600000" } } }),
            serde_json::json!({ "t": { "$date": 1_709_283_600_000_i64 } }),
            serde_json::json!({ "t": "2024-03-01T09:00:00Z" }),
        ] {
            assert_eq!(date(v.as_object().expect("object"), "t"), Ok(want), "{v}");
        }
        let v = serde_json::json!({ "t": { "$date": "yesterday" } });
        assert!(date(v.as_object().expect("object"), "t").is_err());
        assert_eq!(
            object_id_time("65e19a10aaaaaaaaaaaaaaaa"),
            Utc.timestamp_opt(0x65e1_9a10, 0).single()
        );
    }
}
