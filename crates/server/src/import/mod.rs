//! `meeting-service import mongo-export FILE`: the meetings of the service we replace,
//! from `mongoexport --collection meetings --jsonArray`, into this service's database.
//!
//! Each record is written whole (the meeting and its participant history, one
//! transaction) or skipped with the reason; nothing is changed by a second run (a record
//! whose `_id` was imported before is left alone). The meeting keeps its `roomId`
//! ([`crate::room_code::normalise`]d, as every entry point reads it), so an old meeting
//! link opens its record, and its `_id` as `legacyId`. No MongoDB is needed: the file is
//! what `mongoexport` wrote.
//!
//! - [`mongo`]: one Extended JSON record as an [`ImportedMeeting`], or why not.

pub mod mongo;

use std::fmt;
use std::path::Path;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::store::{ImportOutcome, ImportedMeeting, Store, StoreError};
pub use mongo::{BadRecord, Defaults};

/// Largest export read: the file is read whole, and a meetings collection of this size
/// is far beyond what the service we replace held.
pub const MAX_FILE_BYTES: u64 = 256 << 20;

/// Why the import could not run at all (a bad record is not one: it is skipped).
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is {size} bytes; at most {MAX_FILE_BYTES} are read")]
    TooLarge { path: String, size: u64 },
    #[error(
        "{path} is not a JSON array ({source}); export with `mongoexport --collection meetings --jsonArray`"
    )]
    NotAnArray {
        path: String,
        source: serde_json::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why one record was not written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SkipReason {
    /// The record is not a meeting this service can hold.
    Bad(BadRecord),
    /// Another meeting (of this service, or an earlier record) has its room id.
    RoomTaken,
    /// Another meeting's history has one of its participant ids.
    ParticipantTaken(proto::PeerId),
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkipReason::Bad(b) => write!(f, "{b}"),
            SkipReason::RoomTaken => f.write_str("roomId: another meeting already has this id"),
            SkipReason::ParticipantTaken(p) => write!(
                f,
                "participants: the participant id {p} is already another meeting's"
            ),
        }
    }
}

/// One skipped record: its position in the file, its `_id` and `roomId` when readable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped {
    pub index: usize,
    pub id: Option<String>,
    pub room_id: Option<String>,
    pub reason: SkipReason,
}

/// What an import did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Records written now, and their participant rows.
    pub imported: usize,
    pub participants: usize,
    /// Records an earlier import wrote: unchanged.
    pub already_imported: usize,
    pub skipped: Vec<Skipped>,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "imported {} meetings ({} participant records); {} already imported (unchanged); {} skipped",
            self.imported,
            self.participants,
            self.already_imported,
            self.skipped.len()
        )?;
        for s in &self.skipped {
            write!(f, "  skipped record {}", s.index)?;
            if let Some(id) = &s.id {
                write!(f, " (_id {id}")?;
                if let Some(room) = &s.room_id {
                    write!(f, ", roomId {room}")?;
                }
                f.write_str(")")?;
            }
            writeln!(f, ": {}", s.reason)?;
        }
        Ok(())
    }
}

/// Reads the export at `path` and imports it into `store`.
pub async fn mongo_export(
    store: &Store,
    path: &Path,
    defaults: Defaults,
    now: DateTime<Utc>,
) -> Result<Report, ImportError> {
    let shown = path.display().to_string();
    let read = |source| ImportError::Read {
        path: shown.clone(),
        source,
    };
    let size = std::fs::metadata(path).map_err(read)?.len();
    if size > MAX_FILE_BYTES {
        return Err(ImportError::TooLarge { path: shown, size });
    }
    let text = std::fs::read(path).map_err(read)?;
    let records: Vec<Value> =
        serde_json::from_slice(&text).map_err(|source| ImportError::NotAnArray {
            path: shown.clone(),
            source,
        })?;
    let mut report = Report::default();
    for (index, record) in records.iter().enumerate() {
        let skip = |reason| Skipped {
            index,
            id: mongo::record_id(record),
            room_id: record
                .get("roomId")
                .and_then(Value::as_str)
                .map(str::to_owned),
            reason,
        };
        let meeting: ImportedMeeting = match mongo::meeting(record, defaults, now) {
            Ok(m) => m,
            Err(bad) => {
                report.skipped.push(skip(SkipReason::Bad(bad)));
                continue;
            }
        };
        match store.import_meeting(&meeting).await? {
            ImportOutcome::Imported { participants } => {
                report.imported += 1;
                report.participants += participants;
            }
            ImportOutcome::AlreadyImported => report.already_imported += 1,
            ImportOutcome::RoomTaken => report.skipped.push(skip(SkipReason::RoomTaken)),
            ImportOutcome::ParticipantTaken(p) => {
                report.skipped.push(skip(SkipReason::ParticipantTaken(p)));
            }
        }
    }
    Ok(report)
}
