# Sourced by the evaluate.sh scripts of ../cross-validation and ../detection-context.
# bundle DIR NAME SLICE_CONTEXT RUN [RUN2 [RUN3...]]: a bundle of v0.6's clean-up (largest 3D
# component) and detection rule (cleaned mask >= 8 px; ranked with slice context when
# SLICE_CONTEXT is true) holding RUN's best network in segment/ and, for an ensemble, RUN2's in
# segment-s43/, RUN3's in segment-m3/, ...
# POSTPROCESS (JSON object members) replaces that clean-up, e.g. for ../effunet-192's addendum 2.
bundle() {
  local B=$1 NAME=$2 CONTEXT=$3 R1=$4; shift 4
  local PP=${POSTPROCESS:-'"threshold": 0.5, "min_component_pixels": 0, "largest_3d_component": true, "flip_tta": false'}
  rm -rf "$B"; mkdir -p "$B"
  cp -r "$R1/best" "$B/segment"; cp "$R1/config.json" "$B/segment/"
  local ENSEMBLE="" MEMBERS="" k=2 R M
  for R in "$@"; do
    M=segment-m$k; [ $k = 2 ] && M=segment-s43
    cp -r "$R/best" "$B/$M"; cp "$R/config.json" "$B/$M/"
    MEMBERS+="${MEMBERS:+, }\"$M\""; k=$((k + 1))
  done
  [ -n "$MEMBERS" ] && ENSEMBLE=',
 "ensemble": ['"$MEMBERS"']'
  cat > "$B/bundle.json" <<JSON
{"name": "$NAME",
 "detection": {"kind": "segmentation", "min_pixels": 8, "min_probability": 0.0, "slice_context": $CONTEXT},
 "postprocess": {$PP}$ENSEMBLE}
JSON
}

# evaluate_fold BUNDLE FOLD OUT segment|detect...: the named evaluations of BUNDLE on FOLD into OUT.
evaluate_fold() {
  local B=$1 F=$2 O=$3; shift 3
  for what in "$@"; do
    "$T" evaluate "$what" --model "$B" --data "$D" --folds models/folds.csv --fold "$F" --out "$O" --force
  done
}

# evaluate_reproduced OUT FROM TO RUN1 RUN2: two retrained runs in the shipped bundle's own
# settings (models/bundle.json, its name's "FROM" replaced by "TO") on test fold 0, as
# models/evaluation/eval-*-test, and the weights' hashes beside the shipped ones (../reproduce-*).
evaluate_reproduced() {
  local OUT=$1 FROM=$2 TO=$3; shift 3
  local B=$OUT/bundle
  bundle "$B" "" true "$@"
  sed "s/\"name\": \"$FROM/\"name\": \"$TO/" models/bundle.json > "$B/bundle.json"
  evaluate_fold "$B" 0 "$OUT/eval-seg-test" segment
  evaluate_fold "$B" 0 "$OUT/eval-det-test" detect
  sha256sum models/segment/model.bpk models/segment-s43/model.bpk "$B"/segment*/model.bpk
}
