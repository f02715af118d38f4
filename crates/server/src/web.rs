//! The built-in web client: `web/` embedded in the binary, so that `cargo run` alone
//! serves a working page and a deployment is one file.

use axum::Router;
use axum::extract::{Path, RawQuery};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;

const INDEX: &str = include_str!("../../../web/index.html");
const JS: &str = "text/javascript; charset=utf-8";
/// Every file under `/assets/`: name, `Content-Type`, body. The page's ES modules live in
/// `web/app/` (a module's MIME type must be JavaScript or the browser refuses it); the
/// test below fails when a file there is missing from this list.
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "app/activity.js",
        JS,
        include_str!("../../../web/app/activity.js"),
    ),
    ("app/api.js", JS, include_str!("../../../web/app/api.js")),
    ("app/chat.js", JS, include_str!("../../../web/app/chat.js")),
    (
        "app/controls.js",
        JS,
        include_str!("../../../web/app/controls.js"),
    ),
    (
        "app/devices.js",
        JS,
        include_str!("../../../web/app/devices.js"),
    ),
    (
        "app/events.js",
        JS,
        include_str!("../../../web/app/events.js"),
    ),
    ("app/host.js", JS, include_str!("../../../web/app/host.js")),
    ("app/ice.js", JS, include_str!("../../../web/app/ice.js")),
    (
        "app/identity.js",
        JS,
        include_str!("../../../web/app/identity.js"),
    ),
    (
        "app/invite.js",
        JS,
        include_str!("../../../web/app/invite.js"),
    ),
    ("app/join.js", JS, include_str!("../../../web/app/join.js")),
    (
        "app/keyboard.js",
        JS,
        include_str!("../../../web/app/keyboard.js"),
    ),
    (
        "app/layout.js",
        JS,
        include_str!("../../../web/app/layout.js"),
    ),
    (
        "app/lifecycle.js",
        JS,
        include_str!("../../../web/app/lifecycle.js"),
    ),
    (
        "app/lobby.js",
        JS,
        include_str!("../../../web/app/lobby.js"),
    ),
    (
        "app/local-media.js",
        JS,
        include_str!("../../../web/app/local-media.js"),
    ),
    ("app/main.js", JS, include_str!("../../../web/app/main.js")),
    ("app/mesh.js", JS, include_str!("../../../web/app/mesh.js")),
    (
        "app/participants.js",
        JS,
        include_str!("../../../web/app/participants.js"),
    ),
    (
        "app/people.js",
        JS,
        include_str!("../../../web/app/people.js"),
    ),
    (
        "app/quality.js",
        JS,
        include_str!("../../../web/app/quality.js"),
    ),
    (
        "app/remote-media.js",
        JS,
        include_str!("../../../web/app/remote-media.js"),
    ),
    (
        "app/roles.js",
        JS,
        include_str!("../../../web/app/roles.js"),
    ),
    (
        "app/routing.js",
        JS,
        include_str!("../../../web/app/routing.js"),
    ),
    (
        "app/reconnect.js",
        JS,
        include_str!("../../../web/app/reconnect.js"),
    ),
    (
        "app/recording.js",
        JS,
        include_str!("../../../web/app/recording.js"),
    ),
    ("app/sfu.js", JS, include_str!("../../../web/app/sfu.js")),
    (
        "app/state.js",
        JS,
        include_str!("../../../web/app/state.js"),
    ),
    (
        "app/tiles.js",
        JS,
        include_str!("../../../web/app/tiles.js"),
    ),
    ("app/ui.js", JS, include_str!("../../../web/app/ui.js")),
    ("sio.js", JS, include_str!("../../../web/sio.js")),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_str!("../../../web/style.css"),
    ),
];

/// `/`, `/m/{roomId}`, `/assets/{file}` and `/assets/app/{file}`.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(index))
        .route("/m/{room}", get(index_for_room))
        .route("/assets/{file}", get(asset))
        .route("/assets/app/{file}", get(app_module))
}

async fn index() -> Response {
    page()
}

/// The page reads the room from its own URL. A code spelled otherwise than its
/// canonical form (`/m/u5hek92qjm`) is redirected there, query kept, so the page, its
/// share link and its join all use the id [`crate::room_code::normalise`] makes of it.
/// Anything else is served as is: the join tells whether such a meeting exists.
async fn index_for_room(Path(room): Path<String>, RawQuery(query): RawQuery) -> Response {
    match crate::room_code::normalise(&room) {
        Some(id) if id.as_str() != room => {
            let query = query.map(|q| format!("?{q}")).unwrap_or_default();
            Redirect::permanent(&format!("/m/{id}{query}")).into_response()
        }
        _ => page(),
    }
}

fn page() -> Response {
    ([(header::CACHE_CONTROL, "no-cache")], Html(INDEX)).into_response()
}

async fn app_module(Path(file): Path<String>) -> Response {
    serve(&format!("app/{file}"))
}

async fn asset(Path(file): Path<String>) -> Response {
    serve(&file)
}

fn serve(file: &str) -> Response {
    match ASSETS.iter().find(|(name, _, _)| *name == file) {
        Some((_, mime, body)) => (
            [
                (header::CONTENT_TYPE, *mime),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            *body,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no such asset").into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::{ASSETS, INDEX};

    /// A module added to `web/app/` but not to `ASSETS` would be a 404 and a blank page;
    /// one missing from the page's `modulepreload` links would load one import level late.
    #[test]
    fn every_web_app_module_is_served() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../web/app");
        let mut files: Vec<String> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
            .map(|e| {
                e.expect("directory entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        files.sort();
        assert!(
            files.iter().any(|f| f == "main.js"),
            "web/app/main.js exists"
        );
        for f in &files {
            let name = format!("app/{f}");
            let entry = ASSETS.iter().find(|(n, _, _)| *n == name);
            assert!(
                entry.is_some(),
                "web/app/{f} is not listed in web.rs ASSETS"
            );
            assert!(entry.is_some_and(|(_, mime, _)| mime.starts_with("text/javascript")));
            let preload = format!(r#"<link rel="modulepreload" href="/assets/app/{f}">"#);
            assert!(INDEX.contains(&preload), "web/index.html lacks {preload}");
        }
    }
}
