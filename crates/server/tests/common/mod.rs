//! Test support: servers on 127.0.0.1:0 in this process, scratch databases, tokens.
#![allow(dead_code, clippy::unwrap_used)]

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use meeting_service::auth::Claims;
use meeting_service::config::Config;
use meeting_service::state::AppState;
use meeting_service::store::Store;
use serde_json::Value;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub mod sio;

pub const SECRET: &str = "test-secret-0123456789abcdef0123456789";
pub const PG_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// A directory removed on drop.
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let path = std::env::temp_dir().join(format!(
            "meeting-service-{tag}-{}-{}",
            std::process::id(),
            random_suffix()
        ));
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn random_suffix() -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..10)
        .map(|_| char::from(b'a' + rng.random_range(0..26u8)))
        .collect()
}

/// A connection to the test Redis (127.0.0.1:6379, or `TEST_REDIS_URL`) under a prefix of
/// its own, so that tests running at once never share a key; [`drop_redis_keys`] after.
pub async fn redis_cluster() -> meeting_service::cluster::Cluster {
    let url =
        std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let prefix = format!("ms-test-{}-{}:", std::process::id(), random_suffix());
    meeting_service::cluster::Cluster::connect(&url, &prefix)
        .await
        .expect("Redis on 127.0.0.1:6379")
}

/// Remove every key of `cluster`'s prefix.
pub async fn drop_redis_keys(cluster: &meeting_service::cluster::Cluster) {
    let mut conn = cluster.conn.clone();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}*", cluster.prefix))
        .query_async(&mut conn)
        .await
        .unwrap_or_default();
    if !keys.is_empty() {
        let _: Result<(), _> = redis::cmd("DEL").arg(keys).query_async(&mut conn).await;
    }
}

/// Where a test's meetings live. PostgreSQL databases are created fresh and dropped.
#[derive(Debug)]
pub enum Db {
    Sqlite { dir: TempDir },
    Postgres { name: String },
}

impl Db {
    pub fn sqlite() -> Db {
        Db::Sqlite {
            dir: TempDir::new("db"),
        }
    }

    pub async fn postgres() -> Db {
        use sqlx::Executor;
        let name = format!("ms_test_{}", random_suffix());
        let mut admin = connect_pg_admin().await;
        admin
            .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .await
            .expect("CREATE DATABASE");
        Db::Postgres { name }
    }

    pub fn url(&self) -> String {
        match self {
            Db::Sqlite { dir } => format!("sqlite://{}", dir.path().join("meetings.db").display()),
            Db::Postgres { name } => format!("postgres://postgres@127.0.0.1:5432/{name}"),
        }
    }

    /// Drops a PostgreSQL database now (dropping the value does it too, even on panic).
    pub async fn cleanup(self) {
        drop(self);
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        if let Db::Postgres { name } = self {
            // Drop runs outside async; a private runtime on its own thread does the query.
            let db = name.clone();
            let dropped = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .ok()?;
                rt.block_on(async {
                    use sqlx::Executor;
                    let mut admin = connect_pg_admin().await;
                    admin
                        .execute(sqlx::AssertSqlSafe(format!(
                            "DROP DATABASE IF EXISTS {db} WITH (FORCE)"
                        )))
                        .await
                        .ok()
                })
            })
            .join();
            if !matches!(dropped, Ok(Some(_))) {
                eprintln!("could not drop the test database {name}");
            }
        }
    }
}

async fn connect_pg_admin() -> sqlx::PgConnection {
    use sqlx::Connection;
    sqlx::PgConnection::connect(PG_ADMIN_URL)
        .await
        .expect("PostgreSQL on 127.0.0.1:5432 (trust auth, user postgres)")
}

/// Configuration for tests: loopback, a known secret, mesh by default (no engine).
pub fn config(db_url: &str, extra: &[(&str, &str)]) -> Config {
    let mut vars: Vec<(String, String)> = vec![
        ("HOST".into(), "127.0.0.1".into()),
        ("PORT".into(), "0".into()),
        ("JWT_SECRET".into(), SECRET.into()),
        ("SFU_MODE_ENABLED".into(), "false".into()),
        ("MEDIASOUP_ANNOUNCED_IP".into(), "127.0.0.1".into()),
        ("MEDIASOUP_ALLOW_LOOPBACK".into(), "true".into()),
        ("MEDIASOUP_WORKERS".into(), "1".into()),
        ("DATABASE_URL".into(), db_url.into()),
    ];
    for (k, v) in extra {
        vars.retain(|(name, _)| name != k);
        vars.push(((*k).into(), (*v).into()));
    }
    Config::from_vars(vars).expect("test configuration is valid")
}

/// A server on 127.0.0.1:0 in this process.
#[derive(Debug)]
pub struct TestServer {
    pub addr: SocketAddr,
    pub state: AppState,
    pub http: reqwest::Client,
    handle: JoinHandle<std::io::Result<()>>,
}

impl TestServer {
    pub async fn start(config: Config) -> TestServer {
        TestServer::start_with(config, None).await
    }

    /// A node of a cluster: [`TestServer::start`] joined to Redis at `REDIS_URL` with
    /// the configuration's `REDIS_KEY_PREFIX`, as `meeting_service::serve` does.
    pub async fn start_in_cluster(config: Config) -> TestServer {
        let url = config
            .redis_url
            .clone()
            .expect("REDIS_URL in the test configuration");
        let cluster = meeting_service::cluster::Cluster::connect(&url, &config.redis_prefix)
            .await
            .expect("Redis on 127.0.0.1:6379");
        TestServer::start_with(config, Some(cluster)).await
    }

    async fn start_with(
        config: Config,
        cluster: Option<meeting_service::cluster::Cluster>,
    ) -> TestServer {
        let store = Store::connect(&config.database_url)
            .await
            .expect("database");
        let mut state =
            AppState::new(config, store, None, CancellationToken::new()).expect("state");
        state.cluster = cluster;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let handle = tokio::spawn(meeting_service::run(
            listener,
            state.clone(),
            None,
            std::future::pending(),
        ));
        TestServer {
            addr,
            state,
            http: reqwest::Client::new(),
            handle,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// A token for `user` signed with the server's secret.
    pub fn token(&self, user: &str) -> String {
        self.state
            .jwt
            .mint(
                user,
                &format!("User {user}"),
                None,
                Duration::from_secs(3600),
            )
            .unwrap()
    }

    pub fn expired_token(&self, user: &str) -> String {
        let now = meeting_service::auth::now_secs();
        self.state
            .jwt
            .sign(&Claims {
                sub: user.into(),
                name: user.into(),
                picture: None,
                exp: now - 3600,
                iat: now - 7200,
                grants: Default::default(),
            })
            .unwrap()
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        self.send(self.http.get(self.url(path)), token).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> (u16, Value) {
        self.send(self.http.post(self.url(path)).json(&body), token)
            .await
    }

    pub async fn put(&self, path: &str, token: Option<&str>, body: Value) -> (u16, Value) {
        self.send(self.http.put(self.url(path)).json(&body), token)
            .await
    }

    pub async fn delete(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        self.send(self.http.delete(self.url(path)), token).await
    }

    pub async fn send(&self, req: reqwest::RequestBuilder, token: Option<&str>) -> (u16, Value) {
        let req = match token {
            Some(t) => req.bearer_auth(t),
            None => req,
        };
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("body");
        let json = serde_json::from_str(&text)
            .unwrap_or_else(|_| panic!("not JSON (status {status}): {text}"));
        (status, json)
    }

    /// Waits for the server to stop by itself (a drain ends it), at most `limit`;
    /// returns how long that took.
    pub async fn stopped_within(self, limit: Duration) -> Duration {
        let start = Instant::now();
        let res = tokio::time::timeout(limit, self.handle)
            .await
            .unwrap_or_else(|_| panic!("server did not stop within {limit:?}"));
        res.expect("server task").expect("server result");
        let took = start.elapsed();
        self.state.store.close().await;
        took
    }

    /// Stops the server and waits (bounded) for it and its tasks to finish.
    pub async fn stop(self) {
        self.state.shutdown.cancel();
        let res = tokio::time::timeout(Duration::from_secs(15), self.handle)
            .await
            .expect("server stops within 15 s");
        res.expect("server task").expect("server result");
        self.state.store.close().await;
    }
}

/// Polls `check` every 25 ms until it returns `Some`, or panics after `limit`.
pub async fn wait_for<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The error body's code and field, asserting the common shape.
pub fn error_of(body: &Value) -> (String, Option<String>) {
    assert_eq!(body["success"], false, "error body: {body}");
    let code = body["error"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no error.code in {body}"))
        .to_owned();
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "no error.message in {body}"
    );
    (code, body["error"]["field"].as_str().map(str::to_owned))
}
