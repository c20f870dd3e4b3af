"""Sphinx extension: the user guide pages are the README's sections.

The README stays the front door and the one copy of the guide. At the start of
every build this cuts it at its ``## `` headings into ``docs/guide/`` (a
generated folder, ignored by git): ``_intro.md`` (everything before the first
section, included by ``index.md``) and one page per section, named by the
heading's GitHub anchor (``## Tuning thresholds`` -> ``guide/tuning-thresholds.md``).

Three things change on the way, so that the pages build without warnings:

- headings move up one level (``##`` -> ``#``, ``###`` -> ``##``), so that each
  section is a page with a title;
- the README's links to its sections, ``[Performance](#performance)``, become
  links to their pages; a subsection's heading gets an explicit MyST target
  named like its GitHub anchor, so a ``#`` link to it still lands (a page gets
  none: the target and the page would be two answers to one link);
- relative image paths (``benchmarks/results/fashion.png``) are rewritten to
  point from ``docs/guide/`` back to the repository root.

A section that ``index.md`` does not list in a toctree makes Sphinx warn
("document isn't included in any toctree"), which ``make docs`` turns into an
error: a new README section needs one line in ``index.md``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

FENCE = re.compile(r"^(```|~~~)")
HEADING = re.compile(r"^(#{2,6})\s+(.*?)\s*#*\s*$")
# ![alt](path) with a relative path: not a URL, not absolute, not an anchor.
IMAGE = re.compile(r"(!\[[^\]]*\]\()(?![a-z][a-z0-9+.-]*:|/|#)([^)\s]+)")
ANCHOR = re.compile(r"(\]\()#([\w-]+)\)")


def github_slug(title: str, seen: dict[str, int]) -> str:
    """The anchor GitHub gives a heading; repeated ones get ``-1``, ``-2``..."""
    slug = re.sub(r"[^\w\- ]", "", title.lower()).replace(" ", "-")
    count = seen.get(slug, 0)
    seen[slug] = count + 1
    return slug if count == 0 else f"{slug}-{count}"


def split_readme(text: str) -> tuple[list[str], list[tuple[str, str, list[str]]]]:
    """Return the intro's lines and ``(slug, title, lines)`` per ``##`` section.

    Headings inside fenced code blocks (Python comments) are not headings.
    """
    intro: list[str] = []
    sections: list[tuple[str, str, list[str]]] = []
    seen: dict[str, int] = {}
    in_fence = False
    for line in text.splitlines():
        if FENCE.match(line):
            in_fence = not in_fence
        match = None if in_fence else HEADING.match(line)
        if match:
            level, title = len(match.group(1)), match.group(2)
            slug = github_slug(title.replace("`", ""), seen)
            if level == 2:
                sections.append((slug, title, []))
                continue
            # One level up, with the anchor GitHub gives it.
            line = f"({slug})=\n{'#' * (level - 1)} {title}"
        (sections[-1][2] if sections else intro).append(line)
    return intro, sections


def write_if_changed(path: Path, text: str) -> None:
    # Rewriting an unchanged page would make Sphinx read it again every build.
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")


def write_guide(readme: Path, out: Path) -> list[str]:
    """Write the intro and one page per README section; return the page names."""
    intro, sections = split_readme(readme.read_text(encoding="utf-8"))
    out.mkdir(parents=True, exist_ok=True)
    to_root = os.path.relpath(readme.parent, out).replace(os.sep, "/")

    names = [slug for slug, _, _ in sections]

    def relink(lines: list[str], to_pages: str) -> str:
        def to_page(match: re.Match) -> str:
            prefix, slug = match.groups()
            return f"{prefix}{to_pages}{slug}.md)" if slug in names else match[0]

        body = "\n".join(lines).strip("\n") + "\n"
        body = IMAGE.sub(lambda m: f"{m.group(1)}{to_root}/{m.group(2)}", body)
        return ANCHOR.sub(to_page, body)

    # index.md, one folder up, includes the intro: its links start with guide/.
    write_if_changed(out / "_intro.md", relink(intro, f"{out.name}/"))
    for slug, title, lines in sections:
        write_if_changed(out / f"{slug}.md", f"# {title}\n\n{relink(lines, '')}")
    # A page whose section left the README would linger and build stale.
    for stale in out.glob("*.md"):
        if stale.stem not in names and stale.name != "_intro.md":
            stale.unlink()
    return names


def _on_builder_inited(app) -> None:
    srcdir = Path(app.srcdir)
    write_guide(srcdir.parent / "README.md", srcdir / "guide")


def setup(app):
    app.connect("builder-inited", _on_builder_inited)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
