"""Sphinx configuration for sk_mlc's documentation site.

``make docs`` builds it with ``sphinx-build -W --keep-going``: every warning is
an error. It builds offline: no intersphinx, and sphinx-gallery links only to
this site's own API pages, so nothing is fetched.
"""

import inspect
import re
from pathlib import Path

import sk_mlc
import sk_mlc.datasets
import sk_mlc.model_selection

DOCS = Path(__file__).resolve().parent

project = "sk_mlc"
author = "the sk_mlc developers"
copyright = "the sk_mlc developers, BSD-3-Clause"
version = release = sk_mlc.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "numpydoc",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
templates_path = ["_templates"]
exclude_patterns = ["_build"]

# -- The user guide: one Markdown (MyST) page per concern --------------------
# Headings up to ### get GitHub's anchors, so that a link such as
# ``performance.md#threshold-search`` lands on GitHub and on this site alike.
myst_heading_anchors = 3

html_theme = "alabaster"
html_theme_options = {
    "description": "A scikit-learn CNN image classifier: the shape of y decides.",
    "fixed_sidebar": True,
}
html_title = f"sk_mlc {release}"

# -- API reference: autosummary pages from the numpydoc docstrings -----------
autosummary_generate = True
autodoc_typehints = "none"  # the numpydoc Parameters sections say it better
# numpydoc would add its own member tables next to autodoc's members.
numpydoc_show_class_members = False


def _skip_metadata_request_setters(app, what, name, obj, skip, options):
    # scikit-learn generates set_{fit,score,...}_request on every estimator
    # whose methods take metadata; their docstrings point into scikit-learn's
    # own user guide (:ref:`metadata_routing`), which this site does not have.
    if what == "class" and re.fullmatch(r"set_\w+_request", name):
        return True
    return None


def _drop_type_docstring(app, what, name, obj, options, lines):
    # A module constant has no docstring of its own, so autodoc shows its
    # type's ("Built-in immutable sequence..." for a tuple). Show none
    # instead; a ``#:`` comment above the constant still becomes its text.
    type_doc = inspect.cleandoc(type(obj).__doc__ or "")
    if what == "data" and "\n".join(lines).strip() == type_doc:
        lines.clear()


def setup(app):
    app.connect("autodoc-skip-member", _skip_metadata_request_setters)
    # Before numpydoc (priority 500) rewrites the lines into sections.
    app.connect("autodoc-process-docstring", _drop_type_docstring, priority=100)


# -- sphinx-gallery over examples/ -------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    # Examples named here are executed and their output shown; any other is
    # shown with its code only, so a new example costs CI nothing until it is
    # timed and added. Measured on 2 idle cores: demo.py 14 s, planet_style.py
    # 7 s, pretrained.py 4 s (it needs the pretrained extra, which .[dev]
    # installs) (each up to 5-10x that when the machine is shared).
    "filename_pattern": r"/(demo|planet_style|pretrained)\.py$",
    # The examples print; they draw no figure worth a thumbnail.
    "image_scrapers": (),
    "download_all_examples": False,
    "doc_module": ("sk_mlc",),
    "backreferences_dir": "generated/backreferences",
    "show_memory": False,
}


def _check_api_lists_every_public_name() -> None:
    """Fail the build when a public name is missing from ``api.rst``.

    autosummary documents only what ``api.rst`` lists; a name added to
    ``__all__`` without a line there would silently have no page.
    """
    import sk_mlc.mlflow  # noqa: F401  (MLflow itself loads inside its functions)

    listed = set(re.findall(r"^ {3}(\w+)\s*$", (DOCS / "api.rst").read_text(), re.M))
    public = {f"sk_mlc.{name}" for name in sk_mlc.__all__}
    public |= {f"sk_mlc.datasets.{name}" for name in sk_mlc.datasets.__all__}
    modules = (sk_mlc.model_selection, sk_mlc.exceptions, sk_mlc.losses, sk_mlc.mlflow)
    for module in modules:
        public |= {f"{module.__name__}.{name}" for name in module.__all__}
    missing = sorted(name for name in public if name.rsplit(".", 1)[1] not in listed)
    if missing:
        raise RuntimeError(
            f"docs/api.rst does not list {', '.join(missing)}: add each to an "
            "autosummary block there."
        )


_check_api_lists_every_public_name()
