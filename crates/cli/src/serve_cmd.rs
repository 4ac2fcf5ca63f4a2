//! `tumorscan serve`.

use anyhow::{bail, Context, Result};
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
    /// Largest request body in MiB (a patient of 88 slices with their masks is about 23 MiB).
    #[arg(long, default_value_t = Limits::default().max_body_bytes / (1024 * 1024), value_parser = at_least_one::<usize>)]
    max_body_mb: usize,
    /// Most image files (slices and _mask files, DICOM files) in one request, and most slices of
    /// one NIfTI volume.
    #[arg(long, default_value_t = Limits::default().max_files, value_parser = at_least_one::<usize>)]
    max_files: usize,
    /// Most pixels in one image (1048576 = 1024x1024; the LGG scans are 256x256).
    #[arg(long, default_value_t = Limits::default().max_image_pixels, value_parser = at_least_one::<u64>)]
    max_image_pixels: u64,
    /// Most pixels of all the images of one request together (every voxel of a NIfTI volume
    /// counts; 50331648 = 48 x 1024x1024).
    #[arg(long, default_value_t = Limits::default().max_request_pixels, value_parser = at_least_one::<u64>)]
    max_request_pixels: u64,
    /// Inferences at once (memory stays bounded under load).
    #[arg(long, default_value_t = Limits::default().max_concurrent, value_parser = at_least_one::<usize>)]
    concurrency: usize,
    /// Seconds a request may wait for an inference slot before 503.
    #[arg(long, default_value_t = 30)]
    queue_timeout: u64,
    /// Seconds a client may take to send a request's headers (or stay idle between requests)
    /// before it is disconnected.
    #[arg(long, default_value_t = Limits::default().header_timeout.as_secs(), value_parser = at_least_one::<u64>)]
    header_timeout: u64,
    /// Seconds a client may take to send a request body before 408.
    #[arg(long, default_value_t = Limits::default().body_timeout.as_secs(), value_parser = at_least_one::<u64>)]
    body_timeout: u64,
    /// Seconds a reply may wait for the client to read any of it before the connection is
    /// closed (a client that never reads would hold the reply in memory).
    #[arg(long, default_value_t = Limits::default().write_timeout.as_secs(), value_parser = at_least_one::<u64>)]
    write_timeout: u64,
    /// Serve the images of this folder under /samples/ (demos and browser tests).
    #[arg(long)]
    samples: Option<PathBuf>,
}

/// A count or size that must be at least 1 (0 would refuse every request).
fn at_least_one<T: std::str::FromStr + PartialOrd + From<u8>>(s: &str) -> Result<T, String> {
    match s.parse::<T>() {
        Ok(v) if v >= T::from(1) => Ok(v),
        Ok(_) => Err("must be at least 1".into()),
        Err(_) => Err(format!("'{s}' is not a whole number")),
    }
}

/// Run the server until Ctrl-C.
pub fn run(a: ServeArgs) -> Result<()> {
    if let Some(dir) = &a.samples {
        if !dir.is_dir() {
            bail!("--samples {}: not a folder", dir.display());
        }
    }
    let max_body_bytes = a
        .max_body_mb
        .checked_mul(1024 * 1024)
        .with_context(|| format!("--max-body-mb {} is too large", a.max_body_mb))?;
    let limits = Limits {
        max_body_bytes,
        max_files: a.max_files,
        max_image_pixels: a.max_image_pixels,
        max_request_pixels: a.max_request_pixels,
        max_concurrent: a.concurrency,
        queue_timeout: Duration::from_secs(a.queue_timeout),
        header_timeout: Duration::from_secs(a.header_timeout),
        body_timeout: Duration::from_secs(a.body_timeout),
        write_timeout: Duration::from_secs(a.write_timeout),
        ..Limits::default()
    };
    limits.validate()?;
    let device = ComputeDevice::cpu().inference().map_err(anyhow::Error::msg)?;
    let bundle = ModelBundle::open(a.model.as_deref(), &device)?;
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(serve(&a.addr, bundle, limits, a.samples))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        serve: ServeArgs,
    }

    fn parse(args: &[&str]) -> Result<ServeArgs, clap::Error> {
        Cli::try_parse_from(std::iter::once("serve").chain(args.iter().copied())).map(|c| c.serve)
    }

    #[test]
    fn zero_sizes_counts_and_timeouts_are_refused() {
        for flag in [
            "--max-body-mb",
            "--max-files",
            "--max-image-pixels",
            "--max-request-pixels",
            "--concurrency",
            "--header-timeout",
            "--body-timeout",
            "--write-timeout",
        ] {
            let err = parse(&[flag, "0"]).err().unwrap_or_else(|| panic!("{flag} 0 accepted"));
            assert!(err.to_string().contains("must be at least 1"), "{flag}: {err}");
        }
        assert_eq!(parse(&[]).unwrap().max_body_mb, 64);
    }

    /// Timeouts so large that the timers overflow left every connection unanswered; a huge
    /// --concurrency would overflow the semaphores.
    #[test]
    fn timeouts_over_a_day_and_huge_concurrency_are_refused_before_serving() {
        for flag in ["--header-timeout", "--body-timeout", "--write-timeout", "--queue-timeout"] {
            let a = parse(&[flag, "9300000000000000000", "--addr", "127.0.0.1:1"]).unwrap();
            let err = run(a).unwrap_err().to_string();
            assert!(err.contains(flag) && err.contains("at most 86400 s"), "{flag}: {err}");
        }
        let a = parse(&["--concurrency", "18446744073709551615", "--addr", "127.0.0.1:1"]).unwrap();
        let err = run(a).unwrap_err().to_string();
        assert!(err.contains("--concurrency") && err.contains("at most 1024"), "{err}");
    }

    #[test]
    fn samples_must_be_a_folder() {
        let a = parse(&["--samples", "/nonexistent/tumorscan-samples"]).unwrap();
        let err = run(a).unwrap_err().to_string();
        assert!(err.contains("--samples") && err.contains("not a folder"), "{err}");
    }
}
