"""scikit-learn peer: LogisticRegression (lbfgs, multinomial, C=1) on x/255 — the converged optimum."""
import argparse
import warnings

from common import load_mnist, now, report

started = now()
import numpy as np  # noqa: E402
import sklearn  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402

p = argparse.ArgumentParser()
p.add_argument("--data", required=True)
p.add_argument("--max-iter", type=int, default=100)
a = p.parse_args()

xtr, ytr, xte, yte = load_mnist(a.data)
X = xtr.astype(np.float64) / 255
XT = xte.astype(np.float64) / 255
t = now()
with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # lbfgs warns when max_iter stops it
    clf = LogisticRegression(max_iter=a.max_iter).fit(X, ytr)
train_seconds = now() - t
acc = float((clf.predict(XT) == yte).mean())
report(
    peer="sklearn",
    accuracy=acc,
    t092=now() if acc >= 0.92 else None,
    started=started,
    samples_per_sec=None,
    train_seconds=train_seconds,
    iterations=int(np.max(clf.n_iter_)),
    version=sklearn.__version__,
)
