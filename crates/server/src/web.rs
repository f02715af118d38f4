//! The built-in web client: `web/` embedded in the binary, so that `cargo run` alone
//! serves a working page and a deployment is one file.

use axum::Router;
use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;

const INDEX: &str = include_str!("../../../web/index.html");
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("../../../web/app.js"),
    ),
    (
        "sio.js",
        "text/javascript; charset=utf-8",
        include_str!("../../../web/sio.js"),
    ),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_str!("../../../web/style.css"),
    ),
];

/// `/`, `/m/{roomId}` and `/assets/{file}`.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(index))
        .route("/m/{room}", get(index_for_room))
        .route("/assets/{file}", get(asset))
}

async fn index() -> Response {
    page()
}

async fn index_for_room(Path(_room): Path<String>) -> Response {
    // The page reads the room from its own URL; any code is fine here, the join tells.
    page()
}

fn page() -> Response {
    ([(header::CACHE_CONTROL, "no-cache")], Html(INDEX)).into_response()
}

async fn asset(Path(file): Path<String>) -> Response {
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
