"""ONNX models run on the CPU by OpenVINO in bfloat16, on CPUs that compute bfloat16 natively
(AVX512-BF16 or AMX: AMD Zen 4 and later, Intel Cooper Lake, Sapphire Rapids and later).

On such a CPU OpenVINO's oneDNN kernels do the convolutions in bfloat16 with float32 accumulation,
about twice as fast as float32. Measured on this 2-core AMD EPYC for EmoNet (a 256 x 256 face,
batch 1, 2 threads): onnxruntime float32 75 ms, OpenVINO float32 74 ms, OpenVINO bfloat16 38 ms.
bfloat16 keeps 8 bits of mantissa: on the Wolfgang clip's 236 faces EmoNet's probabilities moved by
0.003 on average (largest of the 8 per face; 0.036 at most), the top class stayed on 235, valence
and arousal moved by 0.01 at most. On CPUs without native bfloat16 nothing here is used (OpenVINO
would emulate it, slower than float32), and callers keep onnxruntime.
"""

from __future__ import annotations

import functools
import logging
import threading

import numpy as np

log = logging.getLogger(__name__)


@functools.cache
def native_bfloat16() -> bool:
    """True when OpenVINO is installed and says this CPU computes bfloat16 natively."""
    try:
        import openvino as ov
    except ImportError:
        return False
    try:
        return "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    except RuntimeError as err:  # no CPU plugin in this build of OpenVINO
        log.info("OpenVINO cannot use the CPU (%s)", err)
        return False


class Bfloat16CpuModel:
    """An ONNX model compiled by OpenVINO for the CPU in bfloat16. ``run`` has onnxruntime's
    InferenceSession.run signature, so callers hold either. Calls from several threads take turns
    (one infer request, reused: its buffers are allocated once)."""

    def __init__(self, onnx: bytes, threads: int | None = None) -> None:
        import openvino as ov

        core = ov.Core()
        config = {"INFERENCE_PRECISION_HINT": "bf16", "PERFORMANCE_HINT": "LATENCY"}
        if threads:
            config["INFERENCE_NUM_THREADS"] = int(threads)
        self._compiled = core.compile_model(core.read_model(onnx), "CPU", config)
        self._request = self._compiled.create_infer_request()
        self._lock = threading.Lock()

    def run(self, output_names: list[str] | None, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        """The outputs named (None: all, in the model's order) for inputs ``feeds`` (name -> array),
        each a float32 array of its own."""
        feeds = {name: np.ascontiguousarray(value) for name, value in feeds.items()}
        with self._lock:
            results = self._request.infer(feeds)
            by_name = {port.get_any_name(): np.array(value, dtype=np.float32) for port, value in results.items()}
        names = output_names if output_names is not None else [port.get_any_name() for port in self._compiled.outputs]
        return [by_name[name] for name in names]
