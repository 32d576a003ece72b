"""PyTorch peer for config/mnist-mlp.yaml: the same multi-layer perceptron and recipe.

784 → hidden (ReLU or tanh) → 10 as nn.Linear layers on x/255, weights initialised as rxtrain's
`init` says (he: N(0, 2/fan_in); xavier: N(0, 2/(fan_in + fan_out)); normal: N(0, std²)), biases
0; cross-entropy (batch mean); torch.optim.SGD with momentum, a cosine schedule per step over the
whole run (LambdaLR, like rxtrain's); a fresh random permutation per epoch. Evaluates test accuracy
every --eval-every steps (not counted in the training time) and prints one JSON line.
"""
import argparse
import math

from common import load_mnist, now, report

started = now()
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

p = argparse.ArgumentParser()
p.add_argument("--data", required=True)
p.add_argument("--hidden", type=int, nargs="+", default=[128])
p.add_argument("--activation", choices=["relu", "tanh"], default="relu")
p.add_argument("--init", choices=["he", "xavier", "normal"], default="he")
p.add_argument("--std", type=float, default=0.01)
p.add_argument("--batch", type=int, default=64)
p.add_argument("--lr", type=float, default=0.1)
p.add_argument("--momentum", type=float, default=0.0)
p.add_argument("--epochs", type=int, default=5)
p.add_argument("--schedule", choices=["constant", "cosine"], default="cosine")
p.add_argument("--eval-every", type=int, default=0)
p.add_argument("--seed", type=int, default=0)
a = p.parse_args()

torch.manual_seed(a.seed)
xtr, ytr, xte, yte = load_mnist(a.data)
X = torch.from_numpy(xtr.astype(np.float32) / 255)
Y = torch.from_numpy(ytr)
XT = torch.from_numpy(xte.astype(np.float32) / 255)
YT = torch.from_numpy(yte)
n = X.shape[0]

widths = [784, *a.hidden, 10]
layers = []
for fan_in, fan_out in zip(widths[:-1], widths[1:]):
    layer = torch.nn.Linear(fan_in, fan_out)
    std = {"he": math.sqrt(2 / fan_in), "xavier": math.sqrt(2 / (fan_in + fan_out)), "normal": a.std}[a.init]
    with torch.no_grad():
        layer.weight.normal_(0, std)
        layer.bias.zero_()
    layers.append(layer)
act = torch.nn.ReLU() if a.activation == "relu" else torch.nn.Tanh()
parts = []
for layer in layers[:-1]:
    parts += [layer, act]
model = torch.nn.Sequential(*parts, layers[-1])

opt = torch.optim.SGD(model.parameters(), lr=a.lr, momentum=a.momentum)
total = a.epochs * math.ceil(n / a.batch)
sched = (
    torch.optim.lr_scheduler.LambdaLR(opt, lambda t: 0.5 * (1 + math.cos(math.pi * t / total)))
    if a.schedule == "cosine"
    else None
)


def test_accuracy():
    with torch.no_grad():
        return (model(XT).argmax(1) == YT).float().mean().item()


train_seconds = 0.0
step = 0
acc = test_accuracy()
for epoch in range(a.epochs):
    perm = torch.randperm(n)
    t = now()
    for i in range(0, n, a.batch):
        idx = perm[i : i + a.batch]
        loss = F.cross_entropy(model(X[idx]), Y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        if sched:
            sched.step()
        step += 1
        if a.eval_every and step % a.eval_every == 0:
            train_seconds += now() - t
            acc = test_accuracy()
            t = now()
    train_seconds += now() - t
acc = test_accuracy()
report(
    peer="pytorch-mlp",
    accuracy=acc,
    t092=None,
    started=started,
    samples_per_sec=step and (a.epochs * n) / train_seconds,
    train_seconds=train_seconds,
    threads=torch.get_num_threads(),
    version=torch.__version__,
)
