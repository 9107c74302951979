"""The docs name files that exist, and names those files define.

For README.md and every docs/*.md:

- Every backticked path with a known extension (`collector/store/plans.py`,
  `config/collector.example.toml`, `notify/templates/KIND.txt`) must name a file of the
  repository. A path with a slash is tried from the root, then under each top-level
  folder (`store/plans.py` is collector/store/plans.py). A bare name (`plans.py`) is tried
  at the root and in the folders the same paragraph (or table row) names: the folder of
  every path there, its parents, and every backticked folder (`replenish/`; a folder is
  found from the root, under a top-level folder, or in a folder named before it). A paragraph
  that names no folder lets a bare name sit anywhere. Bare data files (`identity.json`,
  `usage.csv`) are what the running system writes or reads, and are not checked.
  `*`, `<lang>` and an upper-case placeholder (`KIND.html`) match any name.
- After a .py path, backticked identifiers that follow it, separated only by commas,
  "and", or a parenthesis (`path.py` `placed`, `_notice_kind` (why), `other`), must be
  defined in that file: a def, a class or an assignment, at any indentation.
- A backticked dotted name whose first two parts are modules
  (`collector.store.shipping.release`) must name a module, or a name defined in the
  longest module it starts with.

Paths outside the repository (`../shared/...`, `/etc/...`, `.venv`) are ignored.
"""

from __future__ import annotations

import fnmatch
import re
import subprocess
from collections.abc import Iterator
from functools import cache
from pathlib import Path, PurePosixPath

ROOT = Path(__file__).resolve().parent.parent

EXTENSIONS = (
    "py",
    "toml",
    "html",
    "txt",
    "yaml",
    "yml",
    "json",
    "csv",
    "md",
    "service",
    "conf",
    "po",
    "pot",
    "cfg",
    "mako",
    "css",
    "ini",
    "sh",
    "snmprec",
    "j2",
)
# Bare names with these extensions are runtime files (identity.json, usage.csv).
DATA_EXTENSIONS = {"json", "csv", "db", "pem", "snmprec"}

TOKEN = re.compile(r"`([^`\n]+)`")
PATH = re.compile(r"^[A-Za-z0-9_.<>*/-]+\.(?:" + "|".join(EXTENSIONS) + r")$")
FOLDER = re.compile(r"^[A-Za-z0-9_<>*-][A-Za-z0-9_./<>*-]*/$")
IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*$")
DOTTED = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)+)(\*|\(.*\))?$")
PLACEHOLDER = re.compile(r"<[^>/]*>|\b[A-Z][A-Z_]*[A-Z]\b")
# What may stand between a path and the identifiers that belong to it.
JOINER = re.compile(r"^(?:\s|,|\band\b)*$")


def doc_files() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


@cache
def repo_files() -> frozenset[str]:
    try:
        out = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.splitlines()
        files = {f for f in out if (ROOT / f).is_file()}
    except (OSError, subprocess.CalledProcessError):
        files = {
            p.relative_to(ROOT).as_posix()
            for p in ROOT.rglob("*")
            if p.is_file()
            and not any(
                part.startswith(".") or part == "__pycache__" for part in p.relative_to(ROOT).parts
            )
        }
    return frozenset(files)


@cache
def repo_folders() -> frozenset[str]:
    folders = {""}
    for f in repo_files():
        parts = PurePosixPath(f).parts[:-1]
        for i in range(1, len(parts) + 1):
            folders.add("/".join(parts[:i]))
    return frozenset(folders)


def top_folders() -> list[str]:
    return sorted(f for f in repo_folders() if f and "/" not in f)


def as_pattern(text: str) -> str:
    return PLACEHOLDER.sub("*", text)


def matches(pattern: str) -> list[str]:
    if "*" in pattern:
        return [
            f
            for f in repo_files()
            if fnmatch.fnmatchcase(f, pattern) and f.count("/") == pattern.count("/")
        ]
    return [pattern] if pattern in repo_files() else []


def folder_matches(pattern: str) -> list[str]:
    pattern = pattern.rstrip("/")
    return [f for f in repo_folders() if f and fnmatch.fnmatchcase(f, pattern)]


def ignored(text: str) -> bool:
    return text.startswith(("/", "../", "./", "~", ".venv")) or "://" in text or "/.venv" in text


def resolve(text: str) -> list[str]:
    """Files a path with a slash names: from the root, else under a top-level folder."""
    pattern = as_pattern(text)
    found = matches(pattern)
    if found:
        return found
    for top in top_folders():
        found = matches(f"{top}/{pattern}")
        if found:
            return found
    return []


def resolve_folder(text: str) -> list[str]:
    pattern = as_pattern(text)
    found = folder_matches(pattern)
    if found:
        return found
    for top in top_folders():
        found = folder_matches(f"{top}/{pattern}")
        if found:
            return found
    return []


def with_parents(folder: str) -> set[str]:
    parts = PurePosixPath(folder).parts
    return {"/".join(parts[:i]) for i in range(1, len(parts) + 1)}


def blocks(text: str) -> Iterator[tuple[int, list[str]]]:
    """Paragraphs (runs of non-blank lines) and single table rows, with their first line."""
    lines = text.split("\n")
    start, run = 0, list[str]()
    for number, line in enumerate(lines, 1):
        if line.lstrip().startswith("|"):
            if run:
                yield start, run
                start, run = 0, []
            yield number, [line]
        elif line.strip():
            if not run:
                start = number
            run.append(line)
        elif run:
            yield start, run
            start, run = 0, []
    if run:
        yield start, run


@cache
def defined(path: str, name: str) -> bool:
    source = (ROOT / path).read_text(encoding="utf-8")
    first = re.escape(name.split(".")[0])
    return (
        re.search(
            rf"^[ \t]*(?:(?:async[ \t]+)?def[ \t]+{first}\b|class[ \t]+{first}\b"
            rf"|{first}[ \t]*(?::[^\n=]*)?=(?!=)|{first}[ \t]*:)"
            rf"|^[ \t]*(?:[A-Za-z_][A-Za-z0-9_]*[ \t]*,[ \t]*)+{first}[ \t]*=(?!=)",
            source,
            re.MULTILINE,
        )
        is not None
    )


def module_of(parts: list[str]) -> str | None:
    base = "/".join(parts)
    if f"{base}.py" in repo_files():
        return f"{base}.py"
    if f"{base}/__init__.py" in repo_files():
        return f"{base}/__init__.py"
    return None


def check_dotted(text: str) -> str | None:
    """None if fine or not a code name; else what is wrong."""
    m = DOTTED.match(text)
    if not m:
        return None
    parts = m.group(1).split(".")
    star = m.group(2) == "*"
    if module_of(parts[:2]) is None:
        return None  # a setting (`agent.state_dir`), not code
    longest = 2
    while longest < len(parts) and module_of(parts[: longest + 1]):
        longest += 1
    if longest == len(parts):
        return None
    module = module_of(parts[:longest])
    rest = parts[longest]
    if star and longest == len(parts) - 1:
        folder = "/".join(parts[:longest])
        if any(fnmatch.fnmatchcase(f, f"{folder}/{rest}*.py") for f in repo_files()):
            return None
    if defined(module, rest):
        return None
    return f"`{text}`: no module {'.'.join(parts[: longest + 1])}, and {module} defines no `{rest}`"


def problems_in(doc: Path) -> list[str]:
    return problems_in_text(doc.relative_to(ROOT).as_posix(), doc.read_text(encoding="utf-8"))


def problems_in_text(rel: str, text: str) -> list[str]:
    found: list[str] = []
    for first_line, lines in blocks(text):
        block = "\n".join(lines)
        tokens = [
            (m.start(), m.end(), m.group(1).strip(), first_line + block.count("\n", 0, m.start()))
            for m in TOKEN.finditer(block)
        ]
        context: set[str] = set()
        for _, _, tok, _ in tokens:
            if ignored(tok):
                continue
            if FOLDER.match(tok):
                folders = resolve_folder(tok) or [
                    f for c in sorted(context) for f in folder_matches(f"{c}/{as_pattern(tok)}")
                ]
                for folder in folders:
                    context |= with_parents(folder)
            elif PATH.match(tok) and "/" in tok:
                for f in resolve(tok):
                    context |= with_parents(str(PurePosixPath(f).parent))
        context.discard(".")

        for index, (_start, end, tok, line) in enumerate(tokens):
            where = f"{rel}:{line}"
            if ignored(tok):
                continue
            dotted = check_dotted(tok)
            if dotted:
                found.append(f"{where}: {dotted}")
                continue
            if not PATH.match(tok):
                continue
            extension = tok.rsplit(".", 1)[1]
            if "/" in tok:
                files = resolve(tok)
            else:
                if extension in DATA_EXTENSIONS:
                    continue
                pattern = as_pattern(tok)
                if context:
                    files = [
                        f
                        for d in sorted(context | {""})
                        for f in matches(f"{d}/{pattern}" if d else pattern)
                    ]
                else:
                    files = [
                        f
                        for f in repo_files()
                        if fnmatch.fnmatchcase(PurePosixPath(f).name, pattern)
                    ]
            if not files:
                where_looked = (
                    "from the root or a top-level folder"
                    if "/" in tok
                    else ("in " + ", ".join(f"{d}/" for d in sorted(context)))
                    if context
                    else "anywhere in the repository"
                )
                found.append(f"{where}: `{tok}` is no file ({where_looked})")
                continue
            if extension != "py" or len(files) != 1:
                continue
            # identifiers that follow the path
            after = end
            for nstart, nend, name, nline in tokens[index + 1 :]:
                between = block[after:nstart]
                between = re.sub(r"\([^()]*\)", " ", between)
                if not JOINER.match(between) or not IDENT.match(name) or PATH.match(name):
                    break
                if not defined(files[0], name):
                    found.append(f"{rel}:{nline}: `{name}` is not defined in {files[0]}")
                after = nend
    return found


def test_docs_name_files_and_names_that_exist() -> None:
    problems = [p for doc in doc_files() for p in problems_in(doc)]
    assert not problems, f"{len(problems)} stale references in the docs:\n" + "\n".join(problems)


def test_the_check_catches_a_moved_file_and_a_moved_name() -> None:
    sample = (
        "The run is `collector/replenish/no_such_job.py`.\n\n"
        "- Code: `collector/replenish/planner.py` `plan`, `no_such_name` (why).\n\n"
        "In `collector/replenish/`: `forecast.py`, `no_such_module.py`.\n\n"
        "`collector.replenish.planner.no_such_thing`, `agent.state_dir`, `identity.json`.\n"
    )
    found = problems_in_text("docs/__probe__.md", sample)
    assert any("no_such_job.py" in p and ":1:" in p for p in found), found
    assert any("no_such_name" in p and ":3:" in p for p in found), found
    assert not any("`plan`" in p for p in found), found
    assert any("no_such_module.py" in p and ":5:" in p for p in found), found
    assert not any("forecast.py" in p for p in found), found
    assert any("no_such_thing" in p for p in found), found
    assert not any("state_dir" in p or "identity.json" in p for p in found), found


def test_the_check_catches_what_issue_15_moved() -> None:
    """The stale references the docs had before issue 15's moves were written down."""
    sample = (
        "The daily run (`collector/replenish/job.py`); its SQL is `store/claims.py`.\n\n"
        "(`collector/cli.py` `cmd_load_customers`), `collector/store/shipping.py` `_request`\n"
        "and `collector/portal/pages.py` `device_page`, `fleet_page`; "
        "`collector.store.shipping.release`.\n\n"
        "| `collector/` | `replenish/` (`daily.py`; `job.py`: the run) |\n"
    )
    found = problems_in_text("docs/__probe__.md", sample)
    for stale in (
        "job.py` is no file",
        "claims.py",
        "cmd_load_customers",
        "`_request`",
        "`device_page`",
        "`fleet_page`",
        "shipping.release",
    ):
        assert any(stale in p for p in found), (stale, found)
    assert any(p.startswith("docs/__probe__.md:6: `job.py`") for p in found), found
    assert not any("daily.py" in p for p in found), found
