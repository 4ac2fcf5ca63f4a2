//! Data parallelism over several devices of one machine (`train --devices cuda:0,cuda:1`).
//!
//! Every step's batch is split into one contiguous shard per device; each device runs the
//! forward and backward pass of a replica forked from the current weights, the shard's loss
//! weighted by its share of the batch, and the gradients are summed on the first device in
//! device order, so one optimiser step sees the gradient of the whole batch's mean loss. As in
//! PyTorch's DDP without SyncBatchNorm, batch-norm statistics are per shard. burn keeps a
//! running statistic per thread and averages them when they are read, so every replica lives
//! on its own thread for the whole run (a fresh thread per step would leave stale entries).
//!
//! burn 0.22's own `ExecutionStrategy::ddp` belongs to burn-train's `Learner` (and its NCCL
//! all-reduce to burn-collective), which this engine does not use; this is the same scheme on
//! the engine's own loop, with the reduction done by copying gradients to the first device.

use crate::engine::{to_tensors, Task};
use anyhow::{anyhow, Result};
use burn::module::Module;
use burn::optim::{GradientsAccumulator, GradientsParams};
use burn::prelude::*;
use std::sync::mpsc;
use std::thread::Scope;
use tumorscan_data::augment::Sample;

/// Work for one replica: the weights to fork, its shard and the shard's share of the batch.
struct Job<N> {
    net: N,
    shard: Vec<Sample>,
    share: f32,
}

/// What a replica sends back: its index, and its weighted loss and gradients (on the first
/// device) or the error that stopped it.
type Reply = (usize, std::result::Result<(f64, GradientsParams), String>);

/// Long-lived replica threads, one per device, inside a [`std::thread::scope`].
pub struct Replicas<N> {
    jobs: Vec<mpsc::Sender<Job<N>>>,
    replies: mpsc::Receiver<Reply>,
}

impl<N: Module + Send + 'static> Replicas<N> {
    /// Start one thread per device in `scope`; `devices[0]` is where the optimiser's weights
    /// live and where the gradients are gathered.
    pub fn spawn<'scope, 'env, T>(scope: &'scope Scope<'scope, 'env>, task: &'env T, devices: &[Device], size: u32) -> Self
    where
        T: Task<Net = N>,
    {
        let (reply_tx, replies) = mpsc::channel::<Reply>();
        let main = devices[0].clone();
        let jobs = devices
            .iter()
            .enumerate()
            .map(|(index, device)| {
                let (tx, rx) = mpsc::channel::<Job<N>>();
                let (device, main, reply_tx) = (device.clone(), main.clone(), reply_tx.clone());
                scope.spawn(move || {
                    // Ends when the engine drops its senders (end of run or error).
                    for job in rx {
                        let work = || {
                            let replica = job.net.fork(&device);
                            let batch = to_tensors(&job.shard, size, &device);
                            let loss = task.loss(&replica, batch).mul_scalar(job.share);
                            let value = loss.clone().into_scalar::<f32>() as f64;
                            if value.is_finite() {
                                let grads = GradientsParams::from_grads(loss.backward(), &replica).to_device(&main, &replica);
                                Ok((value, grads))
                            } else {
                                Err(format!("training diverged: loss {value} on device {index}; lower --lr"))
                            }
                        };
                        // A panic (e.g. out of device memory) becomes an error reply: the engine
                        // waits for every replica's answer and would otherwise wait forever.
                        let reply = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work))
                            .unwrap_or_else(|p| Err(format!("device {index} failed: {}", panic_text(p.as_ref()))));
                        if reply_tx.send((index, reply)).is_err() {
                            break;
                        }
                    }
                });
                tx
            })
            .collect();
        Self { jobs, replies }
    }

    /// Number of replicas.
    pub fn len(&self) -> usize {
        self.jobs.len()
    }

    /// Whether there are no replicas (never, for a spawned set).
    pub fn is_empty(&self) -> bool {
        self.jobs.is_empty()
    }

    /// Loss (the batch mean) and gradients of one batch, split over the replicas.
    pub fn step(&self, net: &N, samples: Vec<Sample>) -> Result<(f64, GradientsParams)> {
        let n = samples.len();
        let shards = split_even(samples, self.jobs.len());
        let used = shards.len();
        for (shard, tx) in shards.into_iter().zip(&self.jobs) {
            let share = shard.len() as f32 / n as f32;
            tx.send(Job {
                net: net.clone(),
                shard,
                share,
            })
            .map_err(|_| anyhow!("a training replica stopped"))?;
        }
        let mut got: Vec<(usize, (f64, GradientsParams))> = Vec::with_capacity(used);
        for _ in 0..used {
            let (index, reply) = self.replies.recv().map_err(|_| anyhow!("a training replica stopped"))?;
            got.push((index, reply.map_err(|e| anyhow!(e))?));
        }
        // Sum in device order, whatever order the replicas finished in.
        got.sort_by_key(|(i, _)| *i);
        let mut acc = GradientsAccumulator::<N>::new();
        let mut loss = 0.0;
        for (_, (value, grads)) in got {
            loss += value;
            acc.accumulate(net, grads);
        }
        Ok((loss, acc.grads()))
    }
}

fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".into())
}

/// `items` cut into at most `parts` contiguous shards whose sizes differ by at most one
/// (fewer shards than parts when there are fewer items).
pub fn split_even<X>(items: Vec<X>, parts: usize) -> Vec<Vec<X>> {
    let n = items.len();
    let parts = parts.clamp(1, n.max(1));
    let mut it = items.into_iter();
    (0..parts)
        .map(|p| it.by_ref().take(n / parts + usize::from(p < n % parts)).collect())
        .filter(|s: &Vec<X>| !s.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loss::SegLoss;
    use crate::segment::SegmentTask;
    use tumorscan_model::{ComputeDevice, SegmenterConfig};

    #[test]
    fn split_even_keeps_order_and_balance() {
        assert_eq!(split_even((0..7).collect(), 3), vec![vec![0, 1, 2], vec![3, 4], vec![5, 6]]);
        assert_eq!(split_even((0..2).collect(), 4), vec![vec![0], vec![1]]);
        assert_eq!(split_even(Vec::<u8>::new(), 2), Vec::<Vec<u8>>::new());
    }

    fn sample(seed: u32, size: usize) -> Sample {
        let f = |k: usize| ((k as f32 + seed as f32 * 7.3) * 0.618).sin();
        Sample {
            image: (0..3 * size * size).map(f).collect(),
            mask: (0..size * size).map(|k| (f(k * 3) > 0.3) as u8 as f32).collect(),
        }
    }

    /// A small segmentation task at 16x16.
    fn tiny_task(residual: bool) -> SegmentTask {
        SegmentTask::new(
            SegmenterConfig {
                features: 4,
                depth: 2,
                residual,
                input_size: 16,
                ..Default::default()
            },
            SegLoss::BceDice,
            None,
        )
    }

    /// Two replicas that each get a copy of the same shard must give exactly the gradient of
    /// that shard on one device: the shares halve each gradient and the sum restores it.
    #[test]
    fn replicas_reproduce_the_single_device_gradient() {
        let _guard = crate::tests_engine::serial();
        let task = tiny_task(true);
        let device = ComputeDevice::cpu().training().unwrap();
        // Two equal networks with their own running statistics (a clone would share them);
        // burn initialises parameters lazily, so draw them right after seeding.
        let build = || {
            device.seed(5);
            let net = task.build(&device);
            values(&net);
            net
        };
        let (net, twin) = (build(), build());
        let before = values(&twin);
        let shard: Vec<Sample> = (0..3).map(|i| sample(i, 16)).collect();
        let loss = task.loss(&net, to_tensors(&shard, 16, &device));
        let single_loss = loss.clone().into_scalar::<f32>() as f64;
        let single = GradientsParams::from_grads(loss.backward(), &net);
        let (par_loss, par) = std::thread::scope(|s| {
            let replicas = Replicas::spawn(s, &task, &[device.clone(), device.clone()], 16);
            assert_eq!(replicas.len(), 2);
            let twice: Vec<Sample> = shard.iter().chain(&shard).cloned().collect();
            replicas.step(&twin, twice).unwrap()
        });
        assert!((par_loss - single_loss).abs() < 1e-6, "{par_loss} vs {single_loss}");
        // The twins' parameter ids differ: compare in visiting order.
        let (g1, g2) = (grads_in_order(&net, &single), grads_in_order(&twin, &par));
        let mut compared = 0;
        for (x, y) in g1.iter().zip(&g2) {
            if let (Some(x), Some(y)) = (x, y) {
                let d = max_diff(x, y);
                assert!(d < 1e-6, "gradient differs by {d}");
                compared += 1;
            }
        }
        assert_eq!(g1.iter().filter(|g| g.is_some()).count(), g2.iter().filter(|g| g.is_some()).count());
        assert!(compared > 8, "only {compared} gradients compared");
        // Batch-norm running statistics: each replica saw the same shard, so their average
        // equals the single device's update (and the weights are still equal).
        let (a, b) = (values(&net.valid()), values(&twin.valid()));
        assert_eq!(a.len(), b.len());
        let moved = before.iter().zip(&b).filter(|(x, y)| max_diff(x, y) > 1e-4).count();
        for (x, y) in a.iter().zip(&b) {
            let d = max_diff(x, y);
            assert!(d < 1e-6, "parameter or running statistic differs by {d}");
        }
        assert!(moved >= 4, "running statistics moved in only {moved} tensors");
    }

    /// A replica that panics answers with an error instead of leaving the engine waiting.
    #[test]
    fn a_failing_replica_is_an_error_not_a_hang() {
        let _guard = crate::tests_engine::serial();
        let task = tiny_task(false);
        let device = ComputeDevice::cpu().training().unwrap();
        let net = task.build(&device);
        // 8x8 samples for a 16x16 batch: the batch cannot be built.
        let wrong: Vec<Sample> = (0..2).map(|i| sample(i, 8)).collect();
        let err = std::thread::scope(|s| {
            let replicas = Replicas::spawn(s, &task, &[device.clone(), device.clone()], 16);
            match replicas.step(&net, wrong) {
                Ok(_) => panic!("a batch of the wrong size must fail"),
                Err(e) => e,
            }
        });
        assert!(err.to_string().contains("device"), "{err}");
    }

    /// Every float tensor of a module (parameters and running statistics), in visiting order.
    fn values<M: Module>(m: &M) -> Vec<Vec<f32>> {
        struct V(Vec<Vec<f32>>);
        impl burn::module::ModuleVisitor for V {
            fn visit_float<const D: usize>(&mut self, p: &burn::module::Param<Tensor<D>>) {
                self.0.push(p.val().into_data().convert::<f32>().try_to_vec::<f32>().unwrap());
            }
        }
        let mut v = V(Vec::new());
        m.visit(&mut v);
        v.0
    }

    /// The gradient of every parameter of `m` (None where it has none), in visiting order.
    fn grads_in_order<M: Module>(m: &M, grads: &GradientsParams) -> Vec<Option<Vec<f32>>> {
        struct G<'a>(&'a GradientsParams, Vec<Option<Vec<f32>>>);
        impl burn::module::ModuleVisitor for G<'_> {
            fn visit_float<const D: usize>(&mut self, p: &burn::module::Param<Tensor<D>>) {
                let g = self.0.get::<D>(p.id);
                self.1.push(g.map(|t| t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()));
            }
        }
        let mut g = G(grads, Vec::new());
        m.visit(&mut g);
        g.1
    }

    fn max_diff(x: &[f32], y: &[f32]) -> f32 {
        x.iter().zip(y).map(|(p, q)| (p - q).abs()).fold(0f32, f32::max)
    }
}
