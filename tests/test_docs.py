"""The documentation: docs/cli.md is current, README.md is short, links resolve, no private citations."""

import functools
import os
import re

import pytest

from wbc_tf.cli import docs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = os.path.join(ROOT, "docs")
README_MAX_LINES = 200

# [text](target) not preceded by '!' is a link, ![alt](target) an image; both must resolve.
_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
_FENCE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)
_CODE = re.compile(r"`[^`\n]*`")
_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.M)


def _pages():
    """README.md and every docs/*.md, as absolute paths."""
    pages = [os.path.join(ROOT, "README.md")]
    pages += sorted(os.path.join(DOCS, n) for n in os.listdir(DOCS) if n.endswith(".md"))
    return pages


def _read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def slug(heading):
    """GitHub's anchor of a Markdown heading: lower case, punctuation but '-' '_' dropped, ' ' → '-'."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).strip().lower()   # a link's text
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


@functools.lru_cache(maxsize=None)
def _anchors(path):
    return {slug(h) for h in _HEADING.findall(_FENCE.sub("", _read(path)))}


def relative_links(path):
    """``(target, resolved path, fragment)`` of every relative link or image in a Markdown file."""
    text = _CODE.sub("", _FENCE.sub("", _read(path)))     # links inside code are code, not links
    for target in _LINK.findall(text):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):   # http:, https:, mailto:
            continue
        file_part, _, fragment = target.partition("#")
        resolved = os.path.normpath(os.path.join(os.path.dirname(path), file_part)) if file_part else path
        yield target, resolved, fragment


def test_cli_md_is_current():
    with open(os.path.join(DOCS, "cli.md"), encoding="utf-8") as f:
        written = f.read()
    assert written == docs.render(), (
        "docs/cli.md is out of date with the argument parsers; regenerate it with\n"
        "    python -m wbc_tf.cli.docs > docs/cli.md")


def test_cli_md_documents_every_console_script():
    import configparser
    setup = configparser.ConfigParser()
    setup.read(os.path.join(ROOT, "setup.cfg"))
    scripts = {}
    for line in setup["options.entry_points"]["console_scripts"].strip().splitlines():
        name, target = (part.strip() for part in line.split("="))
        scripts[name] = target.split(":")[0]
    assert scripts == {name: module for name, module, *_ in docs.COMMANDS}


def test_cli_md_does_not_depend_on_the_terminal(monkeypatch):
    monkeypatch.setenv("COLUMNS", "41")
    narrow = docs.render()
    monkeypatch.setenv("COLUMNS", "250")
    assert docs.render() == narrow


def test_readme_is_short():
    lines = _read(os.path.join(ROOT, "README.md")).count("\n")
    assert lines <= README_MAX_LINES, (
        f"README.md has {lines} lines (at most {README_MAX_LINES}); move details to docs/")


@pytest.mark.parametrize("page", _pages(), ids=lambda p: os.path.relpath(p, ROOT))
def test_relative_links_resolve(page):
    broken = []
    for target, resolved, fragment in relative_links(page):
        if not os.path.exists(resolved):
            broken.append(f"{target}: no file {os.path.relpath(resolved, ROOT)}")
        elif fragment and resolved.endswith(".md") and fragment not in _anchors(resolved):
            broken.append(f"{target}: no heading with anchor #{fragment}")
    assert not broken, f"{os.path.relpath(page, ROOT)}: broken links:\n" + "\n".join(broken)


def test_link_checker_sees_links_and_anchors():
    """The helpers the link test relies on find links outside code blocks and GitHub's anchors."""
    assert slug("11.3 Guided-filter `eps`: train vs test") == "113-guided-filter-eps-train-vs-test"
    assert slug("11.22 The redundant `inter_out` pass") == "1122-the-redundant-inter_out-pass"
    readme_links = [t for t, _, _ in relative_links(os.path.join(ROOT, "README.md"))]
    assert "docs/before_after.jpg" in readme_links and "docs/cli.md" in readme_links


# EXPECTED TO FAIL until the lead's sweep rewrites every citation of the private spec ("spec" + " §N")
# to `docs/fidelity.md §N`: users do not have that document. Not marked xfail: it is the to-do list.
_PRIVATE = ("spec " + "§", "original_" + "spec")     # split so that this file does not match itself
_SOURCES = ("wbc_tf", "tests", "benchmarks", "train.py", "export_tflite.py")


def _python_files():
    for top in _SOURCES:
        top = os.path.join(ROOT, top)
        if os.path.isfile(top):
            yield top
        for folder, _, names in os.walk(top):
            yield from (os.path.join(folder, n) for n in sorted(names) if n.endswith(".py"))


def test_no_citation_of_the_private_spec():
    """No source file nor any --help text cites the spec users do not have; they cite docs/fidelity.md."""
    found = []
    for path in _python_files():
        for number, line in enumerate(_read(path).splitlines(), 1):
            if any(p in line.lower() for p in _PRIVATE):
                found.append(f"{os.path.relpath(path, ROOT)}:{number}: {line.strip()}")
    for name, module, *_ in docs.COMMANDS:
        text = " ".join(docs.command_help(module).split())           # undo the wrapping
        for m in re.finditer(r"§\s*\d", text):     # a bare "(§11.7)" names no document either
            if "fidelity.md" not in text[max(m.start() - 60, 0):m.start()]:
                found.append(f"{name} --help: ...{text[max(m.start() - 60, 0):m.end() + 10]}...")
    assert not found, (
        "cite `docs/fidelity.md §N` instead (same section number N):\n" + "\n".join(found))
