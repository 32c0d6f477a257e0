"""
The docs stay true to the code: included snippets, named example DAGs and module paths.

Snippets are included, not copied: in ``docs/*.md`` a block

    <!-- include: example_dags/referrals_warehouse_load.py#warehouse_load -->
    ```python
    ...
    ```
    <!-- end include -->

must equal the region between ``# [START warehouse_load]`` and ``# [END warehouse_load]`` of that
file (dedented). After editing an example DAG, refresh every block with
``.venv/bin/python tests/test_docs.py --refresh``.
"""

from __future__ import annotations

import importlib
import re
import sys
import textwrap
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
DOC_FILES = [*sorted((REPO_ROOT / "docs").glob("*.md")), REPO_ROOT / "README.md"]

INCLUDE = re.compile(
    r"(<!-- include: (?P<file>[\w./-]+)#(?P<region>[\w-]+) -->\n```python\n)"
    r"(?P<body>.*?)"
    r"(```\n<!-- end include -->)",
    re.DOTALL,
)
EXAMPLE_DAG = re.compile(r"example_dags/(\w+)\.py")
MODULE_PATH = re.compile(r"\bairflow_provider_partner(?:\.\w+)+")
# Dotted names in the docs that are not Python paths, and why.
NOT_MODULES = {"airflow_provider_partner.schema_version": "a Parquet file metadata key (operator.md)"}


def region(file: str, name: str) -> str:
    """The dedented lines between ``# [START name]`` and ``# [END name]`` of a repo file."""
    lines = (REPO_ROOT / file).read_text(encoding="utf-8").splitlines(keepends=True)
    starts = [i for i, line in enumerate(lines) if line.strip() == f"# [START {name}]"]
    ends = [i for i, line in enumerate(lines) if line.strip() == f"# [END {name}]"]
    if len(starts) != 1 or len(ends) != 1 or ends[0] <= starts[0]:
        raise LookupError(f"{file} needs exactly one '# [START {name}]' ... '# [END {name}]' pair")
    # Blank lines the formatter puts around top-level markers are not part of the snippet.
    return textwrap.dedent("".join(lines[starts[0] + 1 : ends[0]])).strip("\n") + "\n"


def _includes() -> list[tuple[Path, str, str, str]]:
    return [
        (doc, match["file"], match["region"], match["body"])
        for doc in DOC_FILES
        for match in INCLUDE.finditer(doc.read_text(encoding="utf-8"))
    ]


def test_docs_include_snippets() -> None:
    # The pages that explain the example DAGs must actually include them.
    assert {(doc.name, file) for doc, file, _, _ in _includes()} >= {
        ("index.md", "example_dags/referrals_warehouse_load.py"),
        ("index.md", "example_dags/referrals_sample_queries.py"),
        ("index.md", "example_dags/referrals_followup.py"),
        ("index.md", "example_dags/referrals_event_driven.py"),
    }


@pytest.mark.parametrize(
    ("doc", "file", "name", "body"),
    [pytest.param(*item, id=f"{item[0].name}:{item[1]}#{item[2]}") for item in _includes()],
)
def test_included_snippet_equals_the_file_region(doc: Path, file: str, name: str, body: str) -> None:
    assert body == region(file, name), (
        f"{doc.name} includes a stale copy of {file}#{name}; "
        "run `.venv/bin/python tests/test_docs.py --refresh`."
    )


def test_every_example_dag_named_in_docs_exists() -> None:
    named = {
        (doc.name, f"example_dags/{stem}.py")
        for doc in DOC_FILES
        for stem in EXAMPLE_DAG.findall(doc.read_text(encoding="utf-8"))
    }
    missing = sorted(item for item in named if not (REPO_ROOT / item[1]).is_file())
    assert missing == []


def test_every_module_path_named_in_docs_imports() -> None:
    failures = [
        f"{doc.name}: {path}"
        for doc in DOC_FILES
        for path in sorted(set(MODULE_PATH.findall(doc.read_text(encoding="utf-8"))))
        if path not in NOT_MODULES and not _resolves(path)
    ]
    assert failures == []


def _resolves(dotted: str) -> bool:
    """True when ``dotted`` is a module, or an attribute chain of one (a class, a function)."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            target: object = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attribute in parts[cut:]:
            if not hasattr(target, attribute):
                return False
            target = getattr(target, attribute)
        return True
    return False


def refresh() -> int:
    """Rewrite every include block from its file region; returns how many blocks changed."""
    changed = 0
    for doc in DOC_FILES:
        text = doc.read_text(encoding="utf-8")

        def replace(match: re.Match[str]) -> str:
            return match[1] + region(match["file"], match["region"]) + match[5]

        new = INCLUDE.sub(replace, text)
        if new != text:
            doc.write_text(new, encoding="utf-8")
            changed += 1
    return changed


if __name__ == "__main__":
    if sys.argv[1:] != ["--refresh"]:
        sys.exit("usage: python tests/test_docs.py --refresh")
    print(f"refreshed include blocks in {refresh()} file(s)")
