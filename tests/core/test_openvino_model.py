"""ONNX models in OpenVINO in bfloat16 (core/openvino_model.py), on CPUs that compute it natively."""

import numpy as np
import pytest
import torch

from core.onnx_session import kept_model, module_to_onnx
from core.openvino_model import Bfloat16CpuModel, native_bfloat16

pytestmark = pytest.mark.skipif(not native_bfloat16(), reason="OpenVINO missing or no native bfloat16 on this CPU")


def two_output_network() -> torch.nn.Module:
    torch.manual_seed(0)

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 8, 3)
            self.head = torch.nn.Linear(8 * 14 * 14, 4)

        def forward(self, x):
            features = torch.relu(self.conv(x)).flatten(1)
            return self.head(features), features.mean(dim=1)

    return Net().eval()


def test_runs_like_onnxruntime_in_bfloat16_and_returns_arrays_of_its_own(tmp_path):
    net = two_output_network()
    model = kept_model(tmp_path / "net.onnx", lambda: module_to_onnx(net, torch.zeros(1, 3, 16, 16), "x", ["y", "m"]),
                       lambda onnx: Bfloat16CpuModel(onnx, threads=1))
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 3, 16, 16)).astype(np.float32)
    with torch.no_grad():
        y_ref, m_ref = (t.numpy() for t in net(torch.from_numpy(x)))
    y, m = model.run(None, {"x": x})
    assert y.dtype == np.float32 and y.shape == (3, 4) and m.shape == (3,)
    # bfloat16 keeps 8 bits of mantissa: close, not equal
    scale = np.abs(y_ref).max()
    assert 0 < np.abs(y - y_ref).max() < 0.03 * scale
    np.testing.assert_allclose(m, m_ref, rtol=0.02, atol=0.02 * np.abs(m_ref).max())
    # outputs by name, in the order asked; a transposed (not contiguous) input is read as its values
    (m_only,) = model.run(["m"], {"x": np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)})
    np.testing.assert_array_equal(m_only, m)
    # the next call does not overwrite what an earlier one returned
    kept = y.copy()
    model.run(None, {"x": x[:1] * 2})
    np.testing.assert_array_equal(y, kept)
    assert (tmp_path / "net.onnx").is_file()
