//! `tumorscan serve`: an HTTP API and a web viewer over the prediction engine.
//!
//! - `POST /v1/predict`: one slice (multipart field `file`, or a raw body with an image
//!   content type) -> JSON with `tumor_probability`, `has_tumor`, `tumor_pixels`, bounding box
//!   and the mask as a base64 PNG. A lone slice is normalised on itself (documented fallback).
//! - `POST /v1/predict/volume`: several slices of one patient (multipart fields `file`),
//!   normalised together; `_mask` files among them are taken as ground truth and scored.
//! - `GET /health`, `GET /openapi.json`, `GET /` (the viewer page).
//!
//! Limits: request bodies over [`Limits::max_body_bytes`] get 413; at most
//! [`Limits::max_concurrent`] inferences run at once and a request that waits longer than
//! [`Limits::queue_timeout`] gets 503, so memory stays bounded under load; every error is a
//! 4xx/5xx JSON `{"error": ...}` without internals.

use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use tumorscan_data::image_io::{decode_mask, decode_slice, ChannelPolicy};
use tumorscan_evaluate::overlap::Counts;
use tumorscan_predict::engine::PredictOptions;
use tumorscan_predict::input::{InputSlice, Volume};
use tumorscan_predict::{predict_volume, ModelBundle};

/// Server limits.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest request body.
    pub max_body_bytes: usize,
    /// Inferences at once.
    pub max_concurrent: usize,
    /// Longest wait for an inference slot.
    pub queue_timeout: Duration,
    /// Longest inference.
    pub inference_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: 20 * 1024 * 1024,
            max_concurrent: 2,
            queue_timeout: Duration::from_secs(30),
            inference_timeout: Duration::from_secs(120),
        }
    }
}

struct AppState {
    bundle: ModelBundle,
    permits: Semaphore,
    limits: Limits,
    samples: Option<std::path::PathBuf>,
}

/// A JSON error response.
struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(serde_json::json!({ "error": self.1 }))).into_response()
    }
}

fn bad(msg: impl Into<String>) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, msg.into())
}

/// One slice's result.
#[derive(Debug, Serialize)]
pub struct SliceResult {
    /// File name sent.
    pub name: String,
    /// Tumour probability.
    pub tumor_probability: f64,
    /// Called tumour.
    pub has_tumor: bool,
    /// Tumour pixels.
    pub tumor_pixels: u64,
    /// Bounding box `[x, y, w, h]`, when not empty.
    pub bbox: Option<[u32; 4]>,
    /// Width.
    pub width: u32,
    /// Height.
    pub height: u32,
    /// Mask (0/255 PNG), base64.
    pub mask_png: String,
    /// The slice as a browser-displayable PNG (FLAIR in gray), base64.
    pub image_png: String,
    /// Ground truth (0/255 PNG), when a `_mask` file was sent.
    pub truth_png: Option<String>,
    /// Dice against the ground truth, when sent.
    pub dice: Option<f64>,
    /// Conversions applied to the input.
    pub notes: Vec<String>,
}

/// Build the router around a loaded model bundle. With `samples`, the image files directly in
/// that folder are served read-only under `/samples/<name>` (for demos: `/?demo=/samples/x.tif`).
pub fn router(bundle: ModelBundle, limits: Limits, samples: Option<std::path::PathBuf>) -> Router {
    let state = Arc::new(AppState {
        bundle,
        permits: Semaphore::new(limits.max_concurrent.max(1)),
        limits: limits.clone(),
        samples,
    });
    Router::new()
        .route("/", get(|| async { Html(PAGE) }))
        .route("/health", get(health))
        .route(
            "/openapi.json",
            get(|| async { ([(header::CONTENT_TYPE, "application/json")], OPENAPI) }),
        )
        .route("/v1/predict", post(predict_one))
        .route("/v1/predict/volume", post(predict_many))
        .route("/samples/{name}", get(sample_file))
        .layer(DefaultBodyLimit::max(limits.max_body_bytes))
        .with_state(state)
}

static PAGE: &str = include_str!("page.html");
static OPENAPI: &str = include_str!("openapi.json");

async fn health(State(s): State<Arc<AppState>>) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok", "model": s.bundle.identity() }))
}

async fn sample_file(State(s): State<Arc<AppState>>, axum::extract::Path(name): axum::extract::Path<String>) -> Result<Response, ApiError> {
    let not_found = || ApiError(StatusCode::NOT_FOUND, "no such sample".into());
    let dir = s.samples.as_ref().ok_or_else(not_found)?;
    // Only plain file names of images in that one folder: no paths, no traversal.
    let ok_name = !name.contains(['/', '\\']) && !name.starts_with('.');
    let ext = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default();
    if !ok_name || !["tif", "tiff", "png", "jpg", "jpeg"].contains(&ext.as_str()) {
        return Err(not_found());
    }
    let bytes = tokio::fs::read(dir.join(&name)).await.map_err(|_| not_found())?;
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response())
}

struct Upload {
    name: String,
    bytes: Vec<u8>,
}

async fn read_multipart(mut mp: Multipart) -> Result<Vec<Upload>, ApiError> {
    let mut out = Vec::new();
    while let Some(field) = mp.next_field().await.map_err(|e| multipart_error(&e.body_text(), e.status()))? {
        if field.name() != Some("file") {
            continue;
        }
        let name = field.file_name().unwrap_or("upload").to_string();
        let bytes = field.bytes().await.map_err(|e| multipart_error(&e.body_text(), e.status()))?;
        out.push(Upload {
            name,
            bytes: bytes.to_vec(),
        });
    }
    if out.is_empty() {
        return Err(bad("no multipart field named 'file'"));
    }
    Ok(out)
}

fn multipart_error(text: &str, status: StatusCode) -> ApiError {
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError(StatusCode::PAYLOAD_TOO_LARGE, "request body too large".into())
    } else {
        bad(format!("malformed multipart body: {text}"))
    }
}

async fn predict_one(State(s): State<Arc<AppState>>, req: Request) -> Result<Json<SliceResult>, ApiError> {
    let ctype = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let uploads = if ctype.starts_with("multipart/form-data") {
        let mp = Multipart::from_request(req, &())
            .await
            .map_err(|e| bad(format!("malformed multipart body: {e}")))?;
        read_multipart(mp).await?
    } else if ctype.starts_with("image/") || ctype == "application/octet-stream" {
        let bytes = axum::body::to_bytes(req.into_body(), s.limits.max_body_bytes)
            .await
            .map_err(|_| ApiError(StatusCode::PAYLOAD_TOO_LARGE, "request body too large".into()))?;
        vec![Upload {
            name: "upload".into(),
            bytes: bytes.to_vec(),
        }]
    } else {
        return Err(ApiError(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("send multipart/form-data with a 'file' field, or an image/* body (got '{ctype}')"),
        ));
    };
    let slices: Vec<Upload> = uploads.into_iter().filter(|u| !is_mask_name(&u.name)).collect();
    if slices.len() != 1 {
        return Err(bad("send exactly one slice to /v1/predict; use /v1/predict/volume for several"));
    }
    let mut results = run(&s, slices, Vec::new()).await?;
    Ok(Json(results.remove(0)))
}

async fn predict_many(State(s): State<Arc<AppState>>, mp: Multipart) -> Result<Json<Vec<SliceResult>>, ApiError> {
    let uploads = read_multipart(mp).await?;
    let (masks, slices): (Vec<Upload>, Vec<Upload>) = uploads.into_iter().partition(|u| is_mask_name(&u.name));
    if slices.is_empty() {
        return Err(bad("only _mask files were sent; send the slices too"));
    }
    Ok(Json(run(&s, slices, masks).await?))
}

fn is_mask_name(name: &str) -> bool {
    std::path::Path::new(name)
        .file_stem()
        .map(|s| s.to_string_lossy().ends_with("_mask"))
        .unwrap_or(false)
}

fn png_b64(img: image::DynamicImage) -> String {
    let mut buf = std::io::Cursor::new(Vec::new());
    // Encoding a freshly made 8-bit image into memory cannot fail.
    let _ = img.write_to(&mut buf, image::ImageFormat::Png);
    base64::engine::general_purpose::STANDARD.encode(buf.into_inner())
}

async fn run(s: &Arc<AppState>, slices: Vec<Upload>, masks: Vec<Upload>) -> Result<Vec<SliceResult>, ApiError> {
    let permit = tokio::time::timeout(s.limits.queue_timeout, s.permits.acquire())
        .await
        .map_err(|_| ApiError(StatusCode::SERVICE_UNAVAILABLE, "server busy: try again shortly".into()))?
        .map_err(|_| ApiError(StatusCode::SERVICE_UNAVAILABLE, "server shutting down".into()))?;
    let state = s.clone();
    let job = tokio::task::spawn_blocking(move || infer(&state, slices, masks));
    let out = tokio::time::timeout(s.limits.inference_timeout, job)
        .await
        .map_err(|_| ApiError(StatusCode::SERVICE_UNAVAILABLE, "inference timed out".into()))?
        .map_err(|_| ApiError(StatusCode::INTERNAL_SERVER_ERROR, "inference failed".into()))?;
    drop(permit);
    out
}

fn infer(s: &AppState, slices: Vec<Upload>, masks: Vec<Upload>) -> Result<Vec<SliceResult>, ApiError> {
    let mut inputs = Vec::new();
    for (i, u) in slices.iter().enumerate() {
        let path = std::path::Path::new(&u.name);
        let img =
            decode_slice(path, &u.bytes, ChannelPolicy::Lenient).map_err(|e| ApiError(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()))?;
        let stem = path.file_stem().map(|x| x.to_string_lossy().to_string()).unwrap_or_default();
        let truth = masks.iter().find(|m| {
            std::path::Path::new(&m.name)
                .file_stem()
                .map(|x| x.to_string_lossy() == format!("{stem}_mask"))
                .unwrap_or(false)
        });
        let truth = match truth {
            Some(m) => {
                let mk = decode_mask(std::path::Path::new(&m.name), &m.bytes)
                    .map_err(|e| ApiError(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()))?;
                if (mk.width, mk.height) != (img.width, img.height) {
                    return Err(ApiError(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        format!("{}: mask size differs from its slice", m.name),
                    ));
                }
                Some(mk.data)
            }
            None => None,
        };
        let number = tumorscan_data::layout::parse_slice_stem(&stem)
            .map(|(_, n, _)| n)
            .unwrap_or(i as u32);
        inputs.push(InputSlice::from_image(u.name.clone(), stem, number, img, truth));
    }
    inputs.sort_by_key(|x| x.number);
    let volume = Volume {
        id: "upload".into(),
        source: "upload".into(),
        slices: inputs,
        nifti: None,
        slice_thickness_mm: None,
    };
    let preds = predict_volume(
        &s.bundle,
        &volume,
        &PredictOptions {
            batch_size: 16,
            ..Default::default()
        },
    );
    Ok(volume
        .slices
        .iter()
        .zip(preds)
        .map(|(inp, p)| {
            let mask = image::GrayImage::from_raw(p.width, p.height, p.mask.iter().map(|&v| v * 255).collect()).unwrap_or_default();
            let flair = tumorscan_data::render::flair_gray(&inp.rgb, inp.width, inp.height);
            let dice = inp.truth.as_ref().map(|t| Counts::of(&p.mask, t).dice().unwrap_or(1.0));
            SliceResult {
                name: inp.label.clone(),
                tumor_probability: p.tumor_probability,
                has_tumor: p.has_tumor == 1,
                tumor_pixels: p.tumor_pixels,
                bbox: p
                    .bbox_x
                    .zip(p.bbox_y)
                    .zip(p.bbox_width.zip(p.bbox_height))
                    .map(|((x, y), (w, h))| [x, y, w, h]),
                width: p.width,
                height: p.height,
                mask_png: png_b64(mask.into()),
                image_png: png_b64(flair.into()),
                truth_png: inp
                    .truth
                    .as_ref()
                    .and_then(|t| image::GrayImage::from_raw(inp.width, inp.height, t.iter().map(|&v| v * 255).collect()))
                    .map(|m| png_b64(m.into())),
                dice,
                notes: inp.notes.clone(),
            }
        })
        .collect())
}

/// Serve until Ctrl-C.
pub async fn serve(addr: &str, bundle: ModelBundle, limits: Limits, samples: Option<std::path::PathBuf>) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))?;
    eprintln!(
        "tumorscan serving on http://{} (model: {})",
        listener.local_addr()?,
        bundle.identity()
    );
    axum::serve(listener, router(bundle, limits, samples))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
