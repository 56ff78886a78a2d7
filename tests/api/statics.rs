//! Static files: only what is under `static/`, fingerprinted, compressed and cached.

use reqwest::StatusCode;

use crate::helpers::spawn_app;

#[tokio::test]
async fn css_script_and_images_are_served_with_their_types() {
    let app = spawn_app().await;
    for (path, kind) in [
        ("/static/style.css", "text/css"),
        ("/static/htmx.min.js", "javascript"),
        ("/static/cabinet.svg", "image/svg+xml"),
        ("/static/favicon.svg", "image/svg+xml"),
    ] {
        let resp = app.get(path).await;
        assert_eq!(resp.status(), StatusCode::OK, "{path}");
        let content_type = resp.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(content_type.contains(kind), "{path}: {content_type}");
        assert_eq!(resp.headers()["x-content-type-options"], "nosniff");
        assert!(!resp.bytes().await.unwrap().is_empty());
    }
}

#[tokio::test]
async fn the_vendored_htmx_is_version_2_0_11() {
    let app = spawn_app().await;
    let body = app.get("/static/htmx.min.js").await.text().await.unwrap();
    assert!(body.contains(r#"version:"2.0.11""#));
}

#[tokio::test]
async fn nothing_outside_static_is_ever_served() {
    let app = spawn_app().await;
    for path in [
        "/static/../Cargo.toml",
        "/static/%2e%2e/Cargo.toml",
        "/static/%2E%2E/%2E%2E/etc/passwd",
        "/static/..%2fCargo.toml",
        "/static/%2fetc%2fpasswd",
        "/static/..%5cCargo.toml",
        "/static/..\\Cargo.toml",
        "/static/%00style.css",
        "/static/.gitkeep",
        "/static/",
        "/static",
    ] {
        let resp = app.get(path).await;
        let status = resp.status();
        let body = resp.text().await.unwrap();
        assert!(
            matches!(
                status,
                StatusCode::NOT_FOUND | StatusCode::FORBIDDEN | StatusCode::BAD_REQUEST
            ),
            "{path}: {status}"
        );
        assert!(
            !body.contains("[package]") && !body.contains("root:"),
            "{path} leaked a file"
        );
    }
}

#[tokio::test]
async fn static_files_refuse_other_methods() {
    let app = spawn_app().await;
    let resp = app
        .client
        .post(app.url("/static/style.css"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn unknown_pages_get_a_generic_404_page() {
    let app = spawn_app().await;
    let resp = app.get("/no-such-page").await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let body = resp.text().await.unwrap();
    assert!(body.contains("Page not found"));
    assert!(body.contains("/static/style."), "the 404 is a styled page");
}

#[tokio::test]
async fn static_files_answer_head_and_revalidate_with_etags() {
    let app = spawn_app().await;
    let head = app
        .client
        .head(app.url("/static/style.css"))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), StatusCode::OK);
    let length: usize = head.headers()["content-length"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(length > 100);
    let get = app.get("/static/style.css").await;
    let etag = get.headers()["etag"].to_str().unwrap().to_owned();
    assert_eq!(get.headers()["cache-control"], "public, no-cache");
    assert_eq!(get.bytes().await.unwrap().len(), length);
    let again = app
        .client
        .get(app.url("/static/style.css"))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    assert!(again.bytes().await.unwrap().is_empty());
}

/// The `/static/…` URLs a page links.
fn static_links(html: &str) -> Vec<String> {
    html.split("\"/static/")
        .skip(1)
        .map(|rest| format!("/static/{}", rest.split('"').next().unwrap()))
        .collect()
}

#[tokio::test]
async fn pages_link_fingerprinted_assets_cached_for_a_year() {
    let app = spawn_app().await;
    let page = app.get("/").await.text().await.unwrap();
    let links = static_links(&page);
    assert!(links.len() >= 3, "{links:?}");
    for link in links {
        // /static/style.<10 hex>.css
        let name = link.rsplit('/').next().unwrap();
        let parts: Vec<&str> = name.split('.').collect();
        let hash = parts[parts.len() - 2];
        assert!(
            hash.len() == 10 && hash.bytes().all(|b| b.is_ascii_hexdigit()),
            "{link}"
        );
        let resp = app.get(&link).await;
        assert_eq!(resp.status(), StatusCode::OK, "{link}");
        assert_eq!(
            resp.headers()["cache-control"],
            "public, max-age=31536000, immutable"
        );
        let plain = link.replace(&format!(".{hash}"), "");
        let fingerprinted = resp.bytes().await.unwrap();
        assert_eq!(
            fingerprinted,
            app.get(&plain).await.bytes().await.unwrap(),
            "{plain}"
        );
    }
    let wrong = app.get("/static/style.0000000000.css").await;
    assert_eq!(wrong.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn text_assets_are_sent_compressed_as_the_client_accepts_with_an_etag_each() {
    use std::io::Read;
    let app = spawn_app().await;
    let fetch = |encoding: &'static str| {
        let request = app.client.get(app.url("/static/htmx.min.js"));
        let request = if encoding.is_empty() {
            request
        } else {
            request.header("accept-encoding", encoding)
        };
        request.send()
    };
    let plain = fetch("").await.unwrap();
    assert!(plain.headers().get("content-encoding").is_none());
    assert_eq!(plain.headers()["vary"], "Accept-Encoding");
    let plain_tag = plain.headers()["etag"].clone();
    let original = plain.bytes().await.unwrap();

    let br = fetch("gzip, deflate, br").await.unwrap();
    assert_eq!(br.headers()["content-encoding"], "br");
    assert_eq!(br.headers()["vary"], "Accept-Encoding");
    let br_tag = br.headers()["etag"].clone();
    let packed = br.bytes().await.unwrap();
    assert!(
        packed.len() * 3 < original.len(),
        "{} of {}",
        packed.len(),
        original.len()
    );
    let mut unpacked = Vec::new();
    brotli::Decompressor::new(&packed[..], 4096)
        .read_to_end(&mut unpacked)
        .unwrap();
    assert_eq!(unpacked, original);

    let gz = fetch("gzip;q=1, br;q=0").await.unwrap();
    assert_eq!(gz.headers()["content-encoding"], "gzip");
    let gz_tag = gz.headers()["etag"].clone();
    let packed = gz.bytes().await.unwrap();
    let mut unpacked = Vec::new();
    flate2::read::GzDecoder::new(&packed[..])
        .read_to_end(&mut unpacked)
        .unwrap();
    assert_eq!(unpacked, original);

    assert!(plain_tag != br_tag && br_tag != gz_tag && plain_tag != gz_tag);
    // A tag revalidates only its own encoding.
    let revalidate = |encoding: &'static str, tag: reqwest::header::HeaderValue| {
        app.client
            .get(app.url("/static/htmx.min.js"))
            .header("accept-encoding", encoding)
            .header("if-none-match", tag)
            .send()
    };
    assert_eq!(
        revalidate("br", br_tag.clone()).await.unwrap().status(),
        StatusCode::NOT_MODIFIED
    );
    assert_eq!(
        revalidate("br", gz_tag.clone()).await.unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(
        revalidate("gzip", gz_tag).await.unwrap().status(),
        StatusCode::NOT_MODIFIED
    );
}
