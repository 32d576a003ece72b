"""numpy peer: mini-batch SGD for softmax regression written directly in numpy (float32, dense)."""

from common import load_mnist, now, report, sgd_arguments

started = now()
import numpy as np  # noqa: E402

a = sgd_arguments()

rng = np.random.default_rng(a.seed)
xtr, ytr, xte, yte = load_mnist(a.data)
X = xtr.astype(np.float32) / 255
XT = xte.astype(np.float32) / 255
n = X.shape[0]
W = (0.01 * rng.standard_normal((784, 10))).astype(np.float32)
b = np.zeros(10, np.float32)
onehot = np.eye(10, dtype=np.float32)


def test_accuracy():
    return float(((XT @ W + b).argmax(1) == yte).mean())


t092 = None
train_seconds = 0.0
step = 0
for epoch in range(a.epochs):
    perm = rng.permutation(n)
    t = now()
    for i in range(0, n, a.batch):
        idx = perm[i : i + a.batch]
        xb = X[idx]
        z = xb @ W + b
        z -= z.max(1, keepdims=True)
        e = np.exp(z)
        d = e / e.sum(1, keepdims=True) - onehot[ytr[idx]]
        d /= len(idx)
        W -= a.lr * (xb.T @ d)
        b -= a.lr * d.sum(0)
        step += 1
        if a.eval_every and step % a.eval_every == 0:
            train_seconds += now() - t
            if t092 is None and test_accuracy() >= 0.92:
                t092 = now()
            t = now()
    train_seconds += now() - t
acc = test_accuracy()
report(
    peer="numpy",
    accuracy=acc,
    t092=t092 or (now() if acc >= 0.92 else None),
    started=started,
    samples_per_sec=(a.epochs * n) / train_seconds,
    train_seconds=train_seconds,
    version=np.__version__,
)
