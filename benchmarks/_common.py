"""Helpers shared by the benchmark scripts: the machine they ran on, their table.

Each benchmark answers one question and writes one Markdown file to
``benchmarks/results/``; these two functions keep those files alike::

    from _common import machine_info, write_markdown

    write_markdown(
        "benchmarks/results/x.md",
        title="What x costs",
        header=["configuration", "seconds"],
        rows=[["a", 1.5], ["b", 2.0]],
        notes=[machine_info(), "Command: python benchmarks/bench_x.py"],
    )

Benchmarks run as scripts (``python benchmarks/bench_x.py``), so Python finds
this module next to them without ``benchmarks`` being a package.
"""

from __future__ import annotations

import os
import platform
import shlex
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np


def machine_info() -> str:
    """One line naming the CPU, its core count and the versions that matter.

    Returns
    -------
    info : str
        e.g. ``"Linux x86_64, 2 CPUs (AMD EPYC ...), Python 3.11.7, torch
        2.4.0+cpu, scikit-learn 1.6.1, skorch 1.1.0, sk_mlc 0.1.0"``.
    """
    import sklearn
    import skorch
    import torch

    import sk_mlc

    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    cpus = cpus or os.cpu_count()
    model = _cpu_model()
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (
        f"{platform.system()} {platform.machine()}, {cpus} CPUs"
        f"{f' ({model})' if model else ''}, {gpu}, Python "
        f"{platform.python_version()}, torch {torch.__version__}, scikit-learn "
        f"{sklearn.__version__}, skorch {skorch.__version__}, sk_mlc "
        f"{sk_mlc.__version__}"
    )


def _cpu_model() -> str:
    """The CPU's model name on Linux (``platform.processor()`` is often empty)."""
    try:
        with open("/proc/cpuinfo") as file:
            for line in file:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def write_markdown(
    path,
    title: str,
    header: Sequence[str],
    rows: Iterable[Sequence],
    notes: Iterable[str] = (),
) -> Path:
    """Write a Markdown file: a ``#`` title, one table, then notes as bullets.

    Parameters
    ----------
    path : str or os.PathLike
        The file to write; missing parent folders are created.
    title : str
        The heading.
    header : sequence of str
        Column names.
    rows : iterable of sequences
        One sequence per row, as long as ``header``; cells are formatted with
        ``str`` (format floats yourself to choose their precision).
    notes : iterable of str, default=()
        Lines written under the table as a bulleted list (the machine, the
        command line, what the bounds mean).

    Returns
    -------
    path : pathlib.Path
        The file written.
    """
    path = Path(path)
    lines = [f"# {title}", "", _row(header), _row(["---"] * len(header))]
    for row in rows:
        if len(row) != len(header):
            raise ValueError(
                f"write_markdown: every row needs {len(header)} cells (one per "
                f"header column); got {len(row)} in {list(row)!r}."
            )
        lines.append(_row(row))
    notes = list(notes)
    if notes:
        lines += [""] + [f"- {note}" for note in notes]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def subplots(*args, **kwargs):
    """``plt.subplots`` on matplotlib's Agg backend: no display needed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(*args, **kwargs)


def save_figure(fig, path) -> None:
    """Lay out ``fig``, write it to ``path`` (creating its folder) and close it."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _row(cells: Sequence) -> str:
    # A "|" inside a cell would split it into two columns.
    return "| " + " | ".join(str(cell).replace("|", "\\|") for cell in cells) + " |"


def cnn_defaults() -> dict:
    """``CNNClassifier``'s default parameters, as ``get_params`` returns them."""
    from sk_mlc import CNNClassifier

    return CNNClassifier().get_params()


def probe_classifier(X, y, **params):
    """What a ``CNNClassifier`` with ``params`` resolves to on data like ``X``, ``y``.

    A one-epoch fit on the first 1,280 samples (enough for ``batch_size="auto"``
    to reach its full 128), through the public API only: its ``tta_`` and
    ``augment_``, ``net_.batch_size``, and the network ``net_.module_`` are
    what a full fit with the same parameters uses. Its callback ``"init"``
    keeps the network's state dict as training started (``.state``), so that
    a peer compared with ``CNNClassifier`` can train the very same network
    from the very same weights (:func:`initial_network`).
    """
    from skorch.callbacks import Callback

    from sk_mlc import CNNClassifier

    class InitialWeights(Callback):
        def on_train_begin(self, net, **kwargs):
            state = net.module_.state_dict()
            self.state = {k: v.detach().clone() for k, v in state.items()}

    n = min(len(X), 1280)
    params = {"random_state": 0, **params, "max_epochs": 1}
    params["callbacks"] = [*(params.get("callbacks") or []), ("init", InitialWeights())]
    return CNNClassifier(**params).fit(X[:n], y[:n])


def initial_network(X, y, device="cpu", channels_last=False, **params):
    """``CNNClassifier``'s network for this data, at the weights training starts from.

    A copy of :func:`probe_classifier`'s ``net_.module_`` with its initial
    weights, in train mode, on ``device``; ``channels_last`` keeps the memory
    format ``CNNClassifier`` trains in, else the default one a user's own
    module has. Returns the module and the probe.
    """
    import copy

    import torch

    probe = probe_classifier(X, y, **params)
    module = copy.deepcopy(probe.net_.module_).cpu()
    module.load_state_dict(dict(probe.net_.callbacks_)["init"].state)
    layout = torch.channels_last if channels_last else torch.contiguous_format
    return module.to(device, memory_format=layout).train(), probe


def provenance(script: str, argv=None) -> list[str]:
    """The notes that close every result file: threads, machine, exact command.

    Parameters
    ----------
    script : str
        The script's file name, e.g. ``"bench_fashion.py"``.
    argv : list of str or None
        The arguments it ran with (None: ``sys.argv[1:]``).
    """
    import sys

    import torch

    args = sys.argv[1:] if argv is None else list(argv)
    return [
        f"torch threads: {torch.get_num_threads()}.",
        machine_info(),
        "Command: `" + shlex.join(["python", f"benchmarks/{script}", *args]) + "`",
    ]


def multilabel_scores(Y_true, Y_pred, proba=None) -> dict:
    """What the multi-label literature reports, on a full-label test set.

    ``macro``, ``micro`` and ``samples`` F1 of the decisions ``Y_pred``, each
    label's F1 (``per_label``), and, given the positive-class probabilities
    ``proba``,
    the mean average precision ``mAP`` (macro ``average_precision_score``,
    threshold-free: how well each label's probabilities rank its positives)
    and the share of ``empty`` rows predicted without any label.
    """
    from sklearn.metrics import average_precision_score, f1_score

    Y_pred = Y_pred.toarray() if hasattr(Y_pred, "toarray") else np.asarray(Y_pred)
    out = {
        "macro": f1_score(Y_true, Y_pred, average="macro", zero_division=0),
        "micro": f1_score(Y_true, Y_pred, average="micro", zero_division=0),
        "samples": f1_score(Y_true, Y_pred, average="samples", zero_division=0),
        "per_label": f1_score(Y_true, Y_pred, average=None, zero_division=0),
        "empty": float((Y_pred.sum(axis=1) == 0).mean()),
    }
    if proba is not None:
        out["mAP"] = average_precision_score(Y_true, proba, average="macro")
    return out
