//! Serialisable network descriptions, stored in each model's `model.json` beside its weights.

use serde::{Deserialize, Serialize};

/// Architecture of the segmentation network.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SegmenterArch {
    /// U-Net of Buda et al. or ResUNet ([`crate::SegmentationNet`]; `features`, `depth` and
    /// `residual` apply).
    #[default]
    Unet,
    /// U-Net on an EfficientNet-Lite0 encoder ([`crate::EfficientUNet`]; fixed widths, input a
    /// multiple of 32).
    EfficientnetLite0Unet,
    /// The same U-Net on the deeper EfficientNet-Lite1 encoder (same widths, more blocks).
    EfficientnetLite1Unet,
}

impl SegmenterArch {
    /// The EfficientNet-Lite encoder of the architecture; `None` for the U-Net / ResUNet.
    pub fn lite_encoder(self) -> Option<LiteVariant> {
        match self {
            Self::Unet => None,
            Self::EfficientnetLite0Unet => Some(LiteVariant::Lite0),
            Self::EfficientnetLite1Unet => Some(LiteVariant::Lite1),
        }
    }
}

/// Which EfficientNet-Lite: Lite1 scales Lite0's depth by 1.1 and keeps its widths (Tan & Le
/// 2019; the Lite models keep the first and last stage at one block).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LiteVariant {
    /// 16 blocks, 4.7 M parameters with the ImageNet head.
    #[default]
    Lite0,
    /// 21 blocks, 5.4 M parameters with the ImageNet head.
    Lite1,
}

impl LiteVariant {
    /// Blocks in each of the seven stages.
    pub fn repeats(self) -> [usize; 7] {
        match self {
            Self::Lite0 => [1, 2, 2, 3, 3, 4, 1],
            Self::Lite1 => [1, 3, 3, 4, 4, 5, 1],
        }
    }
}

/// Segmentation network: U-Net (Buda et al.), its residual variant, or the EfficientNet U-Net.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmenterConfig {
    /// Initial feature count F (doubles at every level).
    pub features: usize,
    /// Encoder levels (4 in Buda et al.).
    pub depth: usize,
    /// Residual blocks (ResUNet) instead of plain double convolutions.
    pub residual: bool,
    /// Square input size the network is trained at (128 or 256).
    pub input_size: u32,
    /// Architecture (models from before it was recorded are U-Nets).
    #[serde(default)]
    pub arch: SegmenterArch,
    /// Neighbouring slices on each side whose FLAIR plane is added to the input (2.5D; the
    /// EfficientNet U-Net only). 0: the slice alone, as every model before it was recorded.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub context_slices: usize,
    /// Deep supervision (the EfficientNet U-Net only): auxiliary outputs on this many of the
    /// decoder's coarser levels (strides 2, 4, ...), trained with the loss and unused at
    /// inference. 0: none, as every model before it was recorded.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub deep_supervision: usize,
    /// Widths of the EfficientNet U-Net's five decoder levels, deepest (stride 16) first.
    /// Empty: [`crate::EfficientUNet::DECODER`], as every model before it was recorded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub decoder_widths: Vec<usize>,
    /// The EfficientNet U-Net's encoder also trained its classification head on the slice label
    /// (`--slice-head`), so that head's tumour probability means something
    /// ([`crate::SegmenterNet::slice_probabilities`]). false: untrained, as every model before
    /// it was recorded.
    #[serde(default, skip_serializing_if = "is_false")]
    pub slice_head: bool,
    /// scSE attention ([`crate::attention`]) after each of the EfficientNet U-Net's decoder
    /// levels. false: none, as every model before it was recorded.
    #[serde(default, skip_serializing_if = "is_false")]
    pub decoder_attention: bool,
}

fn is_zero(v: &usize) -> bool {
    *v == 0
}

fn is_false(v: &bool) -> bool {
    !*v
}

impl SegmenterConfig {
    /// Input planes: the slice's three sequences, then one FLAIR plane per context slice.
    pub fn input_channels(&self) -> usize {
        3 + 2 * self.context_slices
    }
}

impl Default for SegmenterConfig {
    fn default() -> Self {
        Self {
            features: 16,
            depth: 4,
            residual: false,
            input_size: 128,
            arch: SegmenterArch::Unet,
            context_slices: 0,
            deep_supervision: 0,
            decoder_widths: Vec::new(),
            slice_head: false,
            decoder_attention: false,
        }
    }
}

/// Architecture of the slice classifier.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClassifierArch {
    /// Compact ResNet ([`crate::SliceClassifier`]; `features` and `stages` apply).
    #[default]
    Resnet,
    /// EfficientNet-Lite0 ([`crate::efficientnet`]; fixed widths, `features`/`stages` unused).
    EfficientnetLite0,
}

/// Slice classifier (compact ResNet or EfficientNet-Lite0).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassifierConfig {
    /// Features of the first stage (doubles at every stage).
    pub features: usize,
    /// Residual stages, each halving the resolution.
    pub stages: usize,
    /// Square input size.
    pub input_size: u32,
    /// Architecture (models from before it was recorded are ResNets).
    #[serde(default)]
    pub arch: ClassifierArch,
}

impl Default for ClassifierConfig {
    fn default() -> Self {
        Self {
            features: 16,
            stages: 4,
            input_size: 128,
            arch: ClassifierArch::Resnet,
        }
    }
}

/// Either network.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum NetConfig {
    /// Segmentation.
    Segmenter(SegmenterConfig),
    /// Detection.
    Classifier(ClassifierConfig),
}

impl NetConfig {
    /// Input size of the network.
    pub fn input_size(&self) -> u32 {
        match self {
            Self::Segmenter(c) => c.input_size,
            Self::Classifier(c) => c.input_size,
        }
    }

    /// The same network at another input size (the weights fit both: the networks are
    /// fully convolutional or pool globally).
    pub fn at_size(&self, size: u32) -> Self {
        match self {
            Self::Segmenter(c) => Self::Segmenter(SegmenterConfig {
                input_size: size,
                ..c.clone()
            }),
            Self::Classifier(c) => Self::Classifier(ClassifierConfig {
                input_size: size,
                ..c.clone()
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifiers_saved_before_the_architecture_was_recorded_are_resnets() {
        let old: NetConfig = serde_json::from_str(r#"{"kind": "classifier", "features": 16, "stages": 4, "input_size": 128}"#).unwrap();
        assert_eq!(old, NetConfig::Classifier(ClassifierConfig::default()));
        let eff = ClassifierConfig {
            arch: ClassifierArch::EfficientnetLite0,
            ..Default::default()
        };
        let json = serde_json::to_value(NetConfig::Classifier(eff.clone())).unwrap();
        assert_eq!(json["arch"], "efficientnet-lite0");
        assert_eq!(serde_json::from_value::<NetConfig>(json).unwrap(), NetConfig::Classifier(eff));
    }

    #[test]
    fn segmenters_saved_before_the_architecture_was_recorded_are_unets() {
        let old: NetConfig =
            serde_json::from_str(r#"{"kind": "segmenter", "features": 16, "depth": 4, "residual": false, "input_size": 128}"#).unwrap();
        assert_eq!(old, NetConfig::Segmenter(SegmenterConfig::default()));
        let json = serde_json::to_value(SegmenterArch::EfficientnetLite0Unet).unwrap();
        assert_eq!(json, "efficientnet-lite0-unet");
        let json = serde_json::to_value(SegmenterArch::EfficientnetLite1Unet).unwrap();
        assert_eq!(json, "efficientnet-lite1-unet");
    }
}
