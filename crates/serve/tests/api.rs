//! API tests on the router in-process (no sockets): health, OpenAPI, prediction by multipart
//! and raw body, volumes with ground truth, and bad uploads getting 4xx JSON.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use tower::ServiceExt;
use tumorscan_serve::{router, Limits};

fn app(limits: Limits) -> axum::Router {
    let bundle = tumorscan_predict::ModelBundle::builtin(&burn_device()).expect("built-in model");
    router(bundle, limits, Some(samples_dir()))
}

fn burn_device() -> tumorscan_predict::models::Device {
    tumorscan_predict::models::Device::flex()
}

fn samples_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../samples/TCGA_CS_5393_19990606")
}

fn sample(n: u32, mask: bool) -> Vec<u8> {
    std::fs::read(samples_dir().join(format!("TCGA_CS_5393_19990606_{n}{}.tif", if mask { "_mask" } else { "" }))).unwrap()
}

fn multipart(files: &[(&str, Vec<u8>)]) -> (String, Vec<u8>) {
    let boundary = "XtumorscanX";
    let mut body = Vec::new();
    for (name, bytes) in files {
        body.extend(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n").as_bytes());
        body.extend(bytes);
        body.extend(b"\r\n");
    }
    body.extend(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

async fn call(app: axum::Router, req: Request<Body>) -> (StatusCode, serde_json::Value) {
    let resp = app.oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap();
    (status, serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null))
}

#[tokio::test]
async fn health_and_openapi() {
    let (s, v) = call(app(Limits::default()), Request::get("/health").body(Body::empty()).unwrap()).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["status"], "ok");
    let (s, v) = call(app(Limits::default()), Request::get("/openapi.json").body(Body::empty()).unwrap()).await;
    assert_eq!(s, StatusCode::OK);
    assert!(v["paths"]["/v1/predict"]["post"].is_object());
}

#[tokio::test]
async fn predicts_multipart_and_raw_bodies() {
    let (ct, body) = multipart(&[("TCGA_CS_5393_19990606_8.tif", sample(8, false))]);
    let (s, v) = call(
        app(Limits::default()),
        Request::post("/v1/predict")
            .header("content-type", ct)
            .body(Body::from(body))
            .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    for key in ["tumor_probability", "has_tumor", "tumor_pixels", "bbox", "mask_png"] {
        assert!(v.get(key).is_some(), "{key} missing: {v}");
    }
    assert_eq!(v["width"], 256);
    let (s, v) = call(
        app(Limits::default()),
        Request::post("/v1/predict")
            .header("content-type", "image/tiff")
            .body(Body::from(sample(8, false)))
            .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
}

#[tokio::test]
async fn volume_with_ground_truth_is_scored() {
    let files: Vec<(String, Vec<u8>)> = (7..=9)
        .flat_map(|n| {
            [
                (format!("TCGA_CS_5393_19990606_{n}.tif"), sample(n, false)),
                (format!("TCGA_CS_5393_19990606_{n}_mask.tif"), sample(n, true)),
            ]
        })
        .collect();
    let refs: Vec<(&str, Vec<u8>)> = files.iter().map(|(n, b)| (n.as_str(), b.clone())).collect();
    let (ct, body) = multipart(&refs);
    let (s, v) = call(
        app(Limits::default()),
        Request::post("/v1/predict/volume")
            .header("content-type", ct)
            .body(Body::from(body))
            .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let arr = v.as_array().unwrap();
    assert_eq!(arr.len(), 3);
    assert!(arr.iter().all(|r| r["dice"].is_number() && r["truth_png"].is_string()));
}

#[tokio::test]
async fn bad_uploads_get_4xx_json() {
    let a = || {
        app(Limits {
            max_body_bytes: 1024 * 1024,
            ..Limits::default()
        })
    };
    let (ct, body) = multipart(&[("x.png", b"definitely not an image".to_vec())]);
    let (s, v) = call(
        a(),
        Request::post("/v1/predict")
            .header("content-type", ct)
            .body(Body::from(body))
            .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(v["error"].as_str().unwrap().contains("x.png"));
    let (s, v) = call(
        a(),
        Request::post("/v1/predict")
            .header("content-type", "text/plain")
            .body(Body::from("hi"))
            .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(v["error"].is_string());
    let (s, _) = call(
        a(),
        Request::post("/v1/predict")
            .header("content-type", "image/png")
            .body(Body::from(vec![0u8; 2 * 1024 * 1024]))
            .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
    let (ct, body) = multipart(&[]);
    let (s, v) = call(
        a(),
        Request::post("/v1/predict")
            .header("content-type", ct)
            .body(Body::from(body))
            .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let (s, _) = call(a(), Request::get("/samples/..%2F..%2FCargo.toml").body(Body::empty()).unwrap()).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}
