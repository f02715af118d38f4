//! Logging: `RUST_LOG` sets the levels (default `info`); `MEDIASOUP_LOG_LEVEL` sets the
//! media engine's (target `meeting_sfu`) unless `RUST_LOG` names that target itself.
//! `LOG_FORMAT=json` writes one JSON object per line (tracing-subscriber's own JSON
//! formatter): `timestamp`, `level`, `target`, `fields` (the message and every field:
//! `room`, `peer`, `user`, `worker`, …) and the enclosing `span`s; the default is text.

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Installs the global subscriber. Call once, before anything logs.
pub fn init(sfu_level: &str, format: LogFormat) {
    let base = std::env::var("RUST_LOG")
        .ok()
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| "info".to_owned());
    let directives = if base.contains("meeting_sfu") {
        base
    } else {
        format!("{base},meeting_sfu={sfu_level}")
    };
    let filter = EnvFilter::try_new(&directives).unwrap_or_else(|e| {
        eprintln!("RUST_LOG={directives:?} is invalid ({e}); using \"info\"");
        EnvFilter::new("info")
    });
    // Colours only on a terminal: log files and `docker logs` get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    // A second init (tests) keeps the first subscriber; that is fine.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(true);
    let _ = match format {
        LogFormat::Text => builder.with_ansi(ansi).try_init(),
        LogFormat::Json => builder.json().with_ansi(false).try_init(),
    };
}
