//! `meeting-service doctor`: the deployment guide's Troubleshooting section ("ICE
//! connection failed", "Transport state: failed", "Workers not starting") turned into
//! checks of the configuration and of this host, each printed with ✓ (pass), ! (pass,
//! with a note) or ✗ (fail) and, when something is wrong, the fix.
//!
//! Run it on the host (or in the container) that will run the service, before starting
//! it: a running service holds its own ports and would be reported as "port in use".
//! The exit code is 0 when nothing failed, 1 when a check failed and 2 when the
//! configuration itself is invalid.
//!
//! Each check is a plain function of a [`Config`], so tests build configurations with
//! [`Config::from_vars`] and call them one by one.
//!
//! - this file: [`Check`], [`Report`], [`run`] (every check in order) and the subcommand;
//! - `settings.rs`: the variables themselves (typos, leftovers) and the token secret;
//! - `network.rs`: the announced address and the media and HTTP ports;
//! - `turn.rs`: the TURN URLs and, with [`turn_probe`], a real allocation;
//! - `services.rs`: the database and Redis answer.

mod network;
mod services;
mod settings;
mod turn;
pub mod turn_probe;

use std::fmt::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use crate::config::Config;

pub use network::{
    announced_ip, is_local_address, local_ipv4_addresses, tcp_media_ports, tcp_port, udp_ports,
};
pub use services::{database, redis};
pub use settings::{MIN_PRODUCTION_SECRET_LEN, jwt_secret, variables};
pub use turn::{TurnUrl, parse_turn_url, turn, turn_allocation};

/// How long a database or Redis round trip may take before it counts as unreachable.
pub const NETWORK_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Pass,
    /// Passes, but the operator should read the note.
    Warn,
    Fail,
}

impl Status {
    pub fn mark(self) -> &'static str {
        match self {
            Status::Pass => "✓",
            Status::Warn => "!",
            Status::Fail => "✗",
        }
    }
}

/// One check's verdict.
#[derive(Clone, Debug)]
pub struct Check {
    pub name: &'static str,
    pub status: Status,
    pub detail: String,
    /// What to do about it (set for failures and warnings).
    pub fix: Option<String>,
}

impl Check {
    fn pass(name: &'static str, detail: impl Into<String>) -> Check {
        Check {
            name,
            status: Status::Pass,
            detail: detail.into(),
            fix: None,
        }
    }
    fn warn(name: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
        Check {
            name,
            status: Status::Warn,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }
    fn fail(name: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
        Check {
            name,
            status: Status::Fail,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }
    pub fn failed(&self) -> bool {
        self.status == Status::Fail
    }
}

/// What the operator tells the doctor about the host that the configuration cannot say.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// The host cannot receive UDP from browsers (a PaaS such as Render, Heroku or
    /// Railway): media must be relayed by TURN over TCP or TLS. `--no-udp`, or detected
    /// from the platform's own variables (see [`platform_without_udp`]).
    pub no_udp: Option<String>,
}

/// The PaaS this process runs on, when that platform has no inbound UDP, from the
/// variables the platforms set themselves (`RENDER`, `DYNO`, `RAILWAY_ENVIRONMENT`).
pub fn platform_without_udp(get: impl Fn(&str) -> Option<String>) -> Option<&'static str> {
    [
        ("RENDER", "Render"),
        ("DYNO", "Heroku"),
        ("RAILWAY_ENVIRONMENT", "Railway"),
    ]
    .into_iter()
    .find(|(var, _)| get(var).is_some_and(|v| !v.trim().is_empty()))
    .map(|(_, name)| name)
}

#[derive(Debug)]
pub struct Report {
    pub checks: Vec<Check>,
}

impl Report {
    pub fn failed(&self) -> bool {
        self.checks.iter().any(Check::failed)
    }

    pub fn get(&self, name: &str) -> Option<&Check> {
        self.checks.iter().find(|c| c.name == name)
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        for c in &self.checks {
            let _ = writeln!(out, "{} {}: {}", c.status.mark(), c.name, c.detail);
            if let Some(fix) = &c.fix {
                for (i, line) in fix.lines().enumerate() {
                    let _ = writeln!(out, "    {} {line}", if i == 0 { "fix:" } else { "    " });
                }
            }
        }
        let failed = self.checks.iter().filter(|c| c.failed()).count();
        let warned = self
            .checks
            .iter()
            .filter(|c| c.status == Status::Warn)
            .count();
        let _ = writeln!(
            out,
            "\n{} checks: {} failed, {} with notes",
            self.checks.len(),
            failed,
            warned
        );
        out
    }
}

/// Every check, in the order of the guide's Troubleshooting section.
pub async fn run(config: &Config, opts: &Options) -> Report {
    let mut checks = vec![announced_ip(config), udp_ports(config)];
    let udp_ok = !checks.iter().any(Check::failed);
    checks.push(tcp_media_ports(config));
    checks.push(tcp_port(config));
    checks.push(turn(config, opts, udp_ok));
    if config.ice.turn.is_some() {
        let c = config.clone();
        let probe = tokio::task::spawn_blocking(move || turn_allocation(&c, NETWORK_TIMEOUT)).await;
        checks.push(probe.unwrap_or_else(|e| {
            Check::fail(
                "TURN credentials",
                format!("the probe crashed: {e}"),
                "Report this bug.",
            )
        }));
    }
    checks.push(database(config).await);
    checks.push(redis(config).await);
    checks.push(jwt_secret(config));
    Report { checks }
}

/// The `doctor` subcommand: reads the environment (and `.env`), prints the report.
pub fn main(no_udp_flag: bool) -> ExitCode {
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            println!("✗ configuration: {e}");
            println!(
                "    fix: correct the variable named above (docs/configuration.md lists them all)"
            );
            return ExitCode::from(2);
        }
    };
    let no_udp = if no_udp_flag {
        Some("--no-udp was given".to_owned())
    } else {
        platform_without_udp(|v| std::env::var(v).ok())
            .map(|p| format!("running on {p}, which has no inbound UDP"))
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("meeting-service doctor: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("meeting-service doctor (NODE_ENV={})\n", config.node_env);
    let mut report = runtime.block_on(run(&config, &Options { no_udp }));
    // After Config::from_env, the process environment includes `.env`.
    report
        .checks
        .insert(0, variables(&config, std::env::vars()));
    print!("{}", report.render());
    if report.failed() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
