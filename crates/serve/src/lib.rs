//! `tumorscan serve`: an HTTP API and a web viewer over the prediction engine.
//!
//! - `POST /v1/predict`: one slice (multipart field `file`, optionally with its `_mask` file, or
//!   a raw body with an image content type) -> JSON with `tumor_probability`, `has_tumor`,
//!   `tumor_pixels`, bounding box and the mask as a base64 PNG. A lone slice is normalised on
//!   itself (documented fallback).
//! - `POST /v1/predict/volume`: several slices (multipart fields `file`). Slices named
//!   `<patient>_<n>` are grouped by patient, and each patient's slices are normalised and
//!   cleaned up together in the order of `n` (as `predict` does a patient folder); other names
//!   form one group in their names' natural order (`slice2` before `slice10`). `_mask` files
//!   among them (any letter case) are taken as ground truth and scored. Or one NIfTI volume
//!   (one file, or a BraTS-style case's files) or one DICOM series ([`volume_upload`]); with
//!   `?format=nifti` a NIfTI volume's mask comes back as a `.nii.gz` on its voxel grid, with
//!   `?format=dicom-seg` a DICOM series' as a DICOM Segmentation referring to it (as `predict`
//!   writes `<volume>_seg.dcm`).
//! - `GET /health`, `GET /openapi.json`, `GET /` (the viewer page), `GET /samples/{name}`.
//!
//! Limits ([`Limits`]): request bodies over `max_body_bytes` get 413, and so do requests with
//! more than `max_files` images or more than `max_request_pixels` pixels in all; an image over
//! `max_image_pixels` gets 422. Sizes are read from the image headers before anything is
//! decoded (decompression bombs), a NIfTI volume's before it is decompressed; a DICOM series
//! from each file's Rows and Columns before its pixel data is decoded. At most `max_concurrent` inferences run at once, and at most
//! twice that many requests hold their bodies in memory (read, queued or running); a request
//! that waits longer than `queue_timeout` for either gets 503 (with `Retry-After`), so memory
//! stays bounded under load. Clients that are slow to send their headers are disconnected after
//! `header_timeout`, bodies not received within `body_timeout` get 408, and a connection whose
//! reply the client stops reading for `write_timeout` is closed. Every error the application
//! gives is a 4xx/5xx JSON `{"error": ...}` without internals, unknown paths and methods
//! included (malformed HTTP itself is answered by the HTTP library, without a body).

use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use tumorscan_data::image_io::{decode_mask, decode_slice, ChannelPolicy};
use tumorscan_data::layout::parse_slice_stem;
use tumorscan_data::volume::order_slices;
use tumorscan_evaluate::overlap::Counts;
use tumorscan_predict::engine::PredictOptions;
use tumorscan_predict::input::{InputSlice, Volume};
use tumorscan_predict::{predict_volume, ModelBundle};

mod volume_upload;
mod write_timeout;
use write_timeout::WriteTimeout;

/// Server limits. Error messages name the `tumorscan serve` flag that raises each one.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest request body (`--max-body-mb`).
    pub max_body_bytes: usize,
    /// Most image files (slices and their `_mask` files, DICOM files) in one request, and most
    /// slices of one NIfTI volume (`--max-files`).
    pub max_files: usize,
    /// Most pixels (width x height) in one image (`--max-image-pixels`).
    pub max_image_pixels: u64,
    /// Most pixels of all the images of one request together, every voxel of every NIfTI
    /// volume counted (`--max-request-pixels`).
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
    /// Longest time a reply may wait for the client to read any of it (`--write-timeout`).
    pub write_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: 64 * 1024 * 1024,
            // A patient of the LGG data has up to 88 slices, each usually sent with its mask.
            max_files: 200,
            // The scans are 256x256; this leaves room for larger ones.
            max_image_pixels: 1024 * 1024,
            // A BraTS-sized case (240x240x155 voxels, three sequences and a segmentation: 36 M)
            // fits, or 48 slices of 1024x1024.
            max_request_pixels: 48 * 1024 * 1024,
            max_concurrent: 2,
            queue_timeout: Duration::from_secs(30),
            inference_timeout: Duration::from_secs(120),
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(60),
            write_timeout: Duration::from_secs(60),
        }
    }
}

impl Limits {
    /// Longest timeout accepted: a day (far larger ones overflow the timers and leave every
    /// connection unanswered).
    pub const MAX_TIMEOUT: Duration = Duration::from_secs(24 * 60 * 60);

    /// Most inferences at once accepted.
    pub const MAX_CONCURRENT: usize = 1024;

    /// Refuse limits under which the server could not answer any request (a zero size, count or
    /// timeout, or a timeout over [`Self::MAX_TIMEOUT`]).
    pub fn validate(&self) -> anyhow::Result<()> {
        let timeouts = [
            ("queue_timeout (--queue-timeout)", self.queue_timeout),
            ("inference_timeout", self.inference_timeout),
            ("header_timeout (--header-timeout)", self.header_timeout),
            ("body_timeout (--body-timeout)", self.body_timeout),
            ("write_timeout (--write-timeout)", self.write_timeout),
        ];
        if let Some((name, _)) = timeouts.iter().find(|(_, t)| *t > Self::MAX_TIMEOUT) {
            anyhow::bail!("server limit {name} must be at most {} s (a day)", Self::MAX_TIMEOUT.as_secs());
        }
        // Each slot holds a model's activations; far more would only exhaust memory (and the
        // semaphores have a ceiling).
        if self.max_concurrent > Self::MAX_CONCURRENT {
            anyhow::bail!(
                "server limit max_concurrent (--concurrency) must be at most {}",
                Self::MAX_CONCURRENT
            );
        }
        let zero = [
            ("max_body_bytes", self.max_body_bytes == 0),
            ("max_files", self.max_files == 0),
            ("max_image_pixels", self.max_image_pixels == 0),
            ("max_request_pixels", self.max_request_pixels == 0),
            ("max_concurrent", self.max_concurrent == 0),
            ("inference_timeout", self.inference_timeout.is_zero()),
            ("header_timeout", self.header_timeout.is_zero()),
            ("body_timeout", self.body_timeout.is_zero()),
            ("write_timeout", self.write_timeout.is_zero()),
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
    /// Requests holding their bodies in memory (being read, queued or running).
    uploads: Arc<Semaphore>,
    limits: Limits,
    samples: Option<std::path::PathBuf>,
}

/// A JSON error response.
#[derive(Debug)]
struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.0, Json(serde_json::json!({ "error": self.1 }))).into_response();
        if self.0 == StatusCode::SERVICE_UNAVAILABLE && self.1 == BUSY {
            // A slot usually frees within seconds.
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("5"));
        }
        response
    }
}

const BUSY: &str = "server busy: try again shortly";

fn busy() -> ApiError {
    ApiError(StatusCode::SERVICE_UNAVAILABLE, BUSY.into())
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
    /// Tumour pixels of the ground truth, when sent.
    pub truth_pixels: Option<u64>,
    /// Pixels both the mask and the ground truth call tumour, when sent: with `tumor_pixels` and
    /// `truth_pixels` summed over a patient's slices, its volumetric Dice.
    pub overlap_pixels: Option<u64>,
    /// Conversions applied to the input.
    pub notes: Vec<String>,
}

/// Build the router around a loaded model bundle. With `samples`, the image files directly in
/// that folder are served read-only under `/samples/<name>` (for demos: `/?demo=/samples/x.tif`).
pub fn router(bundle: ModelBundle, limits: Limits, samples: Option<std::path::PathBuf>) -> Router {
    let state = Arc::new(AppState {
        bundle,
        permits: Arc::new(Semaphore::new(limits.max_concurrent.clamp(1, Limits::MAX_CONCURRENT))),
        uploads: Arc::new(Semaphore::new(limits.max_concurrent.clamp(1, Limits::MAX_CONCURRENT) * 2)),
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
            let bytes = axum::body::to_bytes(req.into_body(), limits.max_body_bytes).await.map_err(|e| {
                let over = std::iter::successors(Some(&e as &dyn std::error::Error), |e| e.source())
                    .any(|e| e.is::<http_body_util::LengthLimitError>());
                if over {
                    body_too_large(limits)
                } else {
                    bad(format!("request body could not be read: {e}"))
                }
            })?;
            if bytes.is_empty() {
                return Err(bad("empty request body: send the image's bytes"));
            }
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
        // Some clients send the whole path (`C:\scans\x.tif`): the name is its last part.
        let name = field.file_name().map(base_name).unwrap_or("upload").to_string();
        let bytes = field.bytes().await.map_err(|e| multipart_error(&e.body_text(), e.status()))?;
        if bytes.is_empty() {
            return Err(bad(format!("{name}: empty file")));
        }
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

/// The last part of a path-like file name, with `/` or `\\` as separators.
fn base_name(name: &str) -> &str {
    name.rsplit(['/', '\\']).next().unwrap_or(name)
}

fn file_stem(name: &str) -> String {
    std::path::Path::new(base_name(name))
        .file_stem()
        .map(|x| x.to_string_lossy().to_string())
        .unwrap_or_default()
}

/// The name a slice and its mask are matched by: the stem, lower-cased (as `predict` pairs
/// `X_10.TIF` with `x_10_mask.png`).
fn pairing_key(name: &str) -> String {
    file_stem(name).to_ascii_lowercase()
}

fn is_mask_name(name: &str) -> bool {
    pairing_key(name).ends_with("_mask")
}

/// Pair each `_mask` file with the slice of the same stem (in any letter case or format). A
/// mask without its slice, a second mask for one slice, or two slices of one name (whose
/// results could not be told apart) are refused (400) rather than silently ignored.
fn pair_up(uploads: Vec<Upload>) -> Result<Vec<Item>, ApiError> {
    let (masks, slices): (Vec<Upload>, Vec<Upload>) = uploads.into_iter().partition(|u| is_mask_name(&u.name));
    if slices.is_empty() {
        return Err(bad("only _mask files were sent; send the slices too"));
    }
    let mut names = HashSet::new();
    for slice in &slices {
        if !names.insert(pairing_key(&slice.name)) {
            return Err(bad(format!(
                "{}: a second slice named {} (whatever the letter case or format); send each slice once",
                slice.name,
                file_stem(&slice.name)
            )));
        }
    }
    let mut by_stem: HashMap<String, Upload> = HashMap::new();
    for m in masks {
        let key = pairing_key(&m.name);
        let slice_key = key.strip_suffix("_mask").unwrap_or(&key).to_string();
        if !names.contains(&slice_key) {
            let stem = file_stem(&m.name);
            let slice_stem = stem.get(..stem.len().saturating_sub("_mask".len())).unwrap_or(&slice_key);
            return Err(bad(format!(
                "{}: ground-truth mask without its slice (no {slice_stem}.* was sent)",
                m.name
            )));
        }
        if by_stem.contains_key(&slice_key) {
            return Err(bad(format!("{}: a second ground-truth mask for {slice_key}", m.name)));
        }
        by_stem.insert(slice_key, m);
    }
    Ok(slices
        .into_iter()
        .map(|slice| {
            let mask = by_stem.remove(&pairing_key(&slice.name));
            Item { slice, mask }
        })
        .collect())
}

/// The volume format `name` / `bytes` are in (NIfTI, DICOM, gzip), which `/v1/predict` does not read.
fn volume_format(name: &str, bytes: &[u8]) -> Option<&'static str> {
    let lower = name.to_ascii_lowercase();
    match volume_upload::kind_of(name, bytes) {
        volume_upload::Kind::Slices => None,
        volume_upload::Kind::Dicom => Some("DICOM"),
        volume_upload::Kind::Nifti if bytes.starts_with(&[0x1f, 0x8b]) && !lower.ends_with(".nii.gz") => {
            Some("gzip-compressed (a .nii.gz?)")
        }
        volume_upload::Kind::Nifti => Some("NIfTI"),
    }
}

fn unprocessable(msg: impl Into<String>) -> ApiError {
    ApiError(StatusCode::UNPROCESSABLE_ENTITY, msg.into())
}

/// Width and height from an image's header, without decoding its pixels.
fn header_dimensions(name: &str, bytes: &[u8]) -> Result<(u32, u32), ApiError> {
    if let Some(format) = volume_format(name, bytes) {
        return Err(ApiError(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("{name}: a {format} file; /v1/predict reads one 2D slice (TIFF, PNG, JPEG): send NIfTI volumes and DICOM series to /v1/predict/volume"),
        ));
    }
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

/// Wait (at most `queue_timeout`) for the right to hold a request body in memory.
async fn upload_slot(s: &AppState) -> Result<tokio::sync::OwnedSemaphorePermit, ApiError> {
    tokio::time::timeout(s.limits.queue_timeout, s.uploads.clone().acquire_owned())
        .await
        .map_err(|_| busy())?
        .map_err(|_| busy())
}

async fn predict_one(State(s): State<Arc<AppState>>, req: Request) -> Result<Json<SliceResult>, ApiError> {
    let slot = upload_slot(&s).await?;
    let items = pair_up(read_uploads(&s.limits, req, true).await?)?;
    if items.len() != 1 {
        return Err(bad(
            "send exactly one slice (and optionally its _mask file) to /v1/predict; use /v1/predict/volume for several",
        ));
    }
    let mut results = run(&s, items, slot).await?;
    Ok(Json(results.remove(0)))
}

async fn predict_many(State(s): State<Arc<AppState>>, req: Request) -> Result<Response, ApiError> {
    let format = reply_format(req.uri().query())?;
    let slot = upload_slot(&s).await?;
    let (uploads, skipped) = volume_upload::without_sidecars(read_uploads(&s.limits, req, false).await?)?;
    let kind = volume_upload::kind_of_request(&uploads)?;
    if kind == volume_upload::Kind::Slices {
        if let Some(needs) = format.needs() {
            return Err(bad(format!("{} needs {needs}; slice images get JSON", format.query())));
        }
        let items = pair_up(uploads)?;
        let mut results = run(&s, items, slot).await?;
        for r in &mut results {
            r.notes.extend(skipped.iter().cloned());
        }
        return Ok(Json(results).into_response());
    }
    let plan = volume_upload::plan(kind, uploads)?;
    match (format, plan.is_nifti()) {
        (ReplyFormat::Nifti, false) => {
            return Err(bad(
                "format=nifti needs a NIfTI volume; a DICOM series gets JSON or format=dicom-seg",
            ))
        }
        (ReplyFormat::DicomSeg, true) => {
            return Err(bad(
                "format=dicom-seg needs a DICOM series; a NIfTI volume gets JSON or format=nifti",
            ))
        }
        _ => {}
    }
    volume_upload::check_sizes(&s.limits, &plan)?;
    let state = s.clone();
    let reply = run_limited(&s.permits, &s.limits, move || {
        let _slot = slot;
        let mut volume = volume_upload::read(&state.limits, plan)?;
        for slice in &mut volume.slices {
            slice.notes.extend(skipped.iter().cloned());
        }
        // A series no SEG can refer to is refused before the networks run.
        if let (ReplyFormat::DicomSeg, Some(series)) = (format, &volume.dicom) {
            tumorscan_data::dicom_seg::check_series(series, &volume.slices)
                .map_err(|why| unprocessable(format!("no DICOM Segmentation can refer to this series: {why}")))?;
        }
        let preds = predict_volume(&state.bundle, &volume, &predict_options());
        let masks = || preds.iter().map(|p| p.mask.clone()).collect::<Vec<_>>();
        match (format, &volume.nifti, &volume.dicom) {
            (ReplyFormat::Nifti, Some(geometry), _) => {
                let bytes = tumorscan_data::nifti::mask_file_bytes(geometry, &masks())
                    .map_err(|_| ApiError(StatusCode::INTERNAL_SERVER_ERROR, "could not write the NIfTI mask".into()))?;
                Ok(file_reply(bytes, "application/gzip", &format!("{}_mask.nii.gz", volume.id)))
            }
            (ReplyFormat::DicomSeg, _, Some(series)) => {
                let source = state.bundle.segmentation_source();
                let bytes = tumorscan_data::dicom_seg::seg_file_bytes(series, &volume.slices, &masks(), &source).map_err(|why| {
                    ApiError(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        format!("could not write the DICOM Segmentation: {why}"),
                    )
                })?;
                Ok(file_reply(bytes, "application/dicom", &format!("{}_seg.dcm", volume.id)))
            }
            _ => Ok(Json(slice_results(&volume, &preds)).into_response()),
        }
    })
    .await??;
    Ok(reply)
}

/// What `/v1/predict/volume` replies with: JSON (the default), the mask as NIfTI
/// (`format=nifti`, for a NIfTI volume) or as a DICOM Segmentation (`format=dicom-seg`, for a
/// DICOM series).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReplyFormat {
    Json,
    Nifti,
    DicomSeg,
}

impl ReplyFormat {
    fn query(self) -> &'static str {
        match self {
            Self::Json => "format=json",
            Self::Nifti => "format=nifti",
            Self::DicomSeg => "format=dicom-seg",
        }
    }

    /// The input a file reply needs (None for JSON).
    fn needs(self) -> Option<&'static str> {
        match self {
            Self::Json => None,
            Self::Nifti => Some("a NIfTI volume"),
            Self::DicomSeg => Some("a DICOM series"),
        }
    }
}

/// The reply format a query asks for; any other query parameter, or `format` given twice, is
/// refused, so that a typo is not silently ignored.
fn reply_format(query: Option<&str>) -> Result<ReplyFormat, ApiError> {
    let mut format = None;
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let asked = [ReplyFormat::Json, ReplyFormat::Nifti, ReplyFormat::DicomSeg]
            .into_iter()
            .find(|f| f.query() == pair)
            .ok_or_else(|| {
                bad(format!(
                    "unknown query parameter '{pair}': the one known is format=json|nifti|dicom-seg"
                ))
            })?;
        if format.replace(asked).is_some() {
            return Err(bad("format given twice: give format=json, format=nifti or format=dicom-seg once"));
        }
    }
    Ok(format.unwrap_or(ReplyFormat::Json))
}

/// A file as the reply, named `name` for saving (as `predict` names it; plain characters only in
/// the header).
fn file_reply(bytes: Vec<u8>, content_type: &'static str, name: &str) -> Response {
    let safe: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '_' })
        .collect();
    let disposition = format!("attachment; filename=\"{safe}\"");
    (
        [
            (header::CONTENT_TYPE, header::HeaderValue::from_static(content_type)),
            (
                header::CONTENT_DISPOSITION,
                header::HeaderValue::from_str(&disposition).unwrap_or(header::HeaderValue::from_static("attachment")),
            ),
        ],
        bytes,
    )
        .into_response()
}

fn png_b64(img: image::DynamicImage) -> String {
    let mut buf = std::io::Cursor::new(Vec::new());
    // Encoding a freshly made 8-bit image into memory cannot fail.
    let _ = img.write_to(&mut buf, image::ImageFormat::Png);
    base64::engine::general_purpose::STANDARD.encode(buf.into_inner())
}

/// Predict `items`; `slot` (the right to hold their bodies) goes with them into the job, so it
/// is freed when the bodies are, not when a timed-out or abandoned request returns.
async fn run(s: &Arc<AppState>, items: Vec<Item>, slot: tokio::sync::OwnedSemaphorePermit) -> Result<Vec<SliceResult>, ApiError> {
    check_sizes(&s.limits, &items)?;
    let state = s.clone();
    run_limited(&s.permits, &s.limits, move || {
        let _slot = slot;
        infer(&state, items)
    })
    .await?
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
        .map_err(|_| busy())?
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

/// Decode the slices, group them by patient and predict each patient's slices together.
fn infer(s: &AppState, items: Vec<Item>) -> Result<Vec<SliceResult>, ApiError> {
    // By the `<patient>` of `<patient>_<n>` names; other names form one group.
    let mut patients: BTreeMap<String, Vec<InputSlice>> = BTreeMap::new();
    for Item { slice: u, mask } in items {
        let img =
            decode_slice(std::path::Path::new(&u.name), &u.bytes, ChannelPolicy::Lenient).map_err(|e| unprocessable(e.to_string()))?;
        let truth = match mask {
            None => None,
            Some(m) if img.turned => {
                return Err(unprocessable(format!(
                    "{}: its slice {} is turned by its EXIF orientation, and whether the mask was drawn on it turned is unknown; send the slice without the orientation tag, or without its mask",
                    m.name, u.name
                )))
            }
            Some(m) => {
                let mk = decode_mask(std::path::Path::new(&m.name), &m.bytes).map_err(|e| unprocessable(e.to_string()))?;
                if (mk.width, mk.height) != (img.width, img.height) {
                    return Err(unprocessable(format!("{}: mask size differs from its slice", m.name)));
                }
                Some(mk.data)
            }
        };
        let stem = file_stem(&u.name);
        // Told apart in any letter case, as the slices' names are.
        let (patient, number) = parse_slice_stem(&stem)
            .map(|(patient, n, _)| (patient.to_ascii_lowercase(), n))
            .unwrap_or_default();
        patients
            .entry(patient)
            .or_default()
            .push(InputSlice::from_image(u.name, stem, number, img, truth));
    }
    let several = patients.len();
    let mut results = Vec::new();
    for (patient, mut slices) in patients {
        order_slices(&mut slices);
        if several > 1 {
            let who = if patient.is_empty() {
                "slices not named <patient>_<n>".to_string()
            } else {
                patient
            };
            for slice in &mut slices {
                slice.notes.push(format!(
                    "one of {several} patients in this request by file name ({who}): normalised and cleaned up apart from the others"
                ));
            }
        }
        let volume = Volume {
            id: "upload".into(),
            source: "upload".into(),
            slices,
            nifti: None,
            dicom: None,
            slice_thickness_mm: None,
            notes: Vec::new(),
        };
        let preds = predict_volume(&s.bundle, &volume, &predict_options());
        results.extend(slice_results(&volume, &preds));
    }
    Ok(results)
}

fn predict_options() -> PredictOptions {
    PredictOptions {
        batch_size: 16,
        ..Default::default()
    }
}

/// A volume's predictions as the API reports them.
fn slice_results(volume: &Volume, preds: &[tumorscan_predict::SlicePrediction]) -> Vec<SliceResult> {
    volume.slices.iter().zip(preds).map(|(inp, p)| slice_result(inp, p)).collect()
}

/// One slice's prediction as the API reports it.
fn slice_result(inp: &InputSlice, p: &tumorscan_predict::SlicePrediction) -> SliceResult {
    let mask = image::GrayImage::from_raw(p.width, p.height, p.mask.iter().map(|&v| v * 255).collect()).unwrap_or_default();
    let flair = tumorscan_data::render::flair_gray(&inp.rgb, inp.width, inp.height);
    let counts = inp.truth.as_ref().map(|t| Counts::of(&p.mask, t));
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
        dice: counts.map(|c| c.dice().unwrap_or(1.0)),
        truth_pixels: counts.map(|c| c.tp + c.fn_),
        overlap_pixels: counts.map(|c| c.tp),
        notes: inp.notes.clone(),
    }
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
    let (header_timeout, write_timeout) = (limits.header_timeout, limits.write_timeout);
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
            let mut conn = std::pin::pin!(builder.serve_connection(TokioIo::new(WriteTimeout::new(stream, write_timeout)), service));
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
