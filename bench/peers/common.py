"""Shared by the bench peers: read the IDX files the rxtrain bench uses, report one JSON line."""
import argparse
import json
import os
import sys
import time

import numpy as np


def load_mnist(data_dir):
    """uint8 images (n, 784) and int64 labels for train and test, straight from the IDX files."""

    def read(name, offset):
        with open(os.path.join(data_dir, name), "rb") as f:
            return np.frombuffer(f.read(), dtype=np.uint8, offset=offset)

    xtr = read("train-images-idx3-ubyte", 16).reshape(-1, 784)
    ytr = read("train-labels-idx1-ubyte", 8).astype(np.int64)
    xte = read("t10k-images-idx3-ubyte", 16).reshape(-1, 784)
    yte = read("t10k-labels-idx1-ubyte", 8).astype(np.int64)
    return xtr, ytr, xte, yte


def blas_info():
    """Which BLAS kernels numpy runs, when threadpoolctl can say."""
    try:
        from threadpoolctl import threadpool_info

        return [
            {k: d.get(k) for k in ("internal_api", "version", "architecture", "num_threads")}
            for d in threadpool_info()
        ]
    except Exception:  # noqa: BLE001 - optional diagnostics only
        return None


def report(**fields):
    fields.setdefault("blas", blas_info())
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.stdout.flush()


now = time.time


def sgd_arguments():
    """The command line shared by the mini-batch SGD peers."""
    p = argparse.ArgumentParser()
    p.add_argument("--data", required=True)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--schedule", choices=["constant", "cosine"], default="constant")
    p.add_argument("--eval-every", type=int, default=500)
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args()
