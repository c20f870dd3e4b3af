"""A skorch callback that counts trainings in a file, across processes.

It lives in its own importable module (not in a test file) because joblib's
loky workers unpickle it by reference: they import this small module, not a
test module and its fixtures.
"""

from skorch.callbacks import Callback


class TrainCounter(Callback):
    """Appends one line to ``path`` each time a network starts training.

    ``CNNClassifier`` trains on copies of its callbacks, and joblib's workers
    on copies of those: an attribute would count in one process only. A line
    appended with ``O_APPEND`` is atomic between processes.
    """

    def __init__(self, path):
        self.path = path

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        with open(self.path, "a") as f:
            f.write("train\n")


def trainings(path) -> int:
    """Number of trainings recorded in ``path``."""
    try:
        with open(path) as f:
            return len(f.readlines())
    except FileNotFoundError:
        return 0
