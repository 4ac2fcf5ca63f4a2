//! `tumorscan serve`.

use anyhow::Result;
use clap::Args;
use std::path::PathBuf;
use std::time::Duration;
use tumorscan_model::ComputeDevice;
use tumorscan_predict::ModelBundle;
use tumorscan_serve::{serve, Limits};

/// `serve` arguments.
#[derive(Args)]
#[command(after_help = "Examples:
  tumorscan serve                                   # http://127.0.0.1:8080/ : drop slices on the page
  curl -F file=@scan.tif http://127.0.0.1:8080/v1/predict
  curl --data-binary @scan.png -H 'content-type: image/png' http://127.0.0.1:8080/v1/predict
  tumorscan serve --samples samples/TCGA_CS_5393_19990606   # then /?demo=/samples/TCGA_CS_5393_19990606_8.tif")]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: String,
    /// Model folder; default: the built-in model.
    #[arg(long)]
    model: Option<PathBuf>,
    /// Largest request body in MB.
    #[arg(long, default_value_t = 20)]
    max_body_mb: usize,
    /// Inferences at once (memory stays bounded under load).
    #[arg(long, default_value_t = 2)]
    concurrency: usize,
    /// Seconds a request may wait for an inference slot before 503.
    #[arg(long, default_value_t = 30)]
    queue_timeout: u64,
    /// Serve the images of this folder under /samples/ (demos and browser tests).
    #[arg(long)]
    samples: Option<PathBuf>,
}

/// Run the server until Ctrl-C.
pub fn run(a: ServeArgs) -> Result<()> {
    let device = ComputeDevice::cpu().inference().map_err(anyhow::Error::msg)?;
    let bundle = ModelBundle::open(a.model.as_deref(), &device)?;
    let limits = Limits {
        max_body_bytes: a.max_body_mb * 1024 * 1024,
        max_concurrent: a.concurrency,
        queue_timeout: Duration::from_secs(a.queue_timeout),
        ..Limits::default()
    };
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(serve(&a.addr, bundle, limits, a.samples))
}
