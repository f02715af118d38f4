//! The configuration's tests: defaults, every refusal, and the values as parsed.

use super::*;

fn cfg(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
    Config::from_vars(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())))
}

#[test]
fn defaults_match_the_seed() {
    let c = cfg(&[]).expect("defaults are valid");
    assert_eq!(c.listen.port(), 3009);
    assert_eq!(c.meeting_ttl, Duration::from_secs(14_400));
    assert_eq!(c.reconnect_grace, Duration::from_secs(20));
    assert_eq!(c.drain_timeout, Duration::from_secs(15));
    assert_eq!(c.max_participants, 50);
    assert_eq!((c.sfu.min_port, c.sfu.max_port), (10_000, 10_100));
    assert!(c.sfu.workers >= 1);
    assert_eq!(c.sfu.log_level, "warn");
    assert!(c.sfu_mode_enabled);
    assert!(c.jwt_secret_is_default);
    assert_eq!(c.database_url, DEFAULT_DATABASE_URL);
    assert!(c.ice.stun_servers.is_empty());
}

#[test]
fn stun_servers_in_numeric_order() {
    let c = cfg(&[
        ("STUN_SERVER_10", "stun:c:3"),
        ("STUN_SERVER_2", "stun:b:2"),
        ("STUN_SERVER_1", "stun:a:1"),
    ])
    .expect("valid");
    assert_eq!(c.ice.stun_servers, ["stun:a:1", "stun:b:2", "stun:c:3"]);
}

#[test]
fn bad_values_name_the_variable() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("MEETING_TTL", "4h")], "MEETING_TTL=\"4h\""),
        (
            &[("RECONNECT_GRACE_SECONDS", "7200")],
            "RECONNECT_GRACE_SECONDS=\"7200\"",
        ),
        (
            &[("RECONNECT_GRACE_SECONDS", "-1")],
            "RECONNECT_GRACE_SECONDS=\"-1\"",
        ),
        (
            &[("DRAIN_TIMEOUT_SECONDS", "0")],
            "DRAIN_TIMEOUT_SECONDS=\"0\"",
        ),
        (
            &[("DRAIN_TIMEOUT_SECONDS", "601")],
            "DRAIN_TIMEOUT_SECONDS=\"601\"",
        ),
        (&[("PORT", "http")], "PORT=\"http\""),
        (
            &[
                ("MEDIASOUP_MIN_PORT", "10100"),
                ("MEDIASOUP_MAX_PORT", "10000"),
            ],
            "inverted",
        ),
        (
            &[
                ("MEDIASOUP_WORKERS", "4"),
                ("MEDIASOUP_MIN_PORT", "10000"),
                ("MEDIASOUP_MAX_PORT", "10001"),
            ],
            "MEDIASOUP_WORKERS gives 4",
        ),
        (
            &[("MEDIASOUP_ANNOUNCED_IP", "my.host")],
            "MEDIASOUP_ANNOUNCED_IP=\"my.host\"",
        ),
        (
            &[("MEDIASOUP_ANNOUNCED_IP", "127.0.0.1")],
            "DO NOT use 127.0.0.1",
        ),
        (
            &[("TURN_SERVER_URL", "http://turn.example.com")],
            "TURN_SERVER_URL",
        ),
        (&[("TURN_SERVER_URL", "turn:t:3478")], "TURN_USERNAME"),
        (&[("STUN_SERVER_1", "stun.l.google.com")], "STUN_SERVER_1"),
        (&[("MONGO_URI", "mongodb://x")], "DATABASE_URL"),
        (&[("NODE_ENV", "production")], "JWT_SECRET is not set"),
        (&[("NODE_ENV", "Production")], "JWT_SECRET is not set"),
        (&[("NODE_ENV", "prod")], "JWT_SECRET is not set"),
        (
            &[("NODE_ENV", "staging")],
            "NODE_ENV=\"staging\" is invalid",
        ),
        (&[("NODE_ENV", "produciton")], "NODE_ENV=\"produciton\""),
        (
            &[("RATE_LIMIT_SOCKET_CHAT", "10")],
            "RATE_LIMIT_SOCKET_CHAT=\"10\" is invalid: expected COUNT/PERIOD",
        ),
        (
            &[("RATE_LIMIT_IP_REST", "0/s")],
            "RATE_LIMIT_IP_REST=\"0/s\"",
        ),
        (
            &[("RATE_LIMIT_USER_JOIN", "5/week")],
            "RATE_LIMIT_USER_JOIN",
        ),
        (&[("TRUST_PROXY", "maybe")], "TRUST_PROXY=\"maybe\""),
        (&[("SFU_MODE_ENABLED", "maybe")], "SFU_MODE_ENABLED"),
        (
            &[
                ("TURN_SERVER_URL", "turn:t:3478"),
                ("TURN_SECRET", "s"),
                ("TURN_CREDENTIAL_TTL", "10"),
            ],
            "TURN_CREDENTIAL_TTL=\"10\"",
        ),
        (&[("DATABASE_URL", "mysql://u:secret@h/db")], "u:***@h"),
        (
            &[("MEDIASOUP_ENABLE_TCP", "udp-only")],
            "MEDIASOUP_ENABLE_TCP=\"udp-only\" is invalid: expected true or false",
        ),
        (
            &[("MEDIASOUP_SINGLE_PORT", "ten-thousand")],
            "MEDIASOUP_SINGLE_PORT=\"ten-thousand\" is invalid: expected a port number from 1024 to 65535",
        ),
        (
            &[("MEDIASOUP_SINGLE_PORT", "80")],
            "MEDIASOUP_SINGLE_PORT=\"80\"",
        ),
        (
            &[("MEDIASOUP_SINGLE_PORT", "70000")],
            "MEDIASOUP_SINGLE_PORT=\"70000\"",
        ),
        (
            &[("MEDIASOUP_SINGLE_PORT", "0")],
            "MEDIASOUP_SINGLE_PORT=\"0\"",
        ),
        (
            &[("MEDIASOUP_SINGLE_PORT", "10000"), ("PORT", "10000")],
            "PORT=\"10000\" is invalid: expected a TCP port other than the SFU's media ports (10000)",
        ),
        (
            &[("MEDIASOUP_WORKERS", "2"), ("PORT", "10001")],
            "PORT=\"10001\"",
        ),
    ];
    for (pairs, needle) in cases {
        let err = cfg(pairs).expect_err("should be refused").to_string();
        assert!(err.contains(needle), "{pairs:?}: {err:?} lacks {needle:?}");
        assert!(!err.contains("secret@"), "password leaked: {err}");
    }
}

#[test]
fn bandwidth_estimation_on_by_default_and_can_be_turned_off() {
    assert!(cfg(&[]).expect("defaults").sfu.bandwidth_estimation);
    let off = cfg(&[("MEDIASOUP_BANDWIDTH_ESTIMATION", "false")]).expect("valid");
    assert!(!off.sfu.bandwidth_estimation);
    let err = cfg(&[("MEDIASOUP_BANDWIDTH_ESTIMATION", "maybe")])
        .expect_err("not a boolean")
        .to_string();
    assert!(err.contains("MEDIASOUP_BANDWIDTH_ESTIMATION"), "{err}");
}

#[test]
fn ice_tcp_on_by_default_and_one_port_mode_ignores_the_range() {
    let c = cfg(&[]).expect("defaults");
    assert!(c.sfu.enable_tcp);
    assert_eq!(c.sfu.single_port, None);
    for off in ["false", "0", "no", "OFF"] {
        assert!(
            !cfg(&[("MEDIASOUP_ENABLE_TCP", off)])
                .expect("valid")
                .sfu
                .enable_tcp,
            "{off}"
        );
    }
    // Eight workers on one port: a range holding two ports is no longer too small.
    let c = cfg(&[
        ("MEDIASOUP_WORKERS", "8"),
        ("MEDIASOUP_MIN_PORT", "10000"),
        ("MEDIASOUP_MAX_PORT", "10001"),
        ("MEDIASOUP_SINGLE_PORT", "40000"),
    ])
    .expect("one-port mode needs no range");
    assert_eq!((c.sfu.workers, c.sfu.single_port), (8, Some(40_000)));
    assert_eq!(c.sfu.media_ports(), [40_000]);
    assert_eq!(c.sfu.media_ports_text(), "40000");
    let c = cfg(&[("MEDIASOUP_WORKERS", "4")]).expect("valid");
    assert_eq!(c.sfu.media_ports(), [10_000, 10_001, 10_002, 10_003]);
    assert_eq!(c.sfu.media_ports_text(), "10000-10003");
    // The HTTP port may equal a media port when ICE-TCP is off, or on another address.
    assert!(
        cfg(&[
            ("MEDIASOUP_SINGLE_PORT", "10000"),
            ("PORT", "10000"),
            ("MEDIASOUP_ENABLE_TCP", "false")
        ])
        .is_ok()
    );
    assert!(
        cfg(&[
            ("PORT", "10000"),
            ("HOST", "127.0.0.1"),
            ("MEDIASOUP_LISTEN_IP", "127.0.0.2")
        ])
        .is_ok()
    );
}

#[test]
fn node_env_values() {
    for (v, env) in [
        ("development", NodeEnv::Development),
        ("DEV", NodeEnv::Development),
        ("test", NodeEnv::Test),
        ("Production", NodeEnv::Production),
        ("PROD", NodeEnv::Production),
    ] {
        let c = cfg(&[("NODE_ENV", v), ("JWT_SECRET", "0123456789abcdef0123")]).expect("valid");
        assert_eq!(c.node_env, env, "{v}");
        assert_eq!(c.is_production(), env == NodeEnv::Production, "{v}");
    }
    assert_eq!(cfg(&[]).expect("defaults").node_env, NodeEnv::Development);
}

#[test]
fn rates_parse() {
    let r = |t| Rate::parse(t).expect(t).expect("a rate");
    assert_eq!(r("20/10s").count.get(), 20);
    assert_eq!(r("20/10s").per, Duration::from_secs(10));
    assert_eq!(r("30/min").per, Duration::from_secs(60));
    assert_eq!(r("5/s").per, Duration::from_secs(1));
    assert_eq!(r("100/2h").per, Duration::from_secs(7200));
    assert_eq!(Rate::parse("OFF"), Ok(None));
    for bad in [
        "", "10", "/s", "0/s", "x/s", "10/", "10/0s", "10/2d", "10/s/s", "-1/s",
    ] {
        assert!(Rate::parse(bad).is_err(), "{bad:?}");
    }
    let c = cfg(&[]).expect("defaults");
    assert_eq!(c.limits.socket_chat, Some(r("10/10s")));
    assert_eq!(c.trust_proxy, 0);
    let c = cfg(&[("RATE_LIMIT_IP_REST", "off"), ("TRUST_PROXY", "true")]).expect("valid");
    assert_eq!((c.limits.ip_rest, c.trust_proxy), (None, 1));
}

#[test]
fn loopback_allowed_when_asked() {
    let c = cfg(&[
        ("MEDIASOUP_ANNOUNCED_IP", "127.0.0.1"),
        ("MEDIASOUP_ALLOW_LOOPBACK", "true"),
    ])
    .expect("allowed");
    assert_eq!(c.sfu.announced_ip, IpAddr::V4(Ipv4Addr::LOCALHOST));
}

/// The seed's values: `turns://host:5349` is taken as `turns:host:5349`, a short secret
/// and the `redis://...` placeholder start in development with a warning each, and are
/// refused in production.
#[test]
fn the_seeds_values_start_with_warnings_in_development() {
    let c = cfg(&[
        (
            "TURN_SERVER_URL",
            "turns://turn.metered.ca:5349, turn:t2:3478?transport=tcp",
        ),
        ("TURN_USERNAME", "u"),
        ("TURN_CREDENTIAL", "c"),
        ("JWT_SECRET", "your-secret-key"),
        ("REDIS_URL", "redis://..."),
    ])
    .expect("the seed's .env starts in development");
    let turn = c.ice.turn.as_ref().expect("TURN configured");
    assert_eq!(
        turn.urls,
        ["turns:turn.metered.ca:5349", "turn:t2:3478?transport=tcp"]
    );
    assert_eq!(c.jwt_secret, "your-secret-key");
    assert!(c.redis_url.is_none(), "the placeholder is not an address");
    assert_eq!(
        c.warnings,
        [
            ConfigWarning::ShortJwtSecret { len: 15 },
            ConfigWarning::TurnUrlNormalised {
                given: "turns://turn.metered.ca:5349".into(),
                used: "turns:turn.metered.ca:5349".into(),
            },
            ConfigWarning::PlaceholderIgnored {
                var: "REDIS_URL",
                value: "redis://...".into(),
            },
        ]
    );
    assert!(
        c.warnings[1]
            .to_string()
            .contains("using \"turns:turn.metered.ca:5349\"")
    );
    // Nothing to warn about: no warning.
    assert!(
        cfg(&[("JWT_SECRET", "0123456789abcdef")])
            .expect("as expected")
            .warnings
            .is_empty()
    );

    let production = |extra: (&str, &str)| {
        cfg(&[
            ("NODE_ENV", "production"),
            ("JWT_SECRET", "0123456789abcdef-long"),
            extra,
        ])
        .map(|c| c.warnings)
        .map_err(|e| e.to_string())
    };
    let short = production(("JWT_SECRET", "your-secret-key")).expect_err("refused");
    assert!(
        short.contains("JWT_SECRET") && short.contains("at least 16"),
        "{short}"
    );
    let placeholder = production(("JWT_SECRET", "<strong-random-secret>")).expect_err("refused");
    assert!(placeholder.contains("placeholder"), "{placeholder}");
    let redis = production(("REDIS_URL", "<redis-cloud-uri>")).expect_err("refused");
    assert!(redis.contains("REDIS_URL"), "{redis}");
    // The seed's Render TURN spelling is fine in production too (normalised).
    let turns = cfg(&[
        ("NODE_ENV", "production"),
        ("JWT_SECRET", "0123456789abcdef-long"),
        ("TURN_SERVER_URL", "turns://turn.metered.ca:5349"),
        ("TURN_USERNAME", "u"),
        ("TURN_CREDENTIAL", "c"),
    ])
    .expect("production with the seed's TURN URL");
    assert_eq!(
        turns.ice.turn.expect("as expected").urls,
        ["turns:turn.metered.ca:5349"]
    );
    // Still refused: not a TURN URL at all, or a path after the host.
    for bad in ["turns://", "turn://h:1/path", "turns:", "turn:u@h:1"] {
        let e = cfg(&[("TURN_SERVER_URL", bad), ("TURN_SECRET", "s")]).expect_err("refused");
        assert!(e.to_string().contains("TURN_SERVER_URL"), "{bad}: {e}");
    }
}

#[test]
fn claim_settings() {
    let c =
        cfg(&[("JWT_USER_CLAIM", "userId"), ("JWT_NAME_CLAIM", "fullName")]).expect("as expected");
    assert_eq!(c.jwt_claims.user(), ["userId", "sub", "id", "_id"]);
    assert_eq!(
        c.jwt_claims.name(),
        ["fullName", "name", "username", "displayName"]
    );
    let d = cfg(&[]).expect("as expected");
    assert_eq!(d.jwt_claims.user(), ["sub", "userId", "id", "_id"]);
    for bad in ["user id", "user.id", &"x".repeat(65)] {
        let e = cfg(&[("JWT_USER_CLAIM", bad)]).expect_err("refused");
        assert!(e.to_string().contains("JWT_USER_CLAIM"), "{bad}: {e}");
    }
}

#[test]
fn metrics_logs_and_webhooks() {
    let c = cfg(&[]).expect("defaults");
    assert!(c.observe.metrics_enabled);
    assert_eq!(c.observe.metrics_port, None);
    assert_eq!(c.observe.log_format, LogFormat::Text);
    assert!(c.observe.webhook_urls.is_empty());

    let c = cfg(&[
        ("METRICS_ENABLED", "off"),
        ("METRICS_PORT", "9464"),
        ("LOG_FORMAT", "JSON"),
        (
            "WEBHOOK_URL",
            "https://a.example.com/hook, http://10.0.0.2:8080/x",
        ),
        ("WEBHOOK_SECRET", "0123456789abcdef"),
    ])
    .expect("valid");
    assert!(!c.observe.metrics_enabled);
    assert_eq!(c.observe.metrics_port, Some(9464));
    assert_eq!(c.observe.log_format, LogFormat::Json);
    assert_eq!(
        c.observe.webhook_urls,
        ["https://a.example.com/hook", "http://10.0.0.2:8080/x"]
    );

    let refused: &[(&[(&str, &str)], &str)] = &[
        (&[("METRICS_PORT", "3009")], "METRICS_PORT=\"3009\""),
        (&[("METRICS_PORT", "0")], "METRICS_PORT=\"0\""),
        (&[("METRICS_ENABLED", "maybe")], "METRICS_ENABLED=\"maybe\""),
        (&[("LOG_FORMAT", "xml")], "LOG_FORMAT=\"xml\""),
        (
            &[
                ("WEBHOOK_URL", "ftp://x/y"),
                ("WEBHOOK_SECRET", "0123456789abcdef"),
            ],
            "WEBHOOK_URL=\"ftp://x/y\"",
        ),
        (
            &[("WEBHOOK_URL", "https://a.example.com/hook")],
            "WEBHOOK_SECRET",
        ),
        (
            &[
                ("WEBHOOK_URL", "https://a.example.com/hook"),
                ("WEBHOOK_SECRET", "short"),
            ],
            "WEBHOOK_SECRET",
        ),
    ];
    for (vars, needle) in refused {
        let err = cfg(vars).expect_err("refused").to_string();
        assert!(err.contains(needle), "{vars:?}: {err}");
    }
}
