#!/usr/bin/env bash
# Session 30 GPU check: the shipped v0.9.1 bundle (EfficientNet-Lite0 U-Nets, 192 px) on CUDA
# against CPU on the same machine, and the shipped architecture's train step / inference against
# PyTorch on the same GPU. Run from the repo root on the device machine with .gpu carried.
set -u
O=${OUT:-/tmp/out}; L=$O/run.log; B=/tmp/ts
xz -dc .gpu/tumorscan.xz >$B 2>/dev/null || python3 -c "import lzma,shutil; shutil.copyfileobj(lzma.open('.gpu/tumorscan.xz'), open('/tmp/ts','wb'))"; chmod +x $B
log() { echo "== $* ($(date +%T))" | tee -a "$L"; }
for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib; do
  [ -d "$d" ] && export LD_LIBRARY_PATH="$d:${LD_LIBRARY_PATH:-}"
done
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv >>"$L" 2>&1
nproc >>"$L"
python3 -c 'import torch; print("torch", torch.__version__, torch.cuda.get_device_name(0))' >>"$L" 2>&1
for dev in cpu cuda; do
  log "predict 5 patients --device $dev, built-in model"
  /usr/bin/time -v timeout 120 "$B" predict .gpu/data --device $dev --out /tmp/p-$dev --json \
    >"$O/predict-$dev.json" 2>/tmp/p-$dev.log; echo "exit $?" >>"$L"
  grep -E "Elapsed|Maximum resident" /tmp/p-$dev.log >>"$L"; tail -3 /tmp/p-$dev.log | grep -v "^\s" >>"$L"
done
log "compare cpu vs cuda outputs"
python3 .gpu/compare.py /tmp/p-cpu /tmp/p-cuda >>"$L" 2>&1
log "tumorscan bench --device cuda --arch effunet --size 192"
timeout 150 "$B" bench --device cuda --arch effunet --size 192 --steps 10 --batches 20 >>"$O/bench.jsonl" 2>>"$L" || echo "tumorscan bench failed: $?" >>"$L"
log "pytorch cuda effunet 192"
timeout 60 python3 bench/torch_bench.py --device cuda --arch effunet --size 192 --steps 20 --batches 20 --threads 16 >>"$O/bench.jsonl" 2>>"$L" || echo "pytorch failed: $?" >>"$L"
log "train segment (shipped recipe) --device cuda, 2 epochs of at most 12 steps"
/usr/bin/time -v timeout 170 "$B" train segment --device cuda --data .gpu/data --folds .gpu/folds.csv --val-fold 1 \
  --out /tmp/gpu-train --arch efficientnet-lite0-unet --epochs 2 \
  --max-steps 12 --patience 6 --seed 42 --size 192 --loss focal-tversky --tversky-alpha 0.5 --tversky-beta 0.5 \
  --missing-sequences 0.2 --empty-per-tumor all >"$O/train.log" 2>&1; echo "train exit $?" >>"$L"
cp /tmp/gpu-train/metrics.csv "$O/train-metrics.csv" 2>/dev/null
log done
