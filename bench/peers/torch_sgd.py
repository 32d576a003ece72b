"""PyTorch peer: nn.Linear(784, 10) trained by torch.optim.SGD on x/255, cross-entropy (batch mean).

Evaluates test accuracy every --eval-every steps (not counted in the training time) and prints one
JSON line: final accuracy, the wall-clock time test accuracy first reached 0.92, training samples/s.
"""
import math

from common import load_mnist, now, report, sgd_arguments

started = now()
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

a = sgd_arguments()

torch.manual_seed(a.seed)
xtr, ytr, xte, yte = load_mnist(a.data)
X = torch.from_numpy(xtr.astype(np.float32) / 255)
Y = torch.from_numpy(ytr)
XT = torch.from_numpy(xte.astype(np.float32) / 255)
YT = torch.from_numpy(yte)
n = X.shape[0]
model = torch.nn.Linear(784, 10)
opt = torch.optim.SGD(model.parameters(), lr=a.lr)
total = a.epochs * math.ceil(n / a.batch)
if a.schedule == "cosine":
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: 0.5 * (1 + math.cos(math.pi * t / total)))
else:
    sched = None


def test_accuracy():
    with torch.no_grad():
        return (model(XT).argmax(1) == YT).float().mean().item()


t092 = None
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
            if t092 is None and acc >= 0.92:
                t092 = now()
            t = now()
    train_seconds += now() - t
acc = test_accuracy()
if t092 is None and acc >= 0.92:
    t092 = now()
report(
    peer="pytorch",
    accuracy=acc,
    t092=t092,
    started=started,
    samples_per_sec=step and (a.epochs * n) / train_seconds,
    train_seconds=train_seconds,
    threads=torch.get_num_threads(),
    version=torch.__version__,
)
