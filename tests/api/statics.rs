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
        let resp = app.client.get(app.url(path)).send().await.unwrap();
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
    assert!(
        body.contains("/static/style.css"),
        "the 404 is a styled page"
    );
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
    assert!(
        get.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("max-age")
    );
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
