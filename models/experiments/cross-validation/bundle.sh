# Sourced by the experiments' evaluate.sh scripts (../cross-validation, ../detection-context, ../mixed-batch-pair, ...).
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

# collect_results RESULTS DIR...: each DIR's evaluation files (segmentation.*, detection.*,
# pooled.*) copied into RESULTS as DIRNAME-segmentation.json, ..., DIRNAME.json for pooled ones:
# the names the experiments commit under results/.
collect_results() {
  local R=$1 d f; shift
  mkdir -p "$R"
  for d in "$@"; do
    for f in "$d"/segmentation.json "$d"/segmentation.md "$d"/detection.json "$d"/detection.md; do
      if [ -e "$f" ]; then cp "$f" "$R/$(basename "$d")-$(basename "$f")"; fi
    done
    for f in json md; do
      if [ -e "$d/pooled.$f" ]; then cp "$d/pooled.$f" "$R/$(basename "$d").$f"; fi
    done
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

# pairs_against_v09 OUT TAG NAME SPLITS RUN1 RUN2: a candidate pair against v0.9's validation
# pairs. For each split of SPLITS ("validation-fold test-fold suffix", comma-separated) the pair
# RUN1 + RUN2 ("{}" replaced by the suffix, e.g. runs/fd-{}-s42) in v0.9.1's bundle settings
# (largest 3D component, detection rule with slice context) is evaluated (segment, detect) on the
# validation fold into OUT/TAG-val-foldV, and v0.9's pairs there are copied from the committed
# ../detection-cleanup-192/results into OUT/A-val-foldV; then both are pooled
# (OUT/TAG-val-pooled, OUT/A-val-pooled) and compared per patient (OUT/compare-TAG-vs-A).
pairs_against_v09() {
  local OUT=$1 TAG=$2 NAME=$3 SPLITS=$4 RUN1=$5 RUN2=$6 split V TF S w
  local LARGEST='"threshold": 0.5, "min_component_pixels": 0, "largest_3d_component": true, "min_3d_fraction": 0.3, "flip_tta": false'
  local FROM; FROM=$(dirname "${BASH_SOURCE[0]}")/../detection-cleanup-192/results
  local POOL_C=() POOL_A=() SPLIT_LIST RUNS
  IFS=, read -ra SPLIT_LIST <<<"$SPLITS"
  for split in "${SPLIT_LIST[@]}"; do
    read -r V TF S <<<"$split"
    RUNS=("${RUN1//\{\}/$S}" "${RUN2//\{\}/$S}")
    POSTPROCESS=$LARGEST bundle "$OUT/bundle-$TAG-t$TF" "$NAME: ${RUNS[*]} (validation fold $V)" true "${RUNS[@]}"
    evaluate_fold "$OUT/bundle-$TAG-t$TF" "$V" "$OUT/$TAG-val-fold$V" segment detect
    mkdir -p "$OUT/A-val-fold$V"
    for w in segmentation detection; do
      cp "$FROM/largest-val-fold$V-$w.json" "$OUT/A-val-fold$V/$w.json"
    done
    POOL_C+=("$OUT/$TAG-val-fold$V"); POOL_A+=("$OUT/A-val-fold$V")
  done
  "$T" evaluate pool "${POOL_C[@]}" --out "$OUT/$TAG-val-pooled" --force
  "$T" evaluate pool "${POOL_A[@]}" --out "$OUT/A-val-pooled" --force
  "$T" evaluate compare --baseline "${POOL_A[@]}" --candidate "${POOL_C[@]}" --out "$OUT/compare-$TAG-vs-A" --force > /dev/null
}

# on_val_folds OUT TAG NAME KINDS SPLITS RUN...: the bundle of RUN... ("{}" in each replaced by
# the split's suffix, e.g. runs/rn-{}-s42; POSTPROCESS as for `bundle`; detection with slice
# context) evaluated (KINDS: "segment detect" or "detect") on the validation fold of each of
# SPLITS ("validation-fold test-fold suffix", comma-separated, e.g. "1 0 t0v1,3 2 t2v3") into
# OUT/TAG-val-foldV, pooled into OUT/TAG-val-pooled, and copied into the calling experiment's
# results/ (RESULTS, default: the script's own folder's results/).
on_val_folds() {
  local OUT=$1 TAG=$2 NAME=$3 KINDS=$4 SPLITS=$5; shift 5
  local RESULTS=${RESULTS:-$(dirname "$0")/results} POOL=() LIST split V TF S R RUNS
  IFS=, read -ra LIST <<<"$SPLITS"
  for split in "${LIST[@]}"; do
    read -r V TF S <<<"$split"
    RUNS=()
    for R in "$@"; do RUNS+=("${R//\{\}/$S}"); done
    bundle "$OUT/bundle-$TAG-t$TF" "$NAME: ${RUNS[*]} (validation fold $V, test fold $TF)" true "${RUNS[@]}"
    # shellcheck disable=SC2086 # KINDS is a list of words
    evaluate_fold "$OUT/bundle-$TAG-t$TF" "$V" "$OUT/$TAG-val-fold$V" $KINDS
    POOL+=("$OUT/$TAG-val-fold$V")
  done
  "$T" evaluate pool "${POOL[@]}" --out "$OUT/$TAG-val-pooled" --force
  collect_results "$RESULTS" "${POOL[@]}" "$OUT/$TAG-val-pooled"
}

# on_folds_1_3 OUT TAG NAME KINDS RUN...: `on_val_folds` on validation folds 1 and 3 (the
# networks of test folds 0 and 2).
on_folds_1_3() {
  local OUT=$1 TAG=$2 NAME=$3 KINDS=$4; shift 4
  on_val_folds "$OUT" "$TAG" "$NAME" "$KINDS" "1 0 t0v1,3 2 t2v3" "$@"
}
