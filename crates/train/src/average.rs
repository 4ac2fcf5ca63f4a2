//! Exponential moving average of a network's weights (`--ema-decay`), kept beside the trained
//! network and used for validation, selection and the saved model.
//!
//! Every float tensor of the module is averaged: the parameters and the batch-norm running
//! statistics (burn visits both as float tensors), so the averaged network is consistent
//! with itself. The averaged network never feeds back into training.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::prelude::*;

/// The average and how many updates it has had (the decay warms up with that count).
pub struct WeightAverage<N> {
    net: Option<N>,
    decay: f64,
    updates: u64,
}

impl<N: Module> WeightAverage<N> {
    /// An average with `decay`: empty for a new run (its first update copies the network), or a
    /// resumed run's saved average after its `updates`.
    ///
    /// A new average must not copy the network before the first training step: burn initialises
    /// parameters lazily, and copying them first would draw their random values in another order
    /// than the forward pass does, so the trained network would differ from an unaveraged run's.
    pub fn new(start: Option<N>, decay: f64, updates: u64) -> Self {
        Self {
            net: start,
            decay,
            updates,
        }
    }

    /// The decay of the next update: `min(decay, (1 + t) / (10 + t))` after `t` updates, so the
    /// first steps' weights (a barely trained decoder) are forgotten within the first hundreds
    /// of steps instead of weighing `decay^steps` at the end.
    pub fn next_decay(&self) -> f64 {
        let t = self.updates as f64;
        self.decay.min((1.0 + t) / (10.0 + t))
    }

    /// Fold in `current` (an inference-mode copy of the trained network, same architecture).
    pub fn update(&mut self, current: &N) {
        let averaged = match self.net.take() {
            None => current.clone(),
            Some(avg) => {
                let mut collect = Collect(Vec::new());
                current.visit(&mut collect);
                avg.map(&mut Blend {
                    current: collect.0.into_iter(),
                    decay: self.next_decay(),
                })
            }
        };
        self.net = Some(averaged);
        self.updates += 1;
    }

    /// The averaged network (none before the first update).
    pub fn net(&self) -> Option<&N> {
        self.net.as_ref()
    }

    /// Updates so far (saved in checkpoints).
    pub fn updates(&self) -> u64 {
        self.updates
    }
}

/// Every float tensor of a module in visiting order, flattened.
struct Collect(Vec<Tensor<1>>);

impl ModuleVisitor for Collect {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.0.push(param.val().reshape([-1]));
    }
}

/// `average * decay + current * (1 - decay)` for each float tensor, in the same order.
struct Blend {
    current: std::vec::IntoIter<Tensor<1>>,
    decay: f64,
}

impl ModuleMapper for Blend {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        // Same module type, so the same tensors in the same order; a missing one leaves the
        // average as it is rather than mixing tensors of different places.
        let Some(current) = self.current.next() else {
            return param;
        };
        let decay = self.decay;
        param.map(|avg| {
            let shape = avg.shape();
            avg.mul_scalar(decay) + current.reshape(shape).mul_scalar(1.0 - decay)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig};

    #[derive(Module, Debug)]
    struct Tiny {
        linear: Linear,
        norm: BatchNorm,
    }

    fn tiny(value: f32, device: &Device) -> Tiny {
        let t = Tiny {
            linear: LinearConfig::new(2, 3).init(device),
            norm: BatchNormConfig::new(3).init(device),
        };
        // Every float tensor (weights, bias, running mean and variance) set to `value`.
        struct Fill(f32);
        impl ModuleMapper for Fill {
            fn map_float<const D: usize>(&mut self, p: Param<Tensor<D>>) -> Param<Tensor<D>> {
                let v = self.0;
                p.map(|t| t.zeros_like().add_scalar(v))
            }
        }
        t.map(&mut Fill(value))
    }

    fn values(net: &Tiny) -> Vec<f32> {
        let mut c = Collect(Vec::new());
        net.visit(&mut c);
        c.0.into_iter()
            .flat_map(|t| t.into_data().try_to_vec::<f32>().unwrap_or_default())
            .collect()
    }

    #[test]
    fn averages_every_float_tensor_with_a_warming_decay() {
        // Builds layers from burn's process-wide random stream: not beside a seeded run.
        let _guard = crate::tests_engine::serial();
        let device = Device::flex();
        let mut avg = WeightAverage::new(None, 0.9, 0);
        assert!(avg.net().is_none());
        // The first update copies; the second has decay min(0.9, 2/11): 0 * 2/11 + 11 * 9/11 = 9.
        avg.update(&tiny(0.0, &device));
        assert!((avg.next_decay() - 2.0 / 11.0).abs() < 1e-12);
        avg.update(&tiny(11.0, &device));
        let v = avg.net().map(values).unwrap_or_default();
        // weight 6 + bias 3 + norm: gamma 3, beta 3, running mean 3, running variance 3.
        assert_eq!(v.len(), 21);
        assert!(v.iter().all(|&x| (x - 9.0).abs() < 1e-5), "{v:?}");
        // After many updates the decay is the configured one: 9 * 0.9 + 20 * 0.1 = 10.1.
        let mut late = WeightAverage::new(Some(tiny(9.0, &device)), 0.9, 1000);
        assert!((late.next_decay() - 0.9).abs() < 1e-12);
        late.update(&tiny(20.0, &device));
        let v = late.net().map(values).unwrap_or_default();
        assert!(v.len() == 21 && v.iter().all(|&x| (x - 10.1).abs() < 1e-4), "{v:?}");
        assert_eq!(late.updates(), 1001);
    }
}
