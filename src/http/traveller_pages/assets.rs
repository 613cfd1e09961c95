//! The pages' stylesheet and script, compiled into the binary: nothing to install or deploy
//! beside it. Their URLs carry a digest of the content, so browsers may keep them a year.

use std::sync::LazyLock;

use actix_web::http::header;
use actix_web::{HttpResponse, get, web};
use sha2::{Digest, Sha256};

const CSS: &str = include_str!("../../../static/app.css");
const JS: &str = include_str!("../../../static/app.js");

fn digest(text: &str) -> String {
    hex::encode(&Sha256::digest(text.as_bytes())[..6])
}

static CSS_URL: LazyLock<String> = LazyLock::new(|| format!("/static/app.css?v={}", digest(CSS)));
static JS_URL: LazyLock<String> = LazyLock::new(|| format!("/static/app.js?v={}", digest(JS)));

pub fn css_url() -> String {
    CSS_URL.clone()
}

pub fn js_url() -> String {
    JS_URL.clone()
}

#[get("/static/{name}")]
pub async fn serve(name: web::Path<String>) -> HttpResponse {
    let (body, kind) = match name.as_str() {
        "app.css" => (CSS, "text/css; charset=utf-8"),
        "app.js" => (JS, "text/javascript; charset=utf-8"),
        _ => return HttpResponse::NotFound().finish(),
    };
    HttpResponse::Ok()
        .content_type(kind)
        .insert_header((header::CACHE_CONTROL, "public, max-age=31536000, immutable"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .body(body)
}
