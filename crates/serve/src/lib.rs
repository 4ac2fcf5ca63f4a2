//! `tumorscan serve`: an HTTP API and a web viewer over the prediction engine.
//!
//! - `POST /v1/predict`: one slice (multipart field `file`, optionally with its `_mask` file, or
//!   a raw body with an image content type) -> JSON with `tumor_probability`, `has_tumor`,
//!   `tumor_pixels`, bounding box and the mask as a base64 PNG. A lone slice is normalised on
//!   itself (documented fallback).
//! - `POST /v1/predict/volume`: several slices of one patient (multipart fields `file`),
//!   normalised together; `_mask` files among them are taken as ground truth and scored.
//! - `GET /health`, `GET /openapi.json`, `GET /` (the viewer page), `GET /samples/{name}`.
//!
//! Limits ([`Limits`]): request bodies over `max_body_bytes` get 413, and so do requests with
//! more than `max_files` images or more than `max_request_pixels` pixels in all; an image over
//! `max_image_pixels` gets 422. Sizes are read from the image headers before anything is
//! decoded (decompression bombs). At most `max_concurrent` inferences run at once and a request
//! that waits longer than `queue_timeout` gets 503, so memory stays bounded under load. Clients
//! that are slow to send their headers are disconnected after `header_timeout`, and bodies not
//! received within `body_timeout` get 408. Every error is a 4xx/5xx JSON `{"error": ...}`
//! without internals, unknown paths and methods included.

use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use serde::Serialize;
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use tumorscan_data::image_io::{decode_mask, decode_slice, ChannelPolicy};
use tumorscan_evaluate::overlap::Counts;
use tumorscan_predict::engine::PredictOptions;
use tumorscan_predict::input::{InputSlice, Volume};
use tumorscan_predict::{predict_volume, ModelBundle};

/// Server limits. Error messages name the `tumorscan serve` flag that raises each one.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest request body (`--max-body-mb`).
    pub max_body_bytes: usize,
    /// Most image files (slices and their `_mask` files) in one request (`--max-files`).
    pub max_files: usize,
    /// Most pixels (width x height) in one image (`--max-image-pixels`).
    pub max_image_pixels: u64,
    /// Most pixels of all the images of one request together (`--max-request-pixels`).
    pub max_request_pixels: u64,
    /// Inferences at once (`--concurrency`).
    pub max_concurrent: usize,
    /// Longest wait for an inference slot (`--queue-timeout`).
    pub queue_timeout: Duration,
    /// Longest inference.
    pub inference_timeout: Duration,
    /// Longest time a client may take to send a request's headers, or an idle keep-alive
    /// connection may wait for its next request (`--header-timeout`).
    pub header_timeout: Duration,
    /// Longest time a client may take to send a request body (`--body-timeout`).
    pub body_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: 64 * 1024 * 1024,
            // A patient of the LGG data has up to 88 slices, each usually sent with its mask.
            max_files: 200,
            // The scans are 256x256; this leaves room for larger ones.
            max_image_pixels: 1024 * 1024,
            // 200 files of 256x256 fit, or 16 of 1024x1024: a few hundred MB at most to decode.
            max_request_pixels: 16 * 1024 * 1024,
            max_concurrent: 2,
            queue_timeout: Duration::from_secs(30),
            inference_timeout: Duration::from_secs(120),
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(60),
        }
    }
}

impl Limits {
    /// Refuse limits under which the server could not answer any request (a zero size, count or
    /// timeout).
    pub fn validate(&self) -> anyhow::Result<()> {
        let zero = [
            ("max_body_bytes", self.max_body_bytes == 0),
            ("max_files", self.max_files == 0),
            ("max_image_pixels", self.max_image_pixels == 0),
            ("max_request_pixels", self.max_request_pixels == 0),
            ("max_concurrent", self.max_concurrent == 0),
            ("inference_timeout", self.inference_timeout.is_zero()),
            ("header_timeout", self.header_timeout.is_zero()),
            ("body_timeout", self.body_timeout.is_zero()),
        ];
        match zero.iter().find(|(_, is_zero)| *is_zero) {
            Some((name, _)) => anyhow::bail!("server limit {name} must be above zero"),
            None => Ok(()),
        }
    }
}

struct AppState {
    bundle: ModelBundle,
    permits: Arc<Semaphore>,
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

fn too_large(msg: impl Into<String>) -> ApiError {
    ApiError(StatusCode::PAYLOAD_TOO_LARGE, msg.into())
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
        permits: Arc::new(Semaphore::new(limits.max_concurrent.max(1))),
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
        .fallback(|| async { ApiError(StatusCode::NOT_FOUND, "no such path; see /openapi.json".into()) })
        // axum still adds the `allow` header to this response.
        .method_not_allowed_fallback(|| async {
            ApiError(
                StatusCode::METHOD_NOT_ALLOWED,
                "method not allowed on this path; see /openapi.json".into(),
            )
        })
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
    let ctype = match ext.as_str() {
        "tif" | "tiff" => "image/tiff",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        _ => return Err(not_found()),
    };
    if !ok_name {
        return Err(not_found());
    }
    let bytes = tokio::fs::read(dir.join(&name)).await.map_err(|_| not_found())?;
    Ok(([(header::CONTENT_TYPE, ctype)], bytes).into_response())
}

struct Upload {
    name: String,
    bytes: Vec<u8>,
}

/// A slice and the ground-truth mask sent with it.
struct Item {
    slice: Upload,
    mask: Option<Upload>,
}

/// The media type of a request, lower-cased and without parameters (media types are
/// case-insensitive; the boundary parameter is not, and is left to the multipart parser).
fn media_type(req: &Request) -> String {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// Read the uploaded files of a request: multipart fields `file`, or (with `raw`) a body with an
/// image content type. Gives up with 408 when the body takes longer than `body_timeout`.
async fn read_uploads(limits: &Limits, req: Request, raw: bool) -> Result<Vec<Upload>, ApiError> {
    let mtype = media_type(&req);
    let read = async {
        if mtype == "multipart/form-data" {
            let mp = Multipart::from_request(req, &())
                .await
                .map_err(|e| bad(format!("malformed multipart body: {}", e.body_text())))?;
            read_multipart(mp, limits.max_files).await
        } else if raw && (mtype.starts_with("image/") || mtype == "application/octet-stream") {
            let bytes = axum::body::to_bytes(req.into_body(), limits.max_body_bytes)
                .await
                .map_err(|_| body_too_large(limits))?;
            Ok(vec![Upload {
                name: "upload".into(),
                bytes: bytes.to_vec(),
            }])
        } else {
            let expected = if raw {
                "send multipart/form-data with a 'file' field, or an image/* body"
            } else {
                "send multipart/form-data with 'file' fields"
            };
            let got = if mtype.is_empty() {
                "no content type".to_string()
            } else {
                format!("'{mtype}'")
            };
            Err(ApiError(StatusCode::UNSUPPORTED_MEDIA_TYPE, format!("{expected} (got {got})")))
        }
    };
    tokio::time::timeout(limits.body_timeout, read).await.unwrap_or_else(|_| {
        Err(ApiError(
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "request body not received within {} s (--body-timeout)",
                limits.body_timeout.as_secs_f64()
            ),
        ))
    })
}

fn body_too_large(limits: &Limits) -> ApiError {
    too_large(format!(
        "request body over the limit of {} MiB (--max-body-mb)",
        limits.max_body_bytes as f64 / (1024.0 * 1024.0)
    ))
}

async fn read_multipart(mut mp: Multipart, max_files: usize) -> Result<Vec<Upload>, ApiError> {
    let mut out = Vec::new();
    while let Some(field) = mp.next_field().await.map_err(|e| multipart_error(&e.body_text(), e.status()))? {
        if field.name() != Some("file") {
            continue;
        }
        // Stop before reading more: every file costs a decode later.
        if out.len() == max_files {
            return Err(too_large(format!("more than {max_files} files in one request (--max-files)")));
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
        too_large("request body too large (--max-body-mb)")
    } else {
        bad(format!("malformed multipart body: {text}"))
    }
}

fn file_stem(name: &str) -> String {
    std::path::Path::new(name)
        .file_stem()
        .map(|x| x.to_string_lossy().to_string())
        .unwrap_or_default()
}

fn is_mask_name(name: &str) -> bool {
    file_stem(name).ends_with("_mask")
}

/// Pair each `_mask` file with the slice of the same stem. A mask without its slice, or a
/// second mask for one slice, is refused (400) rather than silently ignored.
fn pair_up(uploads: Vec<Upload>) -> Result<Vec<Item>, ApiError> {
    let (masks, slices): (Vec<Upload>, Vec<Upload>) = uploads.into_iter().partition(|u| is_mask_name(&u.name));
    if slices.is_empty() {
        return Err(bad("only _mask files were sent; send the slices too"));
    }
    let mut by_stem: HashMap<String, Upload> = HashMap::new();
    for m in masks {
        let stem = file_stem(&m.name);
        let slice_stem = stem.strip_suffix("_mask").unwrap_or(&stem).to_string();
        if !slices.iter().any(|s| file_stem(&s.name) == slice_stem) {
            return Err(bad(format!(
                "{}: ground-truth mask without its slice (no {slice_stem}.* was sent)",
                m.name
            )));
        }
        if by_stem.contains_key(&slice_stem) {
            return Err(bad(format!("{}: a second ground-truth mask for {slice_stem}", m.name)));
        }
        by_stem.insert(slice_stem, m);
    }
    Ok(slices
        .into_iter()
        .map(|slice| {
            let mask = by_stem.remove(&file_stem(&slice.name));
            Item { slice, mask }
        })
        .collect())
}

/// Width and height from an image's header, without decoding its pixels.
fn header_dimensions(name: &str, bytes: &[u8]) -> Result<(u32, u32), ApiError> {
    let unreadable = |e: &dyn std::fmt::Display| ApiError(StatusCode::UNPROCESSABLE_ENTITY, format!("{name}: not a readable image: {e}"));
    let mut reader = image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| unreadable(&e))?;
    if reader.format().is_none() {
        // As the decoder does: fall back to the extension (TIFFs with odd magic).
        if let Ok(f) = image::ImageFormat::from_path(name) {
            reader.set_format(f);
        }
    }
    reader.into_dimensions().map_err(|e| unreadable(&e))
}

/// Refuse images too large to decode safely, from their headers alone: 422 for one image over
/// `max_image_pixels`, 413 when all of them together exceed `max_request_pixels`.
fn check_sizes(limits: &Limits, items: &[Item]) -> Result<(), ApiError> {
    let mut total: u64 = 0;
    for u in items.iter().flat_map(|it| std::iter::once(&it.slice).chain(it.mask.as_ref())) {
        let (w, h) = header_dimensions(&u.name, &u.bytes)?;
        let pixels = u64::from(w) * u64::from(h);
        if pixels > limits.max_image_pixels {
            return Err(ApiError(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!(
                    "{}: {w}x{h} is {pixels} pixels, over the limit of {} per image (--max-image-pixels)",
                    u.name, limits.max_image_pixels
                ),
            ));
        }
        total += pixels;
    }
    if total > limits.max_request_pixels {
        return Err(too_large(format!(
            "the images hold {total} pixels in all, over the limit of {} per request (--max-request-pixels)",
            limits.max_request_pixels
        )));
    }
    Ok(())
}

async fn predict_one(State(s): State<Arc<AppState>>, req: Request) -> Result<Json<SliceResult>, ApiError> {
    let items = pair_up(read_uploads(&s.limits, req, true).await?)?;
    if items.len() != 1 {
        return Err(bad(
            "send exactly one slice (and optionally its _mask file) to /v1/predict; use /v1/predict/volume for several",
        ));
    }
    let mut results = run(&s, items).await?;
    Ok(Json(results.remove(0)))
}

async fn predict_many(State(s): State<Arc<AppState>>, req: Request) -> Result<Json<Vec<SliceResult>>, ApiError> {
    let items = pair_up(read_uploads(&s.limits, req, false).await?)?;
    Ok(Json(run(&s, items).await?))
}

fn png_b64(img: image::DynamicImage) -> String {
    let mut buf = std::io::Cursor::new(Vec::new());
    // Encoding a freshly made 8-bit image into memory cannot fail.
    let _ = img.write_to(&mut buf, image::ImageFormat::Png);
    base64::engine::general_purpose::STANDARD.encode(buf.into_inner())
}

async fn run(s: &Arc<AppState>, items: Vec<Item>) -> Result<Vec<SliceResult>, ApiError> {
    check_sizes(&s.limits, &items)?;
    let state = s.clone();
    run_limited(&s.permits, &s.limits, move || infer(&state, items)).await?
}

/// Run `job` on the blocking pool once one of `permits` is free (503 after `queue_timeout`),
/// waiting at most `inference_timeout` for it (then 503). The permit is held by the job itself:
/// a blocking job cannot be cancelled, so a timed-out one keeps its slot until it really ends.
async fn run_limited<T: Send + 'static>(
    permits: &Arc<Semaphore>,
    limits: &Limits,
    job: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    let permit = tokio::time::timeout(limits.queue_timeout, permits.clone().acquire_owned())
        .await
        .map_err(|_| ApiError(StatusCode::SERVICE_UNAVAILABLE, "server busy: try again shortly".into()))?
        .map_err(|_| ApiError(StatusCode::SERVICE_UNAVAILABLE, "server shutting down".into()))?;
    let job = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        job()
    });
    tokio::time::timeout(limits.inference_timeout, job)
        .await
        .map_err(|_| ApiError(StatusCode::SERVICE_UNAVAILABLE, "inference timed out".into()))?
        .map_err(|_| ApiError(StatusCode::INTERNAL_SERVER_ERROR, "inference failed".into()))
}

fn infer(s: &AppState, items: Vec<Item>) -> Result<Vec<SliceResult>, ApiError> {
    let mut inputs = Vec::new();
    for (i, Item { slice: u, mask }) in items.into_iter().enumerate() {
        let path = std::path::Path::new(&u.name);
        let img =
            decode_slice(path, &u.bytes, ChannelPolicy::Lenient).map_err(|e| ApiError(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()))?;
        let stem = file_stem(&u.name);
        let truth = match mask {
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
        inputs.push(InputSlice::from_image(u.name, stem, number, img, truth));
    }
    inputs.sort_by_key(|x| x.number);
    let volume = Volume {
        id: "upload".into(),
        source: "upload".into(),
        slices: inputs,
        nifti: None,
        slice_thickness_mm: None,
        notes: Vec::new(),
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
    serve_until(listener, bundle, limits, samples, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
}

/// Serve on `listener` until `shutdown` completes, then stop accepting, let requests in flight
/// finish and return. Unlike `axum::serve`, every connection gets [`Limits::header_timeout`]
/// to send each request's headers (slow clients would otherwise hold sockets forever).
pub async fn serve_until(
    listener: tokio::net::TcpListener,
    bundle: ModelBundle,
    limits: Limits,
    samples: Option<std::path::PathBuf>,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use hyper_util::service::TowerToHyperService;

    limits.validate()?;
    let header_timeout = limits.header_timeout;
    let app = router(bundle, limits, samples);
    let (stop_tx, _) = tokio::sync::watch::channel(());
    let mut conns = tokio::task::JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => {
                    // Out of file descriptors, or a connection reset before it was accepted:
                    // back off a little instead of spinning, as axum::serve does.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        while conns.try_join_next().is_some() {}
        let service = TowerToHyperService::new(app.clone());
        let mut stop = stop_tx.subscribe();
        conns.spawn(async move {
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder.timer(TokioTimer::new()).header_read_timeout(header_timeout);
            let mut conn = std::pin::pin!(builder.serve_connection(TokioIo::new(stream), service));
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = stop.changed() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
    }
    drop(listener);
    let _ = stop_tx.send(());
    while conns.join_next().await.is_some() {}
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(queue_ms: u64, inference_ms: u64) -> Limits {
        Limits {
            queue_timeout: Duration::from_millis(queue_ms),
            inference_timeout: Duration::from_millis(inference_ms),
            ..Limits::default()
        }
    }

    /// A job that outlives its inference timeout keeps its slot until it really ends.
    #[tokio::test]
    async fn timed_out_job_keeps_its_slot_until_it_ends() {
        let permits = Arc::new(Semaphore::new(1));
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let (ended_tx, ended) = tokio::sync::oneshot::channel::<()>();
        let slow = run_limited(&permits, &limits(1000, 20), move || {
            let _ = wait.recv();
            let _ = ended_tx.send(());
        })
        .await;
        assert!(matches!(slow, Err(ApiError(StatusCode::SERVICE_UNAVAILABLE, ref m)) if m.contains("timed out")));
        // The slow job still runs: the next request finds no free slot.
        let next = run_limited(&permits, &limits(50, 1000), || ()).await;
        assert!(matches!(next, Err(ApiError(StatusCode::SERVICE_UNAVAILABLE, ref m)) if m.contains("busy")));
        release.send(()).unwrap();
        ended.await.unwrap();
        // The job has ended: its slot frees as its closure returns, so a short wait suffices.
        assert!(run_limited(&permits, &limits(5000, 1000), || ()).await.is_ok());
    }

    #[test]
    fn zero_limits_are_refused() {
        assert!(Limits::default().validate().is_ok());
        let zero = Limits {
            max_body_bytes: 0,
            ..Limits::default()
        };
        assert!(zero.validate().unwrap_err().to_string().contains("max_body_bytes"));
    }
}
