#!/usr/bin/env bash
# PLAN.md's runs and evaluations: v0.10's validation commands at seeds 42 and 43 (runs/ftb-*,
# ftb43-*), then each network fine-tuned 5 epochs at lr 1e-4 with BCE + Lovasz hinge (lft-*,
# lft43-*) and, as the control, with BCE + Dice (dft-*, dft43-*); all through
# ../train-two-seeds.sh (two runs at a time, one thread each; a run folder with a checkpoint is
# resumed, a finished one left as it is), each seed evaluated once its fine-tunes are trained and
# its networks compared patient by patient (lft-dft, lft-ftb, dft-ftb, ftb against the Zen 4 rn).
# Usage (from the repository root): D=kaggle_3m P=efficientnet-lite0-57934424.pth T=tumorscan \
#   nohup models/experiments/lovasz-finetune-192/run.sh > runs/lft.log 2>&1 &
set -euo pipefail
T=${T:-tumorscan}; D=${D:?set D to the kaggle_3m folder}; P=${P:?set P to the ImageNet .pth file}
export T D P
HERE=$(dirname "$0")
stamp() { echo "$(date -u +%FT%TZ) $*"; }
# Paired per-patient comparison of two evaluated prefixes (folds 1 + 3) into results/A-vs-B-val-compare.*
compare() {
  files() { for f in 1 3; do echo "$1$2-val-fold$f-segmentation.json"; echo "$1$2-largest-val-fold$f-detection.json"; done; }
  local A=$1 B=$2 BDIR=${3:-$HERE/results/}
  mapfile -t CAND < <(files "$HERE/results/" "$A"); mapfile -t BASE < <(files "$BDIR" "$B")
  "$T" evaluate compare --baseline "${BASE[@]}" --candidate "${CAND[@]}" --out "runs/cmp-$A-vs-$B" --force
  for ext in md json; do cp "runs/cmp-$A-vs-$B/compare.$ext" "$HERE/results/$A-vs-$B-val-compare.$ext"; done
}
mkdir -p runs
stamp "baselines"
"$HERE/../train-two-seeds.sh" ftb
for s in 42 43; do
  S=; [ "$s" = 43 ] && S=43 # seed 43's prefixes end in 43 (../train-two-seeds.sh)
  stamp "seed $s fine-tunes"
  SEEDS=$s INIT=ftb EPOCHS=5 LOSS=bce-lovasz "$HERE/../train-two-seeds.sh" lft --lr 1e-4
  SEEDS=$s INIT=ftb EPOCHS=5 LOSS=bce-dice "$HERE/../train-two-seeds.sh" dft --lr 1e-4
  for x in ftb lft dft; do
    X=$x$S
    case $x in
      ftb) R="v0.10's recipe" ;;
      lft) R="v0.10's recipe, then 5 epochs of BCE + Lovasz hinge at lr 1e-4" ;;
      dft) R="v0.10's recipe, then 5 epochs of BCE + Dice at lr 1e-4" ;;
    esac
    SEED=$s PREFIX=$X EPOCHS=20 RECIPE="$R" RESULTS="$HERE/results" \
      "$HERE/../effunet-192-10-epochs/evaluate.sh" val "runs/$X-eval"
  done
  compare "lft$S" "dft$S"; compare "lft$S" "ftb$S"; compare "dft$S" "ftb$S"
  compare "ftb$S" "rn$S" "$HERE/../rerun-noise-bce-dice-192/results/"
  stamp "seed $s evaluated"
done
