"""Small networks on onnxruntime: an export kept between processes (core/onnx_session.py)."""

import logging

import numpy as np
import pytest
import torch

from core.onnx_session import kept_cpu_session, module_to_onnx

pytest.importorskip("onnxruntime")


def small_network() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(4 * 6 * 6, 3))


def test_an_export_is_kept_and_the_next_session_runs_from_it(tmp_path):
    net = small_network()
    exports = []

    def export():
        exports.append(1)
        return module_to_onnx(net, torch.zeros(1, 1, 8, 8), "x", ["y"])

    path = tmp_path / "kept" / "net.onnx"
    x = np.random.default_rng(0).normal(size=(5, 1, 8, 8)).astype(np.float32)
    first = kept_cpu_session(path, export, threads=1).run(["y"], {"x": x})[0]
    assert len(exports) == 1 and path.is_file()
    second = kept_cpu_session(path, export, threads=1).run(["y"], {"x": x})[0]
    assert len(exports) == 1  # read back, not exported again
    np.testing.assert_array_equal(first, second)
    with torch.no_grad():
        np.testing.assert_allclose(second, net(torch.from_numpy(x)).numpy(), atol=1e-5)


def test_a_damaged_kept_export_is_made_again_and_an_unwritable_folder_costs_only_the_export(tmp_path, caplog):
    net = small_network()
    exports = []

    def export():
        exports.append(1)
        return module_to_onnx(net, torch.zeros(1, 1, 8, 8), "x", ["y"])

    path = tmp_path / "net.onnx"
    path.write_bytes(module_to_onnx(net, torch.zeros(1, 1, 8, 8), "x", ["y"])[:500])  # cut short
    with caplog.at_level(logging.WARNING):
        session = kept_cpu_session(path, export)
    assert len(exports) == 1 and "exporting it again" in caplog.text
    assert session.run(["y"], {"x": np.zeros((1, 1, 8, 8), np.float32)})[0].shape == (1, 3)
    assert kept_cpu_session(path, export) is not None and len(exports) == 1  # the rewritten file is whole

    not_a_folder = tmp_path / "a file"  # even root cannot write below a file
    not_a_folder.write_text("")
    session = kept_cpu_session(not_a_folder / "net.onnx", export)
    assert len(exports) == 2
    assert session.run(["y"], {"x": np.zeros((2, 1, 8, 8), np.float32)})[0].shape == (2, 3)
