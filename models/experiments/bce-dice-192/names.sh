# Sourced by refit-evaluate.sh and ship.sh: the start of v0.9.1's bundle name (models/bundle.json)
# that both replace, and the refit's recipe, so the two scripts name the same pair the same way.
V091_NAME="tumorscan built-in v0.9.1 (mean of 2 U-Nets on ImageNet-initialised EfficientNet-Lite0 encoders, 192px, seeds 42 and 43, focal Tversky alpha = beta = 0.5, missing-sequence augmentation; v0.8.1's recipe with the loss's weights equal"
BD_RECIPE="mean of 2 U-Nets on ImageNet-initialised EfficientNet-Lite0 encoders, 192px, seeds 42 and 43, BCE + Dice, missing-sequence augmentation; v0.9.1's recipe with --loss bce-dice"
