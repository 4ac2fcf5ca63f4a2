//! `tumorscan bench`: time training steps and inference batches of the shipped architectures
//! on synthetic input (same shapes as real slices), for side-by-side comparison with PyTorch
//! (`bench/compare`). Prints one JSON object.

use anyhow::Result;
use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams};
use burn::prelude::*;
use clap::Args;
use std::time::Instant;
use tumorscan_model::{
    BackendKind, ClassifierConfig, ComputeDevice, EfficientUNet, FoldedClassifier, FoldedEfficientUNet, FoldedSegmenter, LiteVariant,
    SegmentationNet, SegmenterConfig, SegmenterNet, SliceClassifier,
};
use tumorscan_train::loss::{bce_with_logits, SegLoss};

/// `bench` arguments.
#[derive(Args)]
pub struct BenchArgs {
    /// Architecture: unet, resunet, effunet (U-Net on EfficientNet-Lite0), effunet-lite1 or classifier.
    #[arg(long, default_value = "unet")]
    arch: String,
    /// Initial features of the U-Nets and the classifier [default: 16]; the EfficientNet
    /// U-Nets' widths are fixed by their encoder.
    #[arg(long)]
    features: Option<usize>,
    /// Input size.
    #[arg(long, default_value_t = 128)]
    size: usize,
    /// Batch size.
    #[arg(long, default_value_t = 16)]
    batch: usize,
    /// Timed training steps (after one warm-up step); 0 skips training.
    #[arg(long, default_value_t = 5)]
    steps: usize,
    /// Timed inference batches (after one warm-up batch); 0 skips inference.
    #[arg(long, default_value_t = 5)]
    batches: usize,
    /// Compute device: cpu, cuda, cuda:N.
    #[arg(long, default_value = "cpu")]
    device: BackendKind,
}

/// Refuse what the networks cannot be built or run with (they would panic deep in burn).
fn check(a: &BenchArgs) -> Result<()> {
    // Four poolings (U-Nets, classifier) or five strided stages (EfficientNet) halve the input.
    let multiple = match a.arch.as_str() {
        "unet" | "resunet" | "classifier" => 16,
        "effunet" | "effunet-lite1" => 32,
        other => anyhow::bail!("--arch {other}: use unet, resunet, effunet, effunet-lite1 or classifier"),
    };
    anyhow::ensure!(
        (32..=1024).contains(&a.size) && a.size.is_multiple_of(multiple),
        "--size for --arch {} must be a multiple of {multiple} from 32 to 1024, not {}",
        a.arch,
        a.size
    );
    anyhow::ensure!(a.batch >= 1, "--batch must be at least 1");
    anyhow::ensure!(a.features != Some(0), "--features must be at least 1");
    anyhow::ensure!(
        multiple == 16 || a.features.is_none(),
        "--features: the widths of --arch {} are fixed by its encoder; leave --features out",
        a.arch
    );
    anyhow::ensure!(a.steps + a.batches > 0, "--steps 0 and --batches 0: nothing to time");
    Ok(())
}

impl BenchArgs {
    /// Initial features of the U-Nets and the classifier.
    fn features(&self) -> usize {
        self.features.unwrap_or(16)
    }
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

/// Timings of one architecture, seconds per step or batch.
#[derive(Default)]
struct Times {
    /// Parameters as burn counts them (`num_params`): batch norm's running statistics and the
    /// EfficientNet encoder's unused ImageNet head included, which no gradient reaches.
    params: usize,
    /// Folding the network for CPU inference (once, as `predict` does when it loads a model).
    fold: Option<f64>,
    step: Vec<f64>,
    // Forward + loss on the training (autodiff) device, waited for: splits a step into its
    // forward part and the rest (backward + optimizer).
    fwd: Vec<f64>,
    infer: Vec<f64>,
    burn: Vec<f64>,
}

/// `a.steps` timed Adam steps of `net` (after one warm-up step), `loss` giving a batch's loss.
/// Timed as PyTorch's side is: from the forward pass of a batch made beforehand to the end of
/// the optimizer's update.
fn train_steps<M: Module + 'static>(mut net: M, a: &BenchArgs, dev: &Device, loss: impl Fn(&M, Tensor<4>) -> Tensor<1>, t: &mut Times) {
    t.params = net.num_params();
    let mut optim = AdamConfig::new().init();
    // Flex computes each operation as it is called; a GPU queues them, so waits are needed there.
    let gpu = !matches!(a.device, BackendKind::Flex);
    for i in 0..a.steps + usize::from(a.steps > 0) {
        let x = input(a.batch, a.size, dev);
        if gpu {
            sync(x.clone());
        }
        let start = Instant::now();
        let l = loss(&net, x);
        if i > 0 {
            let _ = l.clone().into_data();
            t.fwd.push(start.elapsed().as_secs_f64());
        }
        let grads = GradientsParams::from_grads(l.backward(), &net);
        net = optim.step(1e-4, net, grads);
        if gpu {
            // Waits for the queued update: a tiny forward pass through the updated weights.
            sync(loss(&net, input(1, a.size.min(32), dev)));
        }
        if i > 0 {
            t.step.push(start.elapsed().as_secs_f64());
        }
    }
}

/// `a.batches` timed inference batches (after one warm-up; none when `a.batches` is 0):
/// `fast` is what predict runs (the network folded beforehand on the CPU), `burn` burn's own
/// forward pass.
fn infer_batches<R>(a: &BenchArgs, dev: &Device, fast: impl Fn(&[&[f32]]) -> R, burn: impl Fn(&[&[f32]]) -> R, t: &mut Times) {
    if a.batches == 0 {
        return;
    }
    for i in 0..=a.batches {
        let x = images(a.batch, a.size, dev);
        let refs: Vec<&[f32]> = x.iter().map(Vec::as_slice).collect();
        let t0 = Instant::now();
        let _ = fast(&refs);
        let t1 = Instant::now();
        let _ = burn(&refs);
        if i > 0 {
            t.infer.push((t1 - t0).as_secs_f64());
            t.burn.push(t1.elapsed().as_secs_f64());
        }
    }
}

fn seg_loss(logits: Tensor<4>) -> Tensor<1> {
    SegLoss::BceDice.compute(logits.clone(), logits.zeros_like())
}

/// `fold()`, its time recorded in `t`.
fn folding<F>(t: &mut Times, fold: impl FnOnce() -> F) -> F {
    let start = Instant::now();
    let folded = fold();
    t.fold = Some(start.elapsed().as_secs_f64());
    folded
}

/// The median of `v` (the mean of the middle two for an even count, as Python's
/// `statistics.median` on the PyTorch side), `None` for no values.
fn median(v: &mut [f64]) -> Option<f64> {
    v.sort_by(|x, y| x.total_cmp(y));
    let n = v.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(v[n / 2]),
        _ => Some((v[n / 2 - 1] + v[n / 2]) / 2.0),
    }
}

/// Run the benchmark and print JSON.
pub fn run(a: BenchArgs) -> Result<()> {
    check(&a)?;
    let compute = ComputeDevice(a.device);
    let (infer_dev, train_dev) = (
        compute.inference().map_err(anyhow::Error::msg)?,
        compute.training().map_err(anyhow::Error::msg)?,
    );
    infer_dev.seed(0);
    let mut t = Times::default();
    let size = a.size as u32;
    // The CPU's inference path is the folded network, folded once as `predict` does at load.
    let cpu = matches!(a.device, BackendKind::Flex);
    match a.arch.as_str() {
        "unet" | "resunet" => {
            let cfg = SegmenterConfig {
                features: a.features(),
                depth: 4,
                residual: a.arch == "resunet",
                input_size: size,
                ..Default::default()
            };
            train_steps(
                SegmentationNet::new(&cfg, &train_dev),
                &a,
                &train_dev,
                |n, x| seg_loss(n.forward(x)),
                &mut t,
            );
            let valid = SegmentationNet::new(&cfg, &infer_dev).valid();
            let folded = (cpu && a.batches > 0).then(|| folding(&mut t, || FoldedSegmenter::new(&valid)));
            infer_batches(
                &a,
                &infer_dev,
                |x| match &folded {
                    Some(f) => f.probabilities(x, size, a.batch),
                    None => valid.probabilities(x, size, &infer_dev, a.batch),
                },
                |x| valid.probabilities_burn(x, size, &infer_dev, a.batch),
                &mut t,
            );
        }
        "effunet" | "effunet-lite1" => {
            let encoder = if a.arch == "effunet" {
                LiteVariant::Lite0
            } else {
                LiteVariant::Lite1
            };
            train_steps(
                EfficientUNet::build(encoder, 3, &train_dev),
                &a,
                &train_dev,
                |n, x| seg_loss(n.forward(x)),
                &mut t,
            );
            let valid = EfficientUNet::build(encoder, 3, &infer_dev).valid();
            let folded = (cpu && a.batches > 0).then(|| folding(&mut t, || FoldedEfficientUNet::new(&valid)));
            infer_batches(
                &a,
                &infer_dev,
                |x| match &folded {
                    Some(f) => f.probabilities(x, size, a.batch),
                    None => SegmenterNet::probabilities(&valid, x, size, &infer_dev, a.batch),
                },
                |x| valid.probabilities_burn(x, size, &infer_dev, a.batch),
                &mut t,
            );
        }
        "classifier" => {
            let cfg = ClassifierConfig {
                features: a.features(),
                stages: 4,
                input_size: size,
                ..Default::default()
            };
            let loss = |n: &SliceClassifier, x| {
                let l = n.forward(x);
                bce_with_logits(l.clone(), l.zeros_like())
            };
            train_steps(SliceClassifier::new(&cfg, &train_dev), &a, &train_dev, loss, &mut t);
            let valid = SliceClassifier::new(&cfg, &infer_dev).valid();
            let folded = (cpu && a.batches > 0).then(|| folding(&mut t, || FoldedClassifier::new(&valid)));
            infer_batches(
                &a,
                &infer_dev,
                |x| match &folded {
                    Some(f) => f.probabilities(x, size, a.batch),
                    None => valid.probabilities(x, size, &infer_dev, a.batch),
                },
                |x| valid.probabilities_burn(x, size, &infer_dev, a.batch),
                &mut t,
            );
        }
        other => anyhow::bail!("--arch {other}: use unet, resunet, effunet, effunet-lite1 or classifier"),
    }
    let (step, inf, burn_inf) = (median(&mut t.step), median(&mut t.infer), median(&mut t.burn));
    let fwd = median(&mut t.fwd);
    let per_s = |s: Option<f64>| s.map(|s| a.batch as f64 / s);
    let features = (a.arch != "effunet" && a.arch != "effunet-lite1").then(|| a.features());
    let json = serde_json::json!({
        "framework": "tumorscan (burn 0.22)", "version": env!("CARGO_PKG_VERSION"), "backend": format!("{:?}", a.device), "arch": a.arch, "features": features, "size": a.size, "batch": a.batch,
        "threads": rayon::current_num_threads(), "params": t.params,
        "train_step_s": step, "train_slices_per_s": per_s(step), "infer_batch_s": inf, "infer_slices_per_s": per_s(inf),
        // The path above is what predict runs (folded on the CPU, once: "fold_s"); this is burn's
        // own forward pass, unfolded, as PyTorch's eval mode runs.
        "infer_burn_forward_batch_s": burn_inf,
        "fold_s": t.fold,
        // Part of train_step_s spent in forward + loss (the step waits for it before backward).
        "train_forward_s": fwd,
        "peak_rss_mb": peak_rss_mb(),
    });
    println!("{json}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(arch: &str, size: usize, batch: usize, features: usize) -> BenchArgs {
        BenchArgs {
            arch: arch.into(),
            features: (!arch.starts_with("effunet")).then_some(features),
            size,
            batch,
            steps: 1,
            batches: 1,
            device: BackendKind::Flex,
        }
    }

    /// Shapes that used to panic inside burn are refused with the flag to change.
    #[test]
    fn impossible_shapes_are_refused() {
        assert!(check(&args("unet", 128, 16, 16)).is_ok());
        assert!(check(&args("effunet", 192, 16, 16)).is_ok());
        for (a, needle) in [
            (args("unet", 0, 2, 16), "--size"),
            (args("unet", 100, 2, 16), "multiple of 16"),
            (args("effunet", 48, 2, 16), "multiple of 32"),
            (args("classifier", 8, 2, 16), "--size"),
            (args("unet", 65536, 2, 16), "1024"),
            (args("unet", 128, 0, 16), "--batch"),
            (args("unet", 128, 2, 0), "--features"),
            (args("vgg", 128, 2, 16), "--arch vgg"),
            (
                BenchArgs {
                    features: Some(16),
                    ..args("effunet", 192, 2, 16)
                },
                "fixed by its encoder",
            ),
            (
                BenchArgs {
                    steps: 0,
                    batches: 0,
                    ..args("unet", 128, 2, 16)
                },
                "nothing to time",
            ),
        ] {
            let err = check(&a).unwrap_err().to_string();
            assert!(err.contains(needle), "{needle}: {err}");
        }
    }

    /// Medians as Python's `statistics.median` takes them on the PyTorch side.
    #[test]
    fn medians_match_python() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&mut []), None);
    }
}
