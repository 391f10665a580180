"""Encoder inference speed on this machine: MobileNetV2 against ResNet-50, eager torch against
onnxruntime, batch 1 and batch 16, in one run (one table).

    python benchmarks/bench_encoder.py [--threads 1] [--sizes 224,128] [--seconds 2]

Each row is a whole FaceEncoder for the open model (backbone + parameter head + emotion branch),
with random (untrained) weights: speed does not depend on the weights. ms/frame = wall time of a
call / frames in it, the fastest of repeated calls after a warm-up (on a machine shared with other
work the median measures the neighbours; with 2 threads torch then stalls for whole seconds while
one of its threads waits to be scheduled, hence the default of 1 thread); both engines use the
same number of CPU threads. The last column is the largest difference between the two engines'
outputs. The load average is printed.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.encoder import OUTPUT_NAMES, EncoderConfig, FaceEncoder  # noqa: E402
from core.encoder.runtime import EncoderRuntime  # noqa: E402
from core.facemodel.loading import ModelChoice, load_face_model  # noqa: E402

ENCODERS = (("MobileNetV2", "mobilenetv2", 1.0), ("MobileNetV2 x0.5", "mobilenetv2", 0.5), ("ResNet-50", "resnet50", 1.0))


def ms_per_frame(runtime: EncoderRuntime, crops: np.ndarray, seconds: float) -> float:
    runtime.predict(crops)  # warm-up
    times = []
    start = time.perf_counter()
    while len(times) < 3 or (time.perf_counter() - start < seconds and len(times) < 50):
        t = time.perf_counter()
        runtime.predict(crops)
        times.append(time.perf_counter() - t)
    return 1000 * float(np.min(times)) / len(crops)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--sizes", default="224,128", help="input sides, pixels")
    parser.add_argument("--seconds", type=float, default=2.0, help="time per measurement")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(args.threads)
    model = load_face_model(ModelChoice())
    print(f"CPU threads {args.threads}, load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores, "
          f"torch {torch.__version__}")
    header = (f"{'encoder':18s} {'input':>5s} {'params':>7s} {'torch b1':>9s} {'torch b16':>10s} {'ORT b1':>8s} "
              f"{'ORT b16':>8s} {'ORT speed-up b1/b16':>20s} {'max |diff|':>11s}")
    print("ms per frame\n" + header)
    rng = np.random.default_rng(0)
    for size in (int(s) for s in args.sizes.split(",")):
        for label, backbone, width in ENCODERS:
            torch.manual_seed(0)
            encoder = FaceEncoder(EncoderConfig.for_model(model, backbone=backbone, width=width, input_size=size)).eval()
            params = sum(p.numel() for p in encoder.parameters()) / 1e6
            eager = EncoderRuntime(encoder, backend="torch", batch_size=16)
            ort = EncoderRuntime(encoder, backend="onnxruntime", threads=args.threads, batch_size=16)
            one = rng.integers(0, 256, (1, size, size, 3), dtype=np.uint8)
            sixteen = rng.integers(0, 256, (16, size, size, 3), dtype=np.uint8)
            cells = [ms_per_frame(rt, crops, args.seconds) for rt in (eager, ort) for crops in (one, sixteen)]
            a, b = eager.predict(sixteen), ort.predict(sixteen)
            diff = max(float(np.abs(getattr(a, n) - getattr(b, n)).max()) for n in OUTPUT_NAMES)
            print(f"{label:18s} {size:5d} {params:6.2f}M {cells[0]:9.2f} {cells[1]:10.2f} {cells[2]:8.2f} {cells[3]:8.2f} "
                  f"{cells[0] / cells[2]:9.1f}x / {cells[1] / cells[3]:.1f}x {diff:11.1e}", flush=True)


if __name__ == "__main__":
    main()
