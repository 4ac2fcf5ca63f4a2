#!/usr/bin/env bash
# PLAN.md's evaluations, with v0.6's clean-up (largest 3D component) and detection rule.
# Usage: evaluate.sh val|test|final OUT   (set D to the kaggle_3m folder, T to the tumorscan binary)
#   val:   step 1's pair (runs/cont-effunet-s42, -s43) and each network on validation fold 1 (the decision)
#   test:  step 1's pair on test fold 0 (after the decision)
#   final: step 2's pair (runs/ffc-effunet-s42, -s43, trained on folds 1-4) on test fold 0, as the
#          shipped bundle is evaluated (segmentation, detection, missing sequences)
set -euo pipefail
STAGE=$1; OUT=$2
T=${T:-tumorscan}; D=${D:?set D to the kaggle_3m folder}
RUN=runs/cont-effunet; FOLD=1
case $STAGE in val) ;; test) FOLD=0 ;; final) RUN=runs/ffc-effunet; FOLD=0 ;; *) echo "stage: val, test or final" >&2; exit 2 ;; esac
B=$OUT/bundle-$STAGE; rm -rf "$B"; mkdir -p "$B"
NAME="v0.6's networks + 20 epochs (train folds 2-4, seeds 42 + 43)"
[ $STAGE = final ] && NAME="v0.7's networks + 20 epochs (refit on folds 1-4, seeds 42 + 43)"
jq --arg n "$NAME" '.name = $n | del(.info)' models/bundle.json > "$B/bundle.json"; cp -r models/detect "$B/detect"
for s in 42 43; do
  M=$B/segment; [ $s = 43 ] && M=$B/segment-s43
  cp -r $RUN-s$s/best "$M"
  cp $RUN-s$s/{config.json,metrics.csv,metrics.json,curves.png} "$M/"
  cp models/segment/NOTICE.md "$M/"
done
"$T" evaluate segment --model "$B" --data "$D" --folds models/folds.csv --fold $FOLD --out "$OUT/$STAGE-fold$FOLD-pair" --force
case $STAGE in
  val) for s in 42 43; do
         "$T" evaluate segment --model $RUN-s$s/best --data "$D" --folds models/folds.csv --fold 1 --out "$OUT/val-fold1-s$s" --force
       done ;;
  final) "$T" evaluate detect --model "$B" --data "$D" --folds models/folds.csv --fold 0 --out "$OUT/final-fold0-detect" --force
         for m in both post; do
           "$T" evaluate segment --model "$B" --data "$D" --folds models/folds.csv --fold 0 --missing-sequence $m --out "$OUT/final-fold0-missing-$m" --force
         done ;;
esac
