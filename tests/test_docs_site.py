"""
The docs site's build (``make docs``, docs/conf.py) fails on a broken internal link, naming it.

Each test builds a small tree shaped like the repository (``docs/`` with the real ``conf.py``, a
``pyproject.toml``, a one-module ``airflow_provider_partner`` and an ``example_dags/`` file) with
the options of ``make docs`` (``-W --keep-going``), in a subprocess: the real site takes ~20 s to
build, this tree ~3 s, and what is checked is the configuration, not the pages (``make docs``
builds those).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

for _module in ("sphinx", "myst_parser", "autoapi", "furo"):
    # The docs extra is in the development venv (make) only; the matrix venvs skip this file.
    pytest.importorskip(_module)

pytestmark = pytest.mark.slow  # Airflow-independent: the main combination runs it

REPO_ROOT = Path(__file__).resolve().parent.parent
SOURCE_URL = "https://github.com/example/provider"
# The Makefile's `docs` recipe, run by this venv's interpreter.
MAKE_DOCS_OPTIONS = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-E", "-q", "-b", "html"]

INDEX = """\
# The provider

See [the page](page.md), [its heading](page.md#a-heading-with-code-x), [the DAG](../example_dags/dag.py)
and [the folder](../example_dags/).

```{toctree}
page
API reference <api/airflow_provider_partner/index>
```
"""

PAGE = """\
# A page

## A heading with `code`: x

![a picture](images/picture.png)
"""

MODULE = '''\
"""A module of the provider."""


def window(start: int, end: int) -> int:
    """
    The length of a window.

    :param start: the first instant.
    :param end: the instant after the last.
    :return: ``end - start``.
    :raises ValueError: when ``end`` is before ``start``.
    """
    if end < start:
        raise ValueError("end before start")
    return end - start
'''


def make_tree(root: Path) -> Path:
    """A repository-shaped tree whose docs build cleanly; returns its ``docs/``."""
    docs = root / "docs"
    (docs / "images").mkdir(parents=True)
    shutil.copy(REPO_ROOT / "docs" / "conf.py", docs / "conf.py")
    shutil.copy(REPO_ROOT / "docs" / "images" / "soak.png", docs / "images" / "picture.png")
    (docs / "index.md").write_text(INDEX, encoding="utf-8")
    (docs / "page.md").write_text(PAGE, encoding="utf-8")
    (root / "pyproject.toml").write_text(f'[project.urls]\nSource = "{SOURCE_URL}"\n', encoding="utf-8")
    package = root / "airflow_provider_partner"
    package.mkdir()
    (package / "__init__.py").write_text('"""The provider."""\n\n__version__ = "9.9.9"\n', encoding="utf-8")
    (package / "windows.py").write_text(MODULE, encoding="utf-8")
    (root / "example_dags").mkdir()
    (root / "example_dags" / "dag.py").write_text("", encoding="utf-8")
    return docs


def build(docs: Path) -> subprocess.CompletedProcess[str]:
    """``make docs``'s sphinx-build, into ``docs/_build``."""
    return subprocess.run(
        [
            *MAKE_DOCS_OPTIONS,
            "-d",
            str(docs / "_build" / "doctrees"),
            str(docs),
            str(docs / "_build" / "html"),
        ],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def test_a_clean_tree_builds_with_search_api_and_repository_links(tmp_path: Path) -> None:
    docs = make_tree(tmp_path)
    result = build(docs)
    assert (result.returncode, result.stderr) == (0, "")
    html = docs / "_build" / "html"
    index = (html / "index.html").read_text(encoding="utf-8")
    # Links to repository files outside docs/ lead to GitHub (a file, a folder); pages stay pages.
    assert f'href="{SOURCE_URL}/blob/main/example_dags/dag.py"' in index
    assert f'href="{SOURCE_URL}/tree/main/example_dags"' in index
    assert 'href="page.html#a-heading-with-code-x"' in index
    assert (html / "searchindex.js").is_file()
    # The :param: field lists render as the parameter list of the function's entry.
    api = (html / "api" / "airflow_provider_partner" / "windows" / "index.html").read_text(encoding="utf-8")
    assert "Parameters" in api
    assert re.search(r"<strong>start</strong>.*the first instant", api, re.DOTALL)
    # The generated API sources are removed after the build (docs/api/ is gitignored anyway).
    assert not (docs / "api").exists()


# Each kind of broken link, in one build: (page, text, broken text, the warning naming it).
BREAKS = [
    (
        "index.md",
        "(page.md)",
        "(pages.md)",
        r"index\.md:3: WARNING: 'myst' cross-reference target not found: 'pages\.md'",
    ),
    (
        "index.md",
        "#a-heading-with-code-x",
        "#a-heading-with-code",
        r"index\.md:3: WARNING: local id not found in doc 'page': 'a-heading-with-code'",
    ),
    (
        "index.md",
        "../example_dags/dag.py",
        "../example_dags/dags.py",
        r"index\.md:3: WARNING: link to a repository file that does not exist: "
        r"\.\./example_dags/dags\.py \(example_dags/dags\.py\)",
    ),
    (
        "page.md",
        "images/picture.png",
        "images/pictures.png",
        r"page\.md:5: WARNING: image file not readable: images/pictures\.png",
    ),
    ("index.md", "page\nAPI", "API", r"page\.md: WARNING: document isn't included in any toctree"),
]


def test_each_broken_internal_link_fails_the_build_naming_it(tmp_path: Path) -> None:
    docs = make_tree(tmp_path)
    for page, old, new, _ in BREAKS:
        text = (docs / page).read_text(encoding="utf-8")
        assert text.count(old) == 1
        (docs / page).write_text(text.replace(old, new), encoding="utf-8")
    result = build(docs)
    assert result.returncode != 0
    warnings = sorted(line for line in result.stderr.splitlines() if "WARNING" in line)
    assert len(warnings) == len(BREAKS), result.stderr
    for *_, message in BREAKS:
        assert [line for line in warnings if re.search(message, line)] != [], (message, warnings)


def test_the_sites_toctree_names_every_page() -> None:
    # Sphinx fails on a page outside every toctree; this says which page before a 20 s build does.
    index = (REPO_ROOT / "docs" / "index.md").read_text(encoding="utf-8")
    toctree = re.search(r"```\{toctree\}\n(.*?)```", index, re.DOTALL)
    assert toctree is not None
    entries = {
        re.sub(r"^.*<(.+)>$", r"\1", line.strip())
        for line in toctree[1].splitlines()
        if line.strip() and not line.startswith(":")
    }
    pages = {path.stem for path in (REPO_ROOT / "docs").glob("*.md")} - {"index"}
    assert pages - entries == set()


def test_make_test_builds_the_docs_with_these_options_before_the_unit_tests() -> None:
    makefile = (REPO_ROOT / "Makefile").read_text(encoding="utf-8")
    recipe = re.search(r"^docs: .*\n\t(.+)$", makefile, re.MULTILINE)
    assert recipe is not None
    assert recipe[1].startswith(" ".join(["$(BIN)/sphinx-build", *MAKE_DOCS_OPTIONS[3:]]) + " ")
    prerequisites = re.search(r"^test: (.+)$", makefile, re.MULTILINE)
    assert prerequisites is not None
    assert prerequisites[1].split().index("docs") < prerequisites[1].split().index("unit")
