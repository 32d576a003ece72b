"""One SGD step of an MLP in PyTorch, for test/mlp-torch.test.ts to compare rxtrain's with.

Usage: torch_one_step.py DIR… (one case per directory). Reads from DIR (written by the test): spec.json {hidden, activation, classes, width, n, scale, lr},
weights.f32 (rxtrain's layout: per layer row-major [inputs + 1 bias row, units]), x.u8 (n rows of
raw bytes), labels.i32. Builds nn.Linear layers holding those weights, computes the batch's mean
cross-entropy on x·scale (the same float32 product rxtrain's kernels form), backpropagates, takes
one torch.optim.SGD step, and writes to DIR: result.json {loss, version}, grad.f32 (the gradient in
rxtrain's layout) and stepped.f32 (the weights after the step, same layout).
"""
import json
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F


def layout(pairs):
    """[weight (out, in), bias (out)] per layer → rxtrain's flat layout."""
    return np.concatenate([np.vstack([w.T, b[None, :]]).ravel() for w, b in pairs]).astype("<f4")


def one_step(d):
    spec = json.load(open(os.path.join(d, "spec.json")))
    flat = np.fromfile(os.path.join(d, "weights.f32"), dtype="<f4")
    x = np.fromfile(os.path.join(d, "x.u8"), dtype=np.uint8).reshape(spec["n"], spec["width"])
    y = np.fromfile(os.path.join(d, "labels.i32"), dtype="<i4").astype(np.int64)

    widths = [spec["width"], *spec["hidden"], spec["classes"]]
    layers, at = [], 0
    for fan_in, fan_out in zip(widths[:-1], widths[1:]):
        block = flat[at : at + (fan_in + 1) * fan_out].reshape(fan_in + 1, fan_out)
        at += (fan_in + 1) * fan_out
        layer = torch.nn.Linear(fan_in, fan_out)
        with torch.no_grad():
            layer.weight.copy_(torch.from_numpy(block[:fan_in].T.copy()))
            layer.bias.copy_(torch.from_numpy(block[fan_in].copy()))
        layers.append(layer)

    act = torch.relu if spec["activation"] == "relu" else torch.tanh
    h = torch.from_numpy(x.astype(np.float32)) * torch.tensor(spec["scale"], dtype=torch.float32)
    for layer in layers[:-1]:
        h = act(layer(h))
    loss = F.cross_entropy(layers[-1](h), torch.from_numpy(y))
    params = [p for layer in layers for p in (layer.weight, layer.bias)]
    opt = torch.optim.SGD(params, lr=spec["lr"])
    opt.zero_grad()
    loss.backward()
    layout([(l.weight.grad.numpy(), l.bias.grad.numpy()) for l in layers]).tofile(os.path.join(d, "grad.f32"))
    opt.step()
    with torch.no_grad():
        layout([(l.weight.numpy(), l.bias.numpy()) for l in layers]).tofile(os.path.join(d, "stepped.f32"))
    json.dump({"loss": loss.item(), "version": torch.__version__}, open(os.path.join(d, "result.json"), "w"))


for directory in sys.argv[1:]:
    one_step(directory)
