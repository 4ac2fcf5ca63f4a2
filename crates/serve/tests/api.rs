//! API tests on the router in-process: health, OpenAPI, prediction by multipart
//! and raw body, volumes with ground truth, bad uploads getting 4xx JSON, size limits checked
//! before decoding; and over a real socket, slow clients cut off.

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

fn post(path: &str, content_type: &str, body: Vec<u8>) -> Request<Body> {
    Request::post(path)
        .header("content-type", content_type)
        .body(Body::from(body))
        .unwrap()
}

fn error_text(v: &serde_json::Value) -> &str {
    v["error"].as_str().unwrap_or_else(|| panic!("no JSON error: {v}"))
}

/// A grayscale PNG of `w` x `h` zeros: compresses to a few KB whatever its size.
fn zeros_png(w: u32, h: u32) -> Vec<u8> {
    let mut buf = std::io::Cursor::new(Vec::new());
    image::DynamicImage::ImageLuma8(image::GrayImage::new(w, h))
        .write_to(&mut buf, image::ImageFormat::Png)
        .unwrap();
    buf.into_inner()
}

#[tokio::test]
async fn oversized_images_and_too_many_files_are_refused_before_decoding() {
    // One image over the per-image pixel limit: 422, read from its header.
    let bomb = zeros_png(2048, 1024);
    assert!(bomb.len() < 20_000);
    let (ct, body) = multipart(&[("bomb.png", bomb.clone())]);
    let (s, v) = call(app(Limits::default()), post("/v1/predict/volume", &ct, body)).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(
        error_text(&v).contains("bomb.png") && error_text(&v).contains("--max-image-pixels"),
        "{v}"
    );
    let (s, v) = call(app(Limits::default()), post("/v1/predict", "image/png", bomb)).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");

    // More files than allowed: 413 naming the flag.
    let few = || {
        app(Limits {
            max_files: 3,
            ..Limits::default()
        })
    };
    let tiny = zeros_png(1, 1);
    let files: Vec<(String, Vec<u8>)> = (0..4).map(|i| (format!("s_{i}.png"), tiny.clone())).collect();
    let refs: Vec<(&str, Vec<u8>)> = files.iter().map(|(n, b)| (n.as_str(), b.clone())).collect();
    let (ct, body) = multipart(&refs);
    let (s, v) = call(few(), post("/v1/predict/volume", &ct, body)).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{v}");
    assert!(error_text(&v).contains("--max-files"), "{v}");
    let (ct, body) = multipart(&refs[..3]);
    let (s, v) = call(few(), post("/v1/predict/volume", &ct, body)).await;
    assert_eq!(s, StatusCode::OK, "{v}");

    // Images each within the limit but too many pixels together: 413.
    let tight = Limits {
        max_request_pixels: 2 * 256 * 256 - 1,
        ..Limits::default()
    };
    let (ct, body) = multipart(&[
        ("TCGA_CS_5393_19990606_8.tif", sample(8, false)),
        ("TCGA_CS_5393_19990606_9.tif", sample(9, false)),
    ]);
    let (s, v) = call(app(tight), post("/v1/predict/volume", &ct, body)).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{v}");
    assert!(error_text(&v).contains("--max-request-pixels"), "{v}");
}

#[tokio::test]
async fn every_error_is_json_with_the_right_status() {
    // Not multipart, or no content type at all: 415.
    for (path, ct) in [
        ("/v1/predict/volume", Some("text/plain")),
        ("/v1/predict/volume", None),
        ("/v1/predict", None),
    ] {
        let mut req = Request::post(path);
        if let Some(ct) = ct {
            req = req.header("content-type", ct);
        }
        let (s, v) = call(app(Limits::default()), req.body(Body::from("hello")).unwrap()).await;
        assert_eq!(s, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{path} {ct:?}: {v}");
        error_text(&v);
    }
    // Multipart content type with an empty or boundary-less body: 400.
    let (s, v) = call(
        app(Limits::default()),
        post("/v1/predict/volume", "multipart/form-data; boundary=XtumorscanX", Vec::new()),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    error_text(&v);
    let (s, v) = call(
        app(Limits::default()),
        post("/v1/predict/volume", "multipart/form-data", b"x".to_vec()),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    error_text(&v);
    // Unknown path: 404; wrong method: 405 with its allow header.
    let (s, v) = call(app(Limits::default()), Request::get("/nope").body(Body::empty()).unwrap()).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    error_text(&v);
    let resp = app(Limits::default())
        .oneshot(Request::get("/v1/predict").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(resp.headers()["allow"], "POST");
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap();
    let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    error_text(&v);
}

#[tokio::test]
async fn media_types_are_case_insensitive() {
    let (s, v) = call(app(Limits::default()), post("/v1/predict", "IMAGE/TIFF", sample(8, false))).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (ct, body) = multipart(&[("TCGA_CS_5393_19990606_8.tif", sample(8, false))]);
    let ct = ct.replace("multipart/form-data", "Multipart/Form-Data");
    for path in ["/v1/predict", "/v1/predict/volume"] {
        let (s, v) = call(app(Limits::default()), post(path, &ct, body.clone())).await;
        assert_eq!(s, StatusCode::OK, "{path}: {v}");
    }
}

#[tokio::test]
async fn masks_are_scored_or_refused_never_ignored() {
    // /v1/predict scores a slice's own mask.
    let (ct, body) = multipart(&[
        ("TCGA_CS_5393_19990606_8.tif", sample(8, false)),
        ("TCGA_CS_5393_19990606_8_mask.tif", sample(8, true)),
    ]);
    let (s, v) = call(app(Limits::default()), post("/v1/predict", &ct, body)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(v["dice"].is_number() && v["truth_png"].is_string(), "{v}");
    // A mask whose slice was not sent: 400 naming it, on both endpoints.
    let (ct, body) = multipart(&[
        ("TCGA_CS_5393_19990606_8.tif", sample(8, false)),
        ("TCGA_CS_5393_19990606_9_mask.tif", sample(9, true)),
    ]);
    for path in ["/v1/predict", "/v1/predict/volume"] {
        let (s, v) = call(app(Limits::default()), post(path, &ct, body.clone())).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{path}: {v}");
        assert!(error_text(&v).contains("TCGA_CS_5393_19990606_9_mask.tif"), "{v}");
    }
}

#[tokio::test]
async fn openapi_lists_every_route_and_samples_have_image_types() {
    let (_, v) = call(app(Limits::default()), Request::get("/openapi.json").body(Body::empty()).unwrap()).await;
    for path in [
        "/",
        "/health",
        "/openapi.json",
        "/samples/{name}",
        "/v1/predict",
        "/v1/predict/volume",
    ] {
        assert!(v["paths"][path].is_object(), "{path} missing");
    }
    assert!(v["paths"]["/v1/predict"]["post"]["requestBody"]["content"]["application/octet-stream"].is_object());
    for code in ["413", "415", "422", "503"] {
        assert!(v["paths"]["/v1/predict/volume"]["post"]["responses"][code].is_object(), "{code}");
    }
    let resp = app(Limits::default())
        .oneshot(Request::get("/samples/TCGA_CS_5393_19990606_8.tif").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "image/tiff");
}

/// Over a real socket: a client that never finishes its headers, or never sends anything, is
/// disconnected after the header timeout; one that never finishes its body gets 408; the server
/// still answers others and shuts down when told to.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_are_cut_off() {
    use std::time::{Duration, Instant};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let limits = Limits {
        header_timeout: Duration::from_secs(1),
        body_timeout: Duration::from_secs(1),
        ..Limits::default()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let bundle = tumorscan_predict::ModelBundle::builtin(&burn_device()).unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(tumorscan_serve::serve_until(listener, bundle, limits, None, async {
        let _ = stopped.await;
    }));

    // Sends `request`, then reads until the server closes; returns what it said and when.
    async fn exchange(addr: std::net::SocketAddr, request: &[u8]) -> (String, Duration) {
        let mut sock = tokio::net::TcpStream::connect(addr).await.unwrap();
        sock.write_all(request).await.unwrap();
        let t0 = Instant::now();
        let mut out = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(10), sock.read_to_end(&mut out)).await;
        assert!(read.is_ok(), "still connected after 10 s: {}", String::from_utf8_lossy(&out));
        (String::from_utf8_lossy(&out).into_owned(), t0.elapsed())
    }

    let (partial, idle, body) = tokio::join!(
        exchange(addr, b"GET /health HTTP/1.1\r\nHost: x\r\n"),
        exchange(addr, b""),
        exchange(
            addr,
            b"POST /v1/predict/volume HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\nContent-Length: 1000\r\n\r\n--b\r\n",
        ),
    );
    // Each was cut off (`exchange` waits 10 s at most, against the 1 s limits); no bound on how
    // soon, which a loaded CI machine would make flaky.
    for (what, (said, _)) in [("partial headers", partial), ("idle", idle)] {
        assert!(said.is_empty() || said.starts_with("HTTP/1.1 408"), "{what}: {said}");
    }
    let (said, _) = body;
    assert!(said.starts_with("HTTP/1.1 408") && said.contains("--body-timeout"), "{said}");

    let (said, _) = exchange(addr, b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await;
    assert!(said.starts_with("HTTP/1.1 200") && said.contains("\"ok\""), "{said}");
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("server did not shut down")
        .unwrap()
        .unwrap();
}

/// The results of `files` sent to /v1/predict/volume, by name.
async fn volume(files: &[(String, Vec<u8>)]) -> (StatusCode, serde_json::Value) {
    let refs: Vec<(&str, Vec<u8>)> = files.iter().map(|(n, b)| (n.as_str(), b.clone())).collect();
    let (ct, body) = multipart(&refs);
    call(app(Limits::default()), post("/v1/predict/volume", &ct, body)).await
}

fn by_name(v: &serde_json::Value) -> std::collections::BTreeMap<String, serde_json::Value> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|r| (r["name"].as_str().unwrap().to_string(), r.clone()))
        .collect()
}

/// Two patients in one request were sorted into one volume by slice number alone (interleaved),
/// normalised together, and the largest-3D-component clean-up erased one patient's tumour.
/// Now each patient is predicted as if sent alone, with a note.
#[tokio::test]
async fn two_patients_in_one_request_are_predicted_apart() {
    // Two "patients" cut from the sample: A = its slices 8-10, B = its slices 15-17 numbered 8-10.
    let patient = |name: &str, from: u32| -> Vec<(String, Vec<u8>)> {
        (0..3)
            .flat_map(|i| {
                [
                    (format!("{name}_{}.tif", 8 + i), sample(from + i, false)),
                    (format!("{name}_{}_mask.tif", 8 + i), sample(from + i, true)),
                ]
            })
            .collect()
    };
    let (a, b) = (patient("PATIENT_A", 8), patient("PATIENT_B", 15));
    let (s, alone_a) = volume(&a).await;
    assert_eq!(s, StatusCode::OK, "{alone_a}");
    let (_, alone_b) = volume(&b).await;
    let both: Vec<(String, Vec<u8>)> = a.iter().zip(&b).flat_map(|(x, y)| [x.clone(), y.clone()]).collect();
    let (s, together) = volume(&both).await;
    assert_eq!(s, StatusCode::OK, "{together}");
    let together = by_name(&together);
    assert_eq!(together.len(), 6);
    let mut tumour = 0;
    for (name, alone) in by_name(&alone_a).into_iter().chain(by_name(&alone_b)) {
        let got = &together[&name];
        for key in ["mask_png", "tumor_probability", "has_tumor", "dice"] {
            assert_eq!(got[key], alone[key], "{name} {key}");
        }
        let notes = got["notes"].to_string();
        assert!(notes.contains("one of 2 patients"), "{name}: {notes}");
        tumour += usize::from(alone["has_tumor"] == true);
    }
    assert!(tumour >= 2, "the comparison needs tumour slices: {tumour}");
}

/// Masks pair in any letter case and format, as `predict` pairs them; an upper-case `_MASK`
/// was taken as a slice and predicted.
#[tokio::test]
async fn masks_pair_in_any_letter_case_and_format() {
    let files = vec![
        ("TCGA_CS_5393_19990606_9.tif".to_string(), sample(9, false)),
        ("TCGA_CS_5393_19990606_9_MASK.tif".to_string(), sample(9, true)),
        ("TCGA_CS_5393_19990606_10.TIF".to_string(), sample(10, false)),
        ("tcga_cs_5393_19990606_10_mask.tif".to_string(), sample(10, true)),
    ];
    let (s, v) = volume(&files).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let arr = v.as_array().unwrap();
    assert_eq!(arr.len(), 2, "{v}");
    assert!(arr.iter().all(|r| r["dice"].as_f64().is_some_and(|d| d > 0.5)), "{v}");
}

/// Two slices of one name (whatever the case or format) could not be told apart in the reply,
/// and a mask would score whichever came first: refused, as is an empty file.
#[tokio::test]
async fn slices_sent_twice_and_empty_files_are_refused() {
    for second in ["TCGA_CS_5393_19990606_9.tif", "tcga_cs_5393_19990606_9.png"] {
        let files = vec![
            ("TCGA_CS_5393_19990606_9.tif".to_string(), sample(9, false)),
            (second.to_string(), sample(10, false)),
        ];
        let (s, v) = volume(&files).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
        assert!(error_text(&v).contains("a second slice named"), "{v}");
    }
    let (s, v) = volume(&[("TCGA_CS_5393_19990606_9.tif".to_string(), Vec::new())]).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert!(error_text(&v).contains("empty file"), "{v}");
    // A client's full path is reduced to the file name, so the mask still pairs.
    let files = vec![
        (r"C:\scans\TCGA_CS_5393_19990606_9.tif".to_string(), sample(9, false)),
        (r"C:\scans\TCGA_CS_5393_19990606_9_mask.tif".to_string(), sample(9, true)),
    ];
    let (s, v) = volume(&files).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v[0]["name"], "TCGA_CS_5393_19990606_9.tif");
    assert!(v[0]["dice"].is_number(), "{v}");
}

/// A raw body that breaks off was reported as over the size limit (413).
#[tokio::test]
async fn a_broken_raw_body_is_a_bad_request_not_too_large() {
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        vec![Ok(sample(9, false)[..100].to_vec()), Err(std::io::Error::other("connection reset"))];
    let body = Body::from_stream(futures_util::stream::iter(chunks));
    let req = Request::post("/v1/predict")
        .header("content-type", "image/tiff")
        .body(body)
        .unwrap();
    let (s, v) = call(app(Limits::default()), req).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert!(error_text(&v).contains("could not be read"), "{v}");
}

/// Request bodies in memory are bounded: with one inference slot, two requests may hold their
/// bodies; a third waits and gets 503 with Retry-After, and is served once one ends.
#[tokio::test]
async fn bodies_held_in_memory_are_bounded() {
    use std::time::Duration;
    let limits = Limits {
        max_concurrent: 1,
        queue_timeout: Duration::from_millis(300),
        body_timeout: Duration::from_secs(30),
        ..Limits::default()
    };
    let app = app(limits);
    // Two uploads that never finish sending.
    let stalled = || {
        let body = Body::from_stream(futures_util::stream::pending::<Result<Vec<u8>, std::io::Error>>());
        Request::post("/v1/predict")
            .header("content-type", "image/tiff")
            .body(body)
            .unwrap()
    };
    let first = tokio::spawn(app.clone().oneshot(stalled()));
    let second = tokio::spawn(app.clone().oneshot(stalled()));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let resp = app
        .clone()
        .oneshot(post("/v1/predict", "image/tiff", sample(9, false)))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(resp.headers().contains_key("retry-after"));
    first.abort();
    second.abort();
    let _ = (first.await, second.await);
    let (s, v) = call(app, post("/v1/predict", "image/tiff", sample(9, false))).await;
    assert_eq!(s, StatusCode::OK, "{v}");
}

/// `/v1/predict` reads one 2D slice: a NIfTI or DICOM file sent there is named, and sent on to
/// `/v1/predict/volume` (it got "not a readable image: The image format could not be determined").
#[tokio::test]
async fn volume_formats_sent_to_the_slice_route_are_named() {
    let mut nifti = vec![0u8; 352];
    nifti[344..348].copy_from_slice(b"n+1\0");
    let mut dicom = vec![0u8; 132];
    dicom[128..132].copy_from_slice(b"DICM");
    for (bytes, format) in [(nifti, "NIfTI"), (dicom, "DICOM"), (vec![0x1f, 0x8b, 8, 0], "gzip")] {
        let (s, v) = call(app(Limits::default()), post("/v1/predict", "application/octet-stream", bytes)).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{format}: {v}");
        assert!(
            error_text(&v).contains(format) && error_text(&v).contains("/v1/predict/volume"),
            "{format}: {v}"
        );
    }
}

/// The sample patient's 20 slices as NIfTI-1 files without orientation (row r of slice z is
/// voxel row 255 - r): a 4D uint8 volume of the three sequences, and its uint8 mask volume.
fn sample_as_nifti() -> (Vec<u8>, Vec<u8>) {
    let (image, mask, _) = sample_as_nifti_files();
    (image, mask)
}

/// [`sample_as_nifti`], and each sequence alone as a 3D volume (pre-contrast, FLAIR, post-contrast).
fn sample_as_nifti_files() -> (Vec<u8>, Vec<u8>, [Vec<u8>; 3]) {
    let (n, z) = (256usize, 20usize);
    // uint8 voxels; 4D when it holds the three sequences.
    let header = |channels: usize| {
        let (n, z) = (n as i16, z as i16);
        let dims: &[i16] = if channels > 1 { &[n, n, z, channels as i16] } else { &[n, n, z] };
        tumorscan_data::phantom::nifti_header(dims, 2, 8)
    };
    let (mut image, mut mask) = (header(3), header(1));
    image.resize(352 + 3 * n * n * z, 0);
    mask.resize(352 + n * n * z, 0);
    for k in 0..z {
        let rgb = image::load_from_memory(&sample(k as u32 + 1, false)).unwrap().to_rgb8();
        let truth = image::load_from_memory(&sample(k as u32 + 1, true)).unwrap().to_luma8();
        for (x, row, px) in rgb.enumerate_pixels() {
            let voxel = k * n * n + (n - 1 - row as usize) * n + x as usize;
            for c in 0..3 {
                image[352 + c * n * n * z + voxel] = px[c];
            }
            mask[352 + voxel] = u8::from(truth.get_pixel(x, row)[0] > 127);
        }
    }
    let sequence = |c: usize| [header(1), image[352 + c * n * n * z..352 + (c + 1) * n * n * z].to_vec()].concat();
    let sequences = [sequence(0), sequence(1), sequence(2)];
    (image, mask, sequences)
}

/// The file `/v1/predict/volume?<query>` replies with for `files`, checked to be 200 with
/// `content_type` and named `name` for saving.
async fn volume_file(query: &str, files: &[(&str, Vec<u8>)], content_type: &str, name: &str) -> axum::body::Bytes {
    let (ct, body) = multipart(files);
    let resp = app(Limits::default())
        .oneshot(post(&format!("/v1/predict/volume?{query}"), &ct, body))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], content_type);
    let disposition = resp.headers()["content-disposition"].to_str().unwrap().to_string();
    assert!(disposition.contains(&format!("filename=\"{name}\"")), "{disposition}");
    axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap()
}

/// A NIfTI volume with its `_mask` volume is predicted as one patient and scored; with
/// `format=nifti` the reply is the mask as a .nii.gz on the input's grid. A DICOM series is
/// predicted as one volume, with `format=dicom-seg` replied as a DICOM Segmentation; a mix of
/// kinds, or two volumes, is refused.
#[tokio::test]
async fn nifti_volumes_and_dicom_series_are_predicted() {
    let (image, mask) = sample_as_nifti();
    let files = [("case.nii".to_string(), image.clone()), ("case_mask.nii".to_string(), mask)];
    let (s, v) = volume(&files).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let slices = v.as_array().unwrap();
    assert_eq!(slices.len(), 20);
    assert_eq!(slices[19]["name"], "case.nii#19");
    let sum = |key: &str| slices.iter().map(|r| r[key].as_u64().unwrap()).sum::<u64>();
    let (predicted, truth, overlap) = (sum("tumor_pixels"), sum("truth_pixels"), sum("overlap_pixels"));
    let truth_in_tiffs: u64 = (1..=20)
        .map(|k| {
            image::load_from_memory(&sample(k, true))
                .unwrap()
                .to_luma8()
                .pixels()
                .filter(|p| p[0] > 127)
                .count() as u64
        })
        .sum();
    assert_eq!(truth, truth_in_tiffs);
    // The slices as TIFFs score 0.916 (README); rescaled by the volume's percentiles, about as much.
    let dice = 2.0 * overlap as f64 / (predicted + truth) as f64;
    assert!(dice > 0.85, "volumetric Dice {dice}");

    let gz = volume_file(
        "format=nifti",
        &[("case.nii", image.clone())],
        "application/gzip",
        "case_mask.nii.gz",
    )
    .await;
    let (geometry, masks) = tumorscan_data::nifti::read_mask_bytes(&gz).unwrap();
    assert_eq!(geometry.dims, (256, 256, 20));
    assert_eq!(masks.iter().flatten().map(|&v| u64::from(v)).sum::<u64>(), predicted);

    // DICOM: three slices of a phantom series, sent in any order.
    let dicom: Vec<(String, Vec<u8>)> = [3u32, 1, 2]
        .iter()
        .map(|&k| {
            (
                format!("IM{k}.dcm"),
                tumorscan_data::phantom::dicom_slice(k, "1.2.3", 64, "1.2.840.10008.1.2.1", ["0.5", "0.5"]),
            )
        })
        .collect();
    let (s, v) = volume(&dicom).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let names: Vec<&str> = v.as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["IM1.dcm", "IM2.dcm", "IM3.dcm"]);
    // With format=dicom-seg its mask comes back as a DICOM Segmentation referring to each
    // slice in order, the same pixels as the JSON reply's.
    let parts: Vec<(&str, Vec<u8>)> = dicom.iter().map(|(n, b)| (n.as_str(), b.clone())).collect();
    let seg = volume_file("format=dicom-seg", &parts, "application/dicom", "dicom-series_seg.dcm").await;
    let frames = tumorscan_data::phantom::read_seg(&seg).unwrap();
    assert_eq!(frames.sources, ["1.2.826.0.1.1", "1.2.826.0.1.2", "1.2.826.0.1.3"]);
    for (frame, r) in frames.masks.iter().zip(v.as_array().unwrap()) {
        assert_eq!(
            frame.iter().map(|&p| u64::from(p)).sum::<u64>(),
            r["tumor_pixels"].as_u64().unwrap()
        );
    }
    // Sent back with the series (a folder exported with its SEG), it is passed over and noted.
    let mut with_seg = dicom.clone();
    with_seg.push(("IM_seg.dcm".to_string(), seg.to_vec()));
    let (s, again) = volume(&with_seg).await;
    assert_eq!(s, StatusCode::OK, "{again}");
    assert_eq!(again.as_array().unwrap().len(), 3);
    assert!(
        again[0]["notes"]
            .to_string()
            .contains("IM_seg.dcm: a DICOM Segmentation, not an image"),
        "{again}"
    );
    // Each file format for its own input only.
    let nifti = vec![("case.nii", files[0].1.clone())];
    for (query, input) in [("format=dicom-seg", nifti), ("format=nifti", parts)] {
        let (ct, body) = multipart(&input);
        let (s, v) = call(app(Limits::default()), post(&format!("/v1/predict/volume?{query}"), &ct, body)).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
        assert!(error_text(&v).contains("needs a"), "{v}");
    }

    let refused = [
        vec![files[0].clone(), ("x_1.tif".to_string(), sample(1, false))],
        vec![files[0].clone(), ("other.nii".to_string(), image)],
    ];
    for request in refused {
        let (s, v) = volume(&request).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
        assert!(error_text(&v).contains("per request"), "{v}");
    }
}

/// A BraTS-style case sent as its files (three sequences apart, the segmentation, and a
/// sidecar from the scan folder) is the 4D volume of the same sequences: the same calls on
/// every slice, scored against the segmentation, with the sidecar skipped and noted.
#[tokio::test]
async fn a_brats_case_sent_as_its_files_is_one_volume() {
    let (image, mask, [pre, flair, post]) = sample_as_nifti_files();
    let (s, four_d) = volume(&[("case.nii".to_string(), image)]).await;
    assert_eq!(s, StatusCode::OK, "{four_d}");
    let files = [
        ("C1_t1.nii".to_string(), pre),
        ("C1_flair.nii".to_string(), flair),
        ("C1_t1ce.nii".to_string(), post),
        ("C1_seg.nii".to_string(), mask),
        ("C1_flair.json".to_string(), b"{}".to_vec()),
    ];
    let (s, case) = volume(&files).await;
    assert_eq!(s, StatusCode::OK, "{case}");
    let (a, b) = (four_d.as_array().unwrap(), case.as_array().unwrap());
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        assert_eq!((&x["tumor_pixels"], &x["has_tumor"]), (&y["tumor_pixels"], &y["has_tumor"]));
        assert!(y["truth_pixels"].is_u64(), "{y}");
        let notes = y["notes"].to_string();
        assert!(notes.contains("skipped C1_flair.json"), "{notes}");
    }
    assert_eq!(b[3]["name"], "C1_flair.nii#3");
}

/// A compressed DICOM slice (JPEG 2000 here) is read as the uncompressed one is, and sized from
/// its Rows and Columns before its frame is decoded: a 4 kB file can claim any size, so one
/// over the per-image limit gets 422 naming the limit, not the frame's size (which decoding
/// would have found not to match), and slices past the request's pixels 413.
#[tokio::test]
async fn compressed_dicom_is_read_and_sized_before_decoding() {
    use dicom_core::{DataElement, PrimitiveValue, VR};
    use dicom_dictionary_std::tags;
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/tests/fixtures/dicom-compressed");
    let j2k = std::fs::read(fixtures.join("jpeg2000-lossless-u12.dcm")).unwrap();
    let (s, v) = volume(&[("IM1.dcm".to_string(), j2k.clone())]).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!((v[0]["width"].as_u64(), v[0]["height"].as_u64()), (Some(56), Some(40)), "{v}");
    let claiming = |rows: u16, cols: u16, number: u32| {
        let mut obj = dicom_object::OpenFileOptions::new().from_reader(&j2k[128..]).unwrap();
        obj.put(DataElement::new(tags::ROWS, VR::US, PrimitiveValue::from(rows)));
        obj.put(DataElement::new(tags::COLUMNS, VR::US, PrimitiveValue::from(cols)));
        obj.put(DataElement::new(
            tags::INSTANCE_NUMBER,
            VR::IS,
            PrimitiveValue::from(number.to_string()),
        ));
        let mut bytes = Vec::new();
        obj.write_all(&mut bytes).unwrap();
        (format!("IM{number}.dcm"), bytes)
    };
    let (s, v) = volume(&[claiming(1024, 2048, 1)]).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(error_text(&v).contains("--max-image-pixels"), "{v}");
    // Two slices of 2,240 pixels where a request may hold 3,000: the second is refused unread.
    let limits = Limits {
        max_request_pixels: 3000,
        ..Limits::default()
    };
    let (ct, body) = multipart(&[("IM1.dcm", j2k.clone()), ("IM2.dcm", claiming(40, 56, 2).1)]);
    let (s, v) = call(app(limits), post("/v1/predict/volume", &ct, body)).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{v}");
    assert!(error_text(&v).contains("--max-request-pixels"), "{v}");
    // Within the limits, the frame itself is checked against them.
    let (s, v) = volume(&[claiming(40, 57, 1)]).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(error_text(&v).contains("56x40"), "{v}");
}

/// A multi-frame (Enhanced MR) file is a series in one file: one result per frame, named
/// `file#frame`; its frames count against --max-files before any is decoded, as a NIfTI
/// volume's slices do.
#[tokio::test]
async fn multi_frame_dicom_is_one_slice_per_frame_and_counted() {
    let frame = |v: u16| vec![v; 32 * 32];
    let bytes = tumorscan_data::phantom::dicom_multiframe(1, "1.2.3", 32, &[(0.0, frame(10)), (5.0, frame(20)), (10.0, frame(30))]);
    let (s, v) = volume(&[("MF.dcm".to_string(), bytes.clone())]).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let names: Vec<&str> = v.as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["MF.dcm#1", "MF.dcm#2", "MF.dcm#3"]);
    let limits = Limits {
        max_files: 2,
        ..Limits::default()
    };
    let (ct, body) = multipart(&[("MF.dcm", bytes)]);
    let (s, v) = call(app(limits), post("/v1/predict/volume", &ct, body)).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{v}");
    assert!(error_text(&v).contains("3 slices") && error_text(&v).contains("--max-files"), "{v}");
}

/// A NIfTI volume is sized from its header before its data is decompressed: a header declaring
/// more voxels than a request may hold gets 413 (not "truncated"), one with slices over the
/// per-image limit 422, without the data ever being sent.
#[tokio::test]
async fn volumes_are_sized_from_their_headers() {
    let header = |nx: i16, ny: i16, nz: i16| tumorscan_data::phantom::nifti_header(&[nx, ny, nz], 2, 8);
    let (s, v) = volume(&[("big.nii".to_string(), header(1024, 1024, 100))]).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{v}");
    assert!(error_text(&v).contains("--max-request-pixels"), "{v}");
    let (s, v) = volume(&[("wide.nii".to_string(), header(2048, 1024, 1))]).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(error_text(&v).contains("--max-image-pixels"), "{v}");
    // Every slice costs a network pass however small: a volume of more slices than --max-files
    // is refused (a 203-byte file of 8x8x2000 voxels held a slot for minutes).
    let (s, v) = volume(&[("thin.nii".to_string(), header(8, 8, 2000))]).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{v}");
    assert!(
        error_text(&v).contains("2000 slices") && error_text(&v).contains("--max-files"),
        "{v}"
    );
    // `format` twice is refused rather than one of them silently winning.
    let (ct, body) = multipart(&[("short.nii", header(64, 64, 4))]);
    let (s, v) = call(
        app(Limits::default()),
        post("/v1/predict/volume?format=nifti&format=json", &ct, body),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert!(error_text(&v).contains("format given twice"), "{v}");
    // Within the limits, the missing data is what is wrong.
    let (s, v) = volume(&[("short.nii".to_string(), header(64, 64, 4))]).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(error_text(&v).contains("shorter than its header"), "{v}");
}
