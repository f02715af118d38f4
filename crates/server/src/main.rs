//! `meeting-service`: runs the server (default, or `serve`), mints a token (`token`),
//! checks a deployment (`doctor`), imports the original service's meetings (`import`),
//! or composes a recording (`recording compose`).

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use meeting_service::auth::{JwtKeys, parse_ttl};
use meeting_service::config::Config;

#[derive(Debug, Parser)]
#[command(
    name = "meeting-service",
    version,
    about = "Video meetings: REST API, Socket.IO signaling, web client and SFU in one process"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (the default). Configuration comes from the environment and `.env`.
    Serve,
    /// Print a JWT signed with JWT_SECRET, for calling the API with curl.
    Token {
        /// The user id (`sub` claim).
        #[arg(long)]
        user: String,
        /// The display name (`name` claim); defaults to the user id.
        #[arg(long)]
        name: Option<String>,
        /// Avatar URL (`picture` claim).
        #[arg(long)]
        picture: Option<String>,
        /// Lifetime: seconds, or with a unit: 90s, 30m, 12h, 7d.
        #[arg(long, default_value = "1h", value_parser = parse_ttl)]
        ttl: std::time::Duration,
    },
    /// Check the configuration and this host (announced IP, ports, TURN, database, Redis,
    /// JWT secret) and print each check with its fix; exits non-zero when one fails.
    Doctor {
        /// This host receives no UDP from browsers (a PaaS): TURN over TCP/TLS is required.
        /// Detected on Render, Heroku and Railway.
        #[arg(long)]
        no_udp: bool,
    },
    /// Import meetings of the Node.js service into DATABASE_URL (idempotent).
    #[command(subcommand)]
    Import(ImportSource),
    /// Recordings under RECORDINGS_DIR.
    Recording {
        #[command(subcommand)]
        command: RecordingCommand,
    },
}

#[derive(Debug, Subcommand)]
enum ImportSource {
    /// The output of `mongoexport --collection meetings --jsonArray` (Extended JSON).
    MongoExport {
        /// The exported file.
        file: std::path::PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum RecordingCommand {
    /// Lay a recording's tracks out as a grid with mixed audio, lined up by its
    /// manifest's clock, into `composed.webm` beside them (needs the system's ffmpeg).
    Compose {
        /// The recording's ID (its directory's name, e.g. 20261201T020500Z-3fa9c1).
        recording_id: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::Doctor { no_udp }) = cli.command {
        return meeting_service::doctor::main(no_udp);
    }
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("meeting-service: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    match cli.command.unwrap_or(Command::Serve) {
        Command::Token {
            user,
            name,
            picture,
            ttl,
        } => {
            if user.trim().is_empty() || user.chars().count() > 128 {
                eprintln!("meeting-service token: --user must be 1-128 characters");
                return ExitCode::from(2);
            }
            if config.jwt_secret_is_default {
                eprintln!(
                    "note: JWT_SECRET is not set; the token is signed with the development secret"
                );
            }
            let keys = JwtKeys::new(&config.jwt_secret);
            match keys.mint(
                &user,
                name.as_deref().unwrap_or(&user),
                picture.as_deref(),
                ttl,
            ) {
                Ok(token) => {
                    println!("{token}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("meeting-service token: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Import(ImportSource::MongoExport { file }) => import(&config, &file),
        Command::Recording {
            command: RecordingCommand::Compose { recording_id },
        } => {
            use meeting_service::recording::compose;
            let dir = match compose::find(&config.recordings_dir, &recording_id) {
                Ok(d) => d,
                Err(e) => {
                    eprintln!("meeting-service recording compose: {e}");
                    return ExitCode::from(2);
                }
            };
            match compose::compose(&dir) {
                Ok(path) => {
                    println!("{}", path.display());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("meeting-service recording compose: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        // Handled above, before the configuration is loaded (doctor reports its errors).
        Command::Doctor { no_udp } => meeting_service::doctor::main(no_udp),
        Command::Serve => {
            meeting_service::telemetry::init(&config.sfu.log_level, config.observe.log_format);
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("meeting-service: cannot start the async runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match runtime.block_on(meeting_service::serve(config)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!("{e:#}");
                    eprintln!("meeting-service: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

/// `import mongo-export FILE`: prints the report; exits 0 when the file was read, even
/// with records skipped (they are listed), 1 when it could not be.
fn import(config: &Config, file: &std::path::Path) -> ExitCode {
    use meeting_service::import::{Defaults, mongo_export};
    use meeting_service::store::{Store, Topology};
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("meeting-service import: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let defaults = Defaults {
        max_participants: config.max_participants,
        topology: if config.sfu_mode_enabled {
            Topology::Sfu
        } else {
            Topology::Mesh
        },
    };
    let database = meeting_service::config::redact_url(&config.database_url);
    let result = runtime.block_on(async {
        let store = Store::connect(&config.database_url)
            .await
            .map_err(|e| format!("opening the database {database}: {e}"))?;
        let report = mongo_export(&store, file, defaults, chrono::Utc::now())
            .await
            .map_err(|e| e.to_string());
        store.close().await;
        report
    });
    match result {
        Ok(report) => {
            print!("{report}");
            println!("into {database}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("meeting-service import: {e}");
            ExitCode::FAILURE
        }
    }
}
