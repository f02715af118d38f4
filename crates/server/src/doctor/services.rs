//! Checks of the services the process depends on: the meeting store (PostgreSQL, or the
//! SQLite file) and Redis, each within [`super::NETWORK_TIMEOUT`].

use std::path::{Path, PathBuf};

use super::{Check, NETWORK_TIMEOUT};
use crate::config::{Config, redact_url};

/// The meeting store answers (PostgreSQL), or the SQLite file can be opened or created.
pub async fn database(config: &Config) -> Check {
    const NAME: &str = "database (DATABASE_URL)";
    let url = &config.database_url;
    let shown = redact_url(url);
    if url.starts_with("sqlite:") {
        return sqlite(NAME, url);
    }
    let attempt = async {
        use sqlx::Connection as _;
        let mut conn = sqlx::postgres::PgConnection::connect(url).await?;
        sqlx::query("SELECT 1").execute(&mut conn).await?;
        conn.close().await
    };
    let fix = "Start PostgreSQL or correct DATABASE_URL (host, port, user, password, database); \
               unset DATABASE_URL to use the built-in SQLite file instead.";
    match tokio::time::timeout(NETWORK_TIMEOUT, attempt).await {
        Ok(Ok(())) => Check::pass(NAME, format!("{shown} answers")),
        Ok(Err(e)) => Check::fail(
            NAME,
            format!("{shown}: {}", scrub(&e.to_string(), url)),
            fix,
        ),
        Err(_) => Check::fail(
            NAME,
            format!("{shown}: no answer within {} s", NETWORK_TIMEOUT.as_secs()),
            fix,
        ),
    }
}

fn sqlite(name: &'static str, url: &str) -> Check {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    let path = rest.split_once('?').map_or(rest, |(p, _)| p);
    if path.is_empty() || path == ":memory:" {
        return Check::warn(
            name,
            "in-memory SQLite: meetings are lost at every restart",
            "Set DATABASE_URL=sqlite://./data/meetings.db or a PostgreSQL URL.",
        );
    }
    let path = Path::new(path);
    let fix = format!(
        "Make {} writable by the service's user, or point DATABASE_URL elsewhere.",
        path.parent().map_or(path, |p| p).display()
    );
    if path.exists() {
        return match std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
        {
            Ok(_) => Check::pass(
                name,
                format!("SQLite file {} exists and is writable", path.display()),
            ),
            Err(e) => Check::fail(name, format!("SQLite file {}: {e}", path.display()), fix),
        };
    }
    // Not there yet: the service creates it (and its directory). Probe the nearest
    // existing ancestor directory with a file of our own, removed at once.
    let mut dir: PathBuf = path.parent().map(Path::to_path_buf).unwrap_or_default();
    if dir.as_os_str().is_empty() {
        dir = PathBuf::from(".");
    }
    let mut guard = 0;
    while !dir.exists() && guard < 64 {
        dir = dir
            .parent()
            .map(Path::to_path_buf)
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or_else(|| PathBuf::from("."));
        guard += 1;
    }
    let probe = dir.join(format!(".meeting-service-doctor-{}", std::process::id()));
    match std::fs::File::create(&probe) {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            Check::pass(
                name,
                format!(
                    "SQLite file {} will be created (in {}, which is writable)",
                    path.display(),
                    dir.display()
                ),
            )
        }
        Err(e) => Check::fail(
            name,
            format!(
                "SQLite file {} cannot be created: {} is not writable ({e})",
                path.display(),
                dir.display()
            ),
            fix,
        ),
    }
}

/// Removes the password of `url` from a driver's error text, should it quote it.
fn scrub(message: &str, url: &str) -> String {
    let mut out = message.to_owned();
    if let (Some(scheme), Some(at)) = (url.find("://"), url.rfind('@'))
        && at > scheme
        && let Some((_, password)) = url[scheme + 3..at].split_once(':')
        && !password.is_empty()
    {
        out = out.replace(password, "***");
    }
    out
}

/// Redis (multi-node live state) answers PING, when configured.
pub async fn redis(config: &Config) -> Check {
    const NAME: &str = "Redis (REDIS_URL)";
    let Some(url) = &config.redis_url else {
        return Check::pass(
            NAME,
            "not set: a single node, live state kept in this process",
        );
    };
    let shown = redact_url(url);
    let fix = "Start Redis or correct REDIS_URL (redis://[:password@]host:6379); unset it to run a single node.";
    let client = match redis::Client::open(url.as_str()) {
        Ok(c) => c,
        Err(e) => {
            return Check::fail(
                NAME,
                format!("{shown}: {}", scrub(&e.to_string(), url)),
                fix,
            );
        }
    };
    let ping = async {
        let mut con = client.get_multiplexed_async_connection().await?;
        redis::cmd("PING").query_async::<String>(&mut con).await
    };
    match tokio::time::timeout(NETWORK_TIMEOUT, ping).await {
        Ok(Ok(_)) => Check::pass(NAME, format!("{shown} answers PING")),
        Ok(Err(e)) => Check::fail(
            NAME,
            format!("{shown}: {}", scrub(&e.to_string(), url)),
            fix,
        ),
        Err(_) => Check::fail(
            NAME,
            format!("{shown}: no answer within {} s", NETWORK_TIMEOUT.as_secs()),
            fix,
        ),
    }
}
