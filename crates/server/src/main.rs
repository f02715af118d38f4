//! `meeting-service`: runs the server (default, or `serve`), or mints a token (`token`).

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
        // Handled above, before the configuration is loaded (doctor reports its errors).
        Command::Doctor { no_udp } => meeting_service::doctor::main(no_udp),
        Command::Serve => {
            meeting_service::telemetry::init(&config.sfu.log_level);
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
