import pytest
import torch

from core.device import select_device
from core.errors import DeviceError


def test_cpu_and_auto():
    assert select_device("cpu") == "cpu"
    assert select_device("auto") == ("cuda:0" if torch.cuda.is_available() else "cpu")


def test_unknown_device_is_a_named_error():
    with pytest.raises(DeviceError, match="unknown device"):
        select_device("tpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present")
def test_cuda_without_a_gpu_is_a_clear_error():
    with pytest.raises(DeviceError, match="no CUDA GPU"):
        select_device("cuda")
