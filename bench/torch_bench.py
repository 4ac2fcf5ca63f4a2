"""PyTorch reference for bench/compare: the same architectures, batch and input size as
`tumorscan bench`, on CPU with torch.set_num_threads(N). Prints one JSON object.

U-Net: Buda et al. (brain-segmentation-pytorch): 4 levels of two conv3x3-BN-ReLU, max-pool,
transposed-conv upsampling, skip concatenation, 1x1 head. Classifier: tumorscan's compact
ResNet (residual double-conv blocks with 1x1 projections, max-pool, global average, linear).
EffUNet: tumorscan's U-Net on an EfficientNet-Lite0 encoder.
"""
import argparse, json, resource, statistics, time, warnings
# NumPy is not needed (random input is made by torch); PyTorch warns on every import without it.
warnings.filterwarnings("ignore", message="Failed to initialize NumPy")
import torch
# What loading PyTorch itself costs in memory, before any network: part of peak_rss_mb.
IMPORT_RSS_MB = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, i, o, residual=False):
        super().__init__()
        self.c1, self.b1 = nn.Conv2d(i, o, 3, padding=1, bias=False), nn.BatchNorm2d(o)
        self.c2, self.b2 = nn.Conv2d(o, o, 3, padding=1, bias=False), nn.BatchNorm2d(o)
        self.short = nn.Sequential(nn.Conv2d(i, o, 1, bias=False), nn.BatchNorm2d(o)) if residual else None

    def forward(self, x):
        y = self.b2(self.c2(F.relu(self.b1(self.c1(x)))))
        return F.relu(y + self.short(x)) if self.short is not None else F.relu(y)


class UNet(nn.Module):
    def __init__(self, f=32, depth=4, residual=False):
        super().__init__()
        self.enc = nn.ModuleList([Block(3 if l == 0 else f << (l - 1), f << l, residual) for l in range(depth)])
        self.bottleneck = Block(f << (depth - 1), f << depth, residual)
        self.up = nn.ModuleList([nn.ConvTranspose2d(f << (l + 1), f << l, 2, stride=2) for l in reversed(range(depth))])
        self.dec = nn.ModuleList([Block((f << l) * 2, f << l, residual) for l in reversed(range(depth))])
        self.head = nn.Conv2d(f, 1, 1)

    def forward(self, x):
        skips = []
        for e in self.enc:
            x = e(x)
            skips.append(x)
            x = F.max_pool2d(x, 2)
        x = self.bottleneck(x)
        for u, d in zip(self.up, self.dec):
            x = d(torch.cat([u(x), skips.pop()], 1))
        return self.head(x)


class Classifier(nn.Module):
    def __init__(self, f=16, stages=4):
        super().__init__()
        self.stages = nn.ModuleList([Block(3 if s == 0 else f << (s - 1), f << s, True) for s in range(stages)])
        self.head = nn.Linear(f << (stages - 1), 1)

    def forward(self, x):
        for s in self.stages:
            x = F.max_pool2d(s(x), 2)
        return self.head(x.mean((2, 3))).squeeze(1)


# EfficientNet-Lite0 stages: (repeats, kernel, stride, expansion, in, out), as tumorscan's.
STAGES = [(1, 3, 1, 1, 32, 16), (2, 3, 2, 6, 16, 24), (2, 5, 2, 6, 24, 40), (3, 3, 2, 6, 40, 80),
          (3, 5, 1, 6, 80, 112), (4, 5, 2, 6, 112, 192), (1, 3, 1, 6, 192, 320)]


def conv_bn(i, o, k, stride=1, groups=1):
    return nn.Sequential(nn.Conv2d(i, o, k, stride, k // 2, groups=groups, bias=False), nn.BatchNorm2d(o, eps=1e-3))


class MBConv(nn.Module):
    def __init__(self, i, o, k, stride, e):
        super().__init__()
        mid = i * e
        self.expand = conv_bn(i, mid, 1) if e != 1 else None
        self.dw, self.proj, self.skip = conv_bn(mid, mid, k, stride, mid), conv_bn(mid, o, 1), stride == 1 and i == o

    def forward(self, x):
        h = F.relu6(self.expand(x)) if self.expand is not None else x
        y = self.proj(F.relu6(self.dw(h)))
        return y + x if self.skip else y


class EffUNet(nn.Module):
    """tumorscan's U-Net on an EfficientNet-Lite0 encoder (crates/model/src/effunet.rs): skips
    after blocks 0, 2, 4, 10 and 15, decoder widths 96-48-32-16-16, the input as the last skip."""
    TAPS = (0, 2, 4, 10, 15)

    def __init__(self):
        super().__init__()
        self.stem = conv_bn(3, 32, 3, 2)
        self.blocks = nn.ModuleList([MBConv(i if j == 0 else o, o, k, s if j == 0 else 1, e)
                                     for r, k, s, e, i, o in STAGES for j in range(r)])
        ups, decs, ch = [], [], 320
        for o, skip in zip([96, 48, 32, 16, 16], [112, 40, 24, 16, 3]):
            ups.append(nn.ConvTranspose2d(ch, o, 2, stride=2))
            decs.append(Block(o + skip, o))
            ch = o
        self.up, self.dec, self.head = nn.ModuleList(ups), nn.ModuleList(decs), nn.Conv2d(ch, 1, 1)

    def forward(self, x):
        skips, h = [x], F.relu6(self.stem(x))
        for i, b in enumerate(self.blocks):
            h = b(h)
            if i in self.TAPS:
                skips.append(h)
        y = skips.pop()
        for u, d in zip(self.up, self.dec):
            y = d(torch.cat([u(y), skips.pop()], 1))
        return self.head(y)


SEGMENTERS = ("unet", "resunet", "effunet")


def bce_dice(logits, target):
    p = torch.sigmoid(logits)
    tp = (p * target).sum()
    dice = 1 - (tp + 1) / (tp + 0.5 * (p * (1 - target)).sum() + 0.5 * ((1 - p) * target).sum() + 1)
    return F.binary_cross_entropy_with_logits(logits, target) + dice


def build(arch, features):
    if arch == "effunet":
        return EffUNet()
    if arch in ("unet", "resunet"):
        return UNet(features, residual=arch == "resunet")
    return Classifier(features)


def timed_batches(net, a, dev, sync):
    """Median seconds per inference batch of a.batches (after one warm-up), None for none."""
    if not a.batches:
        return None
    infer = []
    with torch.inference_mode():
        for i in range(a.batches + 1):
            x = torch.randn(a.batch, 3, a.size, a.size, device=dev)
            sync()
            t = time.perf_counter()
            torch.sigmoid(net(x)).cpu()
            if i > 0:
                infer.append(time.perf_counter() - t)
    return statistics.median(infer)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", default="unet", choices=["unet", "resunet", "effunet", "classifier"])
    ap.add_argument("--features", type=int, default=None, help="initial features of the U-Nets and the classifier (default 16); not for effunet")
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--batches", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--predict-slices", type=int, default=0, help="time inference over this many slices: the built-in model's two EfficientNet U-Nets at 192x192, and Buda et al.'s U-Net F=32 at 256x256")
    a = ap.parse_args()
    if a.arch == "effunet" and a.features is not None:
        ap.error("--features: the EfficientNet U-Net's widths are fixed by its encoder")
    features = 16 if a.features is None else a.features
    multiple = 32 if a.arch == "effunet" else 16
    if a.size < 32 or a.size % multiple:
        ap.error(f"--size for --arch {a.arch} must be a multiple of {multiple}, at least 32")
    if a.steps < 0 or a.batches < 0 or a.steps + a.batches == 0:
        ap.error("--steps and --batches: at least one above 0, neither negative")
    if a.predict_slices:
        return predict(a)
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    dev = torch.device(a.device)
    # Waits for queued GPU work so that wall-clock times are complete (no-op on CPU).
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    net = build(a.arch, features).to(dev)
    opt = torch.optim.Adam(net.parameters(), 1e-4)
    steps = []
    net.train()
    for i in range(a.steps + (1 if a.steps else 0)):
        x = torch.randn(a.batch, 3, a.size, a.size, device=dev)
        sync()
        t = time.perf_counter()
        out = net(x)
        loss = bce_dice(out, torch.zeros_like(out)) if a.arch in SEGMENTERS else F.binary_cross_entropy_with_logits(out, torch.zeros_like(out))
        opt.zero_grad()
        loss.backward()
        opt.step()
        sync()
        if i > 0:
            steps.append(time.perf_counter() - t)
    net.eval()
    inf = timed_batches(net, a, dev, sync)
    # Batch norm folded into the convolutions (torch.fx), as tumorscan's CPU inference runs.
    fused, fused_error = None, None
    if a.batches:
        try:
            from torch.fx.experimental.optimization import fuse
            fused = timed_batches(fuse(net), a, dev, sync)
        except Exception as e:  # reported, not fatal: the unfused figure stands
            fused_error = f"{type(e).__name__}: {e}"
    step = statistics.median(steps) if steps else None
    per_s = lambda s: a.batch / s if s else None
    print(json.dumps({
        "framework": f"pytorch {torch.__version__}", "backend": a.device, "arch": a.arch,
        "features": None if a.arch == "effunet" else features, "size": a.size, "batch": a.batch,
        "threads": torch.get_num_threads(), "params": sum(p.numel() for p in net.parameters()),
        "train_step_s": step, "train_slices_per_s": per_s(step),
        "infer_batch_s": inf, "infer_slices_per_s": per_s(inf),
        "infer_fused_batch_s": fused, "infer_fused_slices_per_s": per_s(fused), "fused_error": fused_error,
        "import_rss_mb": IMPORT_RSS_MB,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }))


def predict(a):
    """Inference over N slices in batches of 16, model construction included, on random input:
    the built-in model's two EfficientNet U-Nets at 192x192 (its networks; tumorscan's
    predict also reads the files, normalises and writes masks, overlays and a report), and
    brain-segmentation-pytorch's U-Net (F=32, 256x256), as a user of that repository runs it."""
    torch.set_num_threads(a.threads)
    jobs = {}
    for job, nets, size in (("EfficientNet U-Net pair 192x192 inference", lambda: [EffUNet().eval(), EffUNet().eval()], 192),
                            ("U-Net F=32 256x256 inference", lambda: [UNet(32).eval()], 256)):
        t0 = time.perf_counter()
        models = nets()
        with torch.inference_mode():
            for i in range(0, a.predict_slices, 16):
                n = min(16, a.predict_slices - i)
                x = torch.randn(n, 3, size, size)
                sum(torch.sigmoid(m(x)) for m in models) / len(models)
        wall = time.perf_counter() - t0
        jobs[job] = {"seconds": wall, "slices_per_s": a.predict_slices / wall}
    print(json.dumps({"framework": f"pytorch {torch.__version__}", "slices": a.predict_slices, "jobs": jobs,
                      "import_rss_mb": IMPORT_RSS_MB, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


if __name__ == "__main__":
    main()
