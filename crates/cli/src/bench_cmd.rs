//! `tumorscan bench`: time training steps and inference batches of the shipped architectures
//! on synthetic input (same shapes as real slices), for side-by-side comparison with PyTorch
//! (`bench/compare`). Prints one JSON object.

use anyhow::Result;
use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams};
use burn::prelude::*;
use clap::Args;
use std::time::Instant;
use tumorscan_model::{BackendKind, ClassifierConfig, ComputeDevice, SegmentationNet, SegmenterConfig, SliceClassifier};
use tumorscan_train::loss::{bce_with_logits, SegLoss};

/// `bench` arguments.
#[derive(Args)]
pub struct BenchArgs {
    /// Architecture: unet, resunet or classifier.
    #[arg(long, default_value = "unet")]
    arch: String,
    /// Initial features.
    #[arg(long, default_value_t = 16)]
    features: usize,
    /// Input size.
    #[arg(long, default_value_t = 128)]
    size: usize,
    /// Batch size.
    #[arg(long, default_value_t = 16)]
    batch: usize,
    /// Timed training steps (after one warm-up step); 0 skips training.
    #[arg(long, default_value_t = 5)]
    steps: usize,
    /// Timed inference batches (after one warm-up batch).
    #[arg(long, default_value_t = 5)]
    batches: usize,
    /// Compute device: cpu, cuda, cuda:N.
    #[arg(long, default_value = "cpu")]
    device: BackendKind,
}

fn peak_rss_mb() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: f64 = s
        .lines()
        .find(|l| l.starts_with("VmHWM"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kb / 1024.0)
}

fn input(b: usize, s: usize, device: &Device) -> Tensor<4> {
    Tensor::random([b, 3, s, s], burn::tensor::Distribution::Normal(0.0, 1.0), device)
}

/// Random inputs as prediction receives them: one `3 x size x size` buffer per slice.
fn images(b: usize, s: usize, device: &Device) -> Vec<Vec<f32>> {
    let flat = input(b, s, device)
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .unwrap_or_default();
    flat.chunks(3 * s * s).map(<[f32]>::to_vec).collect()
}

fn sync<const D: usize>(t: Tensor<D>) {
    // Reading one value waits for the backend to finish (matters on GPUs).
    let _ = t.slice_dim(0, 0..1).into_data();
}

/// Run the benchmark and print JSON.
pub fn run(a: BenchArgs) -> Result<()> {
    let compute = ComputeDevice(a.device);
    let (infer_dev, train_dev) = (
        compute.inference().map_err(anyhow::Error::msg)?,
        compute.training().map_err(anyhow::Error::msg)?,
    );
    infer_dev.seed(0);
    let mut step_times = Vec::new();
    // Forward + loss on the training (autodiff) device, waited for: splits a step into its
    // forward part and the rest (backward + optimizer).
    let mut fwd_times = Vec::new();
    let mut infer_times = Vec::new();
    let mut burn_times = Vec::new();
    match a.arch.as_str() {
        "unet" | "resunet" => {
            let cfg = SegmenterConfig {
                features: a.features,
                depth: 4,
                residual: a.arch == "resunet",
                input_size: a.size as u32,
                ..Default::default()
            };
            let mut net = SegmentationNet::new(&cfg, &train_dev);
            let mut optim = AdamConfig::new().init();
            let target = Tensor::<4>::zeros([a.batch, 1, a.size, a.size], &train_dev);
            for i in 0..a.steps + usize::from(a.steps > 0) {
                let t = Instant::now();
                let loss = SegLoss::BceDice.compute(net.forward(input(a.batch, a.size, &train_dev)), target.clone());
                if i > 0 {
                    let _ = loss.clone().into_data();
                    fwd_times.push(t.elapsed().as_secs_f64());
                }
                let grads = GradientsParams::from_grads(loss.backward(), &net);
                net = optim.step(1e-4, net, grads);
                sync(net.forward(input(1, a.size.min(32), &train_dev)));
                if i > 0 {
                    step_times.push(t.elapsed().as_secs_f64());
                }
            }
            let valid = SegmentationNet::new(&cfg, &infer_dev).valid();
            for i in 0..=a.batches {
                let x = images(a.batch, a.size, &infer_dev);
                let refs: Vec<&[f32]> = x.iter().map(Vec::as_slice).collect();
                let t = Instant::now();
                let _ = valid.probabilities(&refs, a.size as u32, &infer_dev, a.batch);
                let t1 = Instant::now();
                let _ = valid.probabilities_burn(&refs, a.size as u32, &infer_dev, a.batch);
                if i > 0 {
                    infer_times.push((t1 - t).as_secs_f64());
                    burn_times.push(t1.elapsed().as_secs_f64());
                }
            }
        }
        "classifier" => {
            let cfg = ClassifierConfig {
                features: a.features,
                stages: 4,
                input_size: a.size as u32,
                ..Default::default()
            };
            let mut net = SliceClassifier::new(&cfg, &train_dev);
            let mut optim = AdamConfig::new().init();
            let target = Tensor::<1>::zeros([a.batch], &train_dev);
            for i in 0..a.steps + usize::from(a.steps > 0) {
                let t = Instant::now();
                let loss = bce_with_logits(net.forward(input(a.batch, a.size, &train_dev)), target.clone());
                if i > 0 {
                    let _ = loss.clone().into_data();
                    fwd_times.push(t.elapsed().as_secs_f64());
                }
                let grads = GradientsParams::from_grads(loss.backward(), &net);
                net = optim.step(1e-4, net, grads);
                sync(net.forward(input(1, a.size, &train_dev)));
                if i > 0 {
                    step_times.push(t.elapsed().as_secs_f64());
                }
            }
            let valid = SliceClassifier::new(&cfg, &infer_dev).valid();
            for i in 0..=a.batches {
                let x = images(a.batch, a.size, &infer_dev);
                let refs: Vec<&[f32]> = x.iter().map(Vec::as_slice).collect();
                let t = Instant::now();
                let _ = valid.probabilities(&refs, a.size as u32, &infer_dev, a.batch);
                let t1 = Instant::now();
                let _ = valid.probabilities_burn(&refs, a.size as u32, &infer_dev, a.batch);
                if i > 0 {
                    infer_times.push((t1 - t).as_secs_f64());
                    burn_times.push(t1.elapsed().as_secs_f64());
                }
            }
        }
        other => anyhow::bail!("--arch {other}: use unet, resunet or classifier"),
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(|x, y| x.total_cmp(y));
        v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
    };
    let (step, inf, burn_inf) = (median(&mut step_times), median(&mut infer_times), median(&mut burn_times));
    let fwd = median(&mut fwd_times);
    let json = serde_json::json!({
        "framework": "tumorscan (burn 0.22)", "backend": format!("{:?}", a.device), "arch": a.arch, "features": a.features, "size": a.size, "batch": a.batch,
        "threads": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "train_step_s": step, "train_slices_per_s": a.batch as f64 / step, "infer_batch_s": inf, "infer_slices_per_s": a.batch as f64 / inf,
        // The path above is what predict runs (folded on the CPU); this is burn's own forward pass.
        "infer_burn_forward_batch_s": burn_inf,
        // Part of train_step_s spent in forward + loss (the step waits for it before backward).
        "train_forward_s": fwd,
        "peak_rss_mb": peak_rss_mb(),
    });
    println!("{json}");
    Ok(())
}
