"""The teaching notebook's experiment (/work/shared/reference): 5000 single-pattern steps, lr 0.02,
weights N(0, 1), pixels/255 plus a bias input.

--mode as-written: the notebook's code, whose every step computes the softmax of all 60,000 rows to
  use one (update(designbias, weights)[i]); runs --steps of them and reports the time per step, so
  the bench can extrapolate to 5000 (or --steps 5000 to run it all).
--mode fast: the same algorithm computing only row i, for the accuracy distribution over --seeds.
"""
import argparse

from common import load_mnist, now, report

started = now()
import numpy as np  # noqa: E402

p = argparse.ArgumentParser()
p.add_argument("--data", required=True)
p.add_argument("--mode", choices=["as-written", "fast"], default="as-written")
p.add_argument("--steps", type=int, default=5000)
p.add_argument("--seeds", type=int, default=10)
a = p.parse_args()

xtr, ytr, xte, yte = load_mnist(a.data)
# ToTensor() gives float32 x/255; the notebook's concatenate with np.ones makes the design float64
design = xtr.astype(np.float32) / 255
labels = list(ytr)
nr_classes = 10
t = np.zeros(design.shape[0] * nr_classes)
t.shape = design.shape[0], nr_classes
for i, ind in enumerate(labels):
    t[i][ind] = 1.0
ones = np.ones(design.shape[0])
ones.shape = design.shape[0], 1
designbias = np.concatenate((design, ones), axis=1)
designtest = xte.astype(np.float32) / 255
ones = np.ones(designtest.shape[0])
ones.shape = designtest.shape[0], 1
designbiastest = np.concatenate((designtest, ones), axis=1)


def stableSoftmax(x):
    z = x - np.max(x, axis=-1, keepdims=True)
    numerator = np.exp(z)
    denominator = np.sum(numerator, axis=-1, keepdims=True)
    return numerator / denominator


def update(designbias, weights):
    return stableSoftmax(designbias.dot(weights))


def gradient(target, weights, designbias, i):
    return np.outer(designbias[i], update(designbias, weights)[i] - target[i])


def gradient_row(target, weights, designbias, i):
    return np.outer(designbias[i], stableSoftmax(designbias[i].dot(weights)) - target[i])


def accuracy(weights):
    outcomes = update(designbiastest, weights)
    return float(np.count_nonzero(outcomes.argmax(1) == yte)) / outcomes.shape[0]


nrdatapoints = designbias.shape[0]
r = 0.02
if a.mode == "as-written":
    weights = np.random.normal(0.0, 1.0, size=(28 * 28 + 1) * nr_classes)
    weights.shape = 28 * 28 + 1, nr_classes
    setup_seconds = now() - started
    t0 = now()
    for i in range(a.steps):
        weights -= r * gradient(t, weights, designbias, np.random.randint(0, nrdatapoints - 1))
    step_seconds = (now() - t0) / a.steps
    report(
        peer="notebook",
        mode=a.mode,
        steps=a.steps,
        accuracy=accuracy(weights) if a.steps == 5000 else None,
        step_seconds=step_seconds,
        setup_seconds=setup_seconds,
        started=started,
        t092=None,
    )
else:
    accs = []
    for seed in range(a.seeds):
        np.random.seed(seed)
        weights = np.random.normal(0.0, 1.0, size=(785, nr_classes))
        for i in range(a.steps):
            weights -= r * gradient_row(t, weights, designbias, np.random.randint(0, nrdatapoints - 1))
        accs.append(accuracy(weights))
    report(peer="notebook", mode=a.mode, accuracies=accs, started=started, t092=None)
