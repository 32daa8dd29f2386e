"""The README and the MkDocs site (``mkdocs.yml``, ``docs/``): they build, their links resolve, and
the commands they show exist.

* ``mkdocs build --strict`` builds the site: every page in the nav exists, every link between pages
  and every ``page.md#anchor`` resolves (``validation`` in ``mkdocs.yml`` makes those warnings, and
  strict mode fails on a warning).
* Every relative link in ``README.md`` names a file of the repository (and, with ``#anchor``, a
  heading of that page).
* The README is a current front door: its diagram names every DAG in ``dags/`` and is the one of
  ``docs/architecture.md``; it keeps the line CI's readers look for, "The tests: `make test`".
* "Every command in it tried", without starting the stack: every ``make`` target shown exists in
  the Makefile; every ``airflow …`` command line parses with Airflow's own CLI parser (its
  subcommands and flags exist), and ``airflow dags backfill``, which the pages say Airflow 3
  removed, does not; every ``/krx/…`` path matches a route of the read API and every
  ``/api/v2/…`` or ``/auth/…`` path one of Airflow's; the ``celery --app`` shown imports; every
  ``python -m krxflow.…`` module exists and takes the flags shown; every bench flag shown is one the
  bench declares; every repository path shown exists; every compose service and profile shown is
  one of ``docker-compose.yaml``.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"

FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.S | re.M)
INLINE_CODE = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")


def pages() -> list[Path]:
    """README.md and every page of the site."""
    return [README, *sorted(DOCS.rglob("*.md"))]


def code_snippets(text: str, fenced: bool | None = None) -> list[str]:
    """The commands shown in a page: every line of its fenced blocks (backslash continuations
    joined) and every inline code span (``fenced``: only the one or the other)."""
    snippets = []
    if fenced is not False:
        for block in FENCE.findall(text):
            snippets += block.replace("\\\n", " ").splitlines()
    if fenced is not True:
        snippets += INLINE_CODE.findall(FENCE.sub("", text))
    return snippets


def all_snippets(fenced: bool | None = None) -> list[tuple[str, str]]:
    return [(page.relative_to(ROOT).as_posix(), snippet) for page in pages()
            for snippet in code_snippets(page.read_text(encoding="utf-8"), fenced)]


def commands(snippet: str, program: str) -> list[list[str]]:
    """The invocations of ``program`` in one shell line: its words up to a comment, a pipe, a
    redirection or the next command (``&&``, ``;``)."""
    found = []
    text = snippet.split(" # ")[0]
    for part in re.split(r"&&|\|\||;|\||\$\(", text):
        try:
            words = shlex.split(part, posix=True)
        except ValueError:  # an unbalanced quote in prose: not a command
            continue
        while words and re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", words[0]):
            words.pop(0)
        if words and words[0] == program:
            cut = next((i for i, w in enumerate(words) if w.startswith((">", "<")) and w not in ("<dump>",)), None)
            found.append(words[:cut])
    return found


def slug(heading: str) -> str:
    """The anchor MkDocs (Python-Markdown's toc) gives a heading."""
    from markdown.extensions.toc import slugify

    return slugify(re.sub(r"[`*]", "", heading), "-")


def headings(page: Path) -> set[str]:
    text = FENCE.sub("", page.read_text(encoding="utf-8"))
    return {slug(m) for m in re.findall(r"^#{1,6}\s+(.+?)\s*#*\s*$", text, re.M)}


def dag_ids() -> set[str]:
    return {m for path in (ROOT / "dags").glob("*.py")
            for m in re.findall(r'dag_id="([a-z0-9_]+)"', path.read_text(encoding="utf-8"))}


def readme_diagram(text: str) -> str:
    return next(block for block in FENCE.findall(text) if "Airflow 3.3" in block and "┌" in block)


# --- the site builds -----------------------------------------------------------------------------

@pytest.mark.integration
@pytest.mark.fresh_machine
def test_mkdocs_builds_strict(tmp_path):
    site = tmp_path / "site"
    out = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(ROOT / "mkdocs.yml"),
                          "--site-dir", str(site)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    nav = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))["nav"]

    def files(entries):
        for entry in entries:
            for value in entry.values():
                yield from (files(value) if isinstance(value, list) else [value])

    built = list(files(nav))
    assert len(built) >= 20
    for page in built:
        assert (DOCS / page).is_file(), page
        html = site / ("index.html" if page == "index.md" else page.removesuffix(".md") + "/index.html")
        assert html.is_file(), f"{page} was not built"
    # every page of docs/ is in the nav (strict would fail on an omitted one too)
    assert {p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md")} == set(built)


# --- the README -----------------------------------------------------------------------------------

def test_readme_links_resolve():
    text = README.read_text(encoding="utf-8")
    links = [t for t in LINK.findall(text) if not re.match(r"[a-z]+:", t)]
    assert len(links) >= 15, links
    for target in links:
        path, _, anchor = target.partition("#")
        file = (ROOT / path) if path else README
        assert file.is_file(), f"README links to {target}: no such file"
        if anchor:
            assert anchor in headings(file), f"README links to {target}: no such heading"


def test_readme_is_a_current_front_door():
    text = README.read_text(encoding="utf-8")
    assert "The tests: `make test`" in text
    assert "```bash\nmake run " in text and "\nmake stop " in text
    assert "not a real-time feed" not in text
    diagram = readme_diagram(text)
    missing = {d for d in dag_ids() if d not in diagram}
    assert len(dag_ids()) >= 12 and not missing, f"the README diagram lacks {sorted(missing)}"
    assert diagram == readme_diagram((DOCS / "architecture.md").read_text(encoding="utf-8")), \
        "README's diagram and docs/architecture.md's differ"
    assert len(text.splitlines()) < 150, "the README is the front door; the reference belongs in docs/"


def test_every_dag_is_documented_in_the_dag_table():
    table = (DOCS / "dags.md").read_text(encoding="utf-8")
    assert {d for d in dag_ids() if f"| `{d}` |" not in table} == set()


# --- the commands ---------------------------------------------------------------------------------

def makefile_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    return set(re.findall(r"^([a-z][a-z0-9-]*)\s*:(?!=)", text, re.M))


def test_every_make_target_shown_exists():
    targets = makefile_targets()
    shown = {}
    for page, snippet in all_snippets():
        for words in commands(snippet, "make"):
            for word in words[1:]:
                if "=" in word or word.startswith("-"):
                    continue
                shown.setdefault(word, page)
    assert {"run", "stop", "status", "test", "test-fast", "test-fresh-machine", "backfill", "migrate"} <= set(shown)
    unknown = {t: page for t, page in shown.items() if t not in targets}
    assert not unknown, f"make targets shown but not in the Makefile: {unknown}"


def test_every_bench_flag_shown_is_declared():
    benches = {p.name for p in (ROOT / "bench").glob("*.py")}
    checked = 0
    for page, snippet in all_snippets():
        for part in re.split(r"(?=(?:bench/)?\b[a-z_]+\.py\b)", snippet):
            name = re.match(r"(?:bench/)?([a-z_]+\.py)", part)
            if not name or name.group(1) not in benches:
                continue
            source = (ROOT / "bench" / name.group(1)).read_text(encoding="utf-8")
            for flag in re.findall(r"(?<![\w-])(--[a-z][a-z-]*)", part):
                assert f'"{flag}"' in source, f"{page}: bench/{name.group(1)} has no {flag}"
                checked += 1
    assert checked >= 3


def test_every_repository_path_shown_exists():
    """Paths shown as code (`src/krxflow/`, `include/sql/migrations/`, `grafana/provisioning/…`) exist."""
    shown = {}
    for page, snippet in all_snippets():
        for word in snippet.split():
            word = word.strip("(),;:")
            if re.fullmatch(r"(dags|src|plugins|include|grafana|scripts|tests|bench|docs)/[A-Za-z0-9_./-]*", word) \
                    and "NNNN" not in word:
                shown.setdefault(word, page)
    assert len(shown) >= 20
    missing = {path: page for path, page in shown.items() if not (ROOT / path).exists()}
    assert not missing, missing


def test_every_compose_service_and_profile_shown_exists():
    compose = yaml.safe_load((ROOT / "docker-compose.yaml").read_text(encoding="utf-8"))
    services = set(compose["services"])
    profiles = {p for s in compose["services"].values() for p in s.get("profiles", [])}
    checked = 0
    for page, snippet in all_snippets():
        for words in commands(snippet, "docker"):
            for i, word in enumerate(words):
                if word == "--profile":
                    assert words[i + 1] in profiles, f"{page}: no compose profile {words[i + 1]}"
                    checked += 1
                elif word == "--scale":
                    assert words[i + 1].split("=")[0] in services, f"{page}: no compose service in {words[i + 1]}"
                    checked += 1
                elif word == "exec":
                    assert words[i + 1] in services, f"{page}: no compose service {words[i + 1]}"
                    checked += 1
    assert checked >= 3


#: Run in a subprocess (Airflow's CLI parser and API routes are heavy imports): reads the commands
#: and paths as JSON on stdin, answers what fails as JSON on stdout.
CHECK_SCRIPT = r"""
import json, re, sys, argparse, contextlib, io
todo = json.load(sys.stdin)
problems = []

from airflow.cli.cli_parser import get_parser
parser = get_parser()

def subparser(words):
    current = parser
    for i, word in enumerate(words):
        actions = [a for a in current._actions if isinstance(a, argparse._SubParsersAction)]
        if not actions or word.startswith("-"):
            return current, words[i:]
        if word not in actions[0].choices:
            return None, words[i:]
        current = actions[0].choices[word]
    return current, []

for words, complete, must_fail in todo["airflow"]:
    sub, rest = subparser(words[1:])
    if must_fail:
        if sub is not None and not rest:
            problems.append(f"`{' '.join(words)}` exists, but the docs say Airflow 3 removed it")
        continue
    if sub is None:
        problems.append(f"`{' '.join(words)}`: no such airflow subcommand ({rest[0]})")
        continue
    options = {o for a in sub._actions for o in a.option_strings}
    for word in rest:
        flag = word.split("=")[0]
        if flag.startswith("--") and flag not in options:
            problems.append(f"`{' '.join(words)}`: airflow {sub.prog.split(' ', 1)[-1]} has no {flag}")
    if complete:
        with contextlib.redirect_stderr(io.StringIO()) as err:
            try:
                parser.parse_args(words[1:])
            except SystemExit:
                problems.append(f"`{' '.join(words)}` does not parse: {err.getvalue().strip()[-300:]}")

def matcher(template):
    return re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$")

from airflow.api_fastapi.core_api.routes.public import public_router
from airflow.api_fastapi.auth.managers.simple.routes.login import login_router
airflow_routes = [matcher(r.path) for r in public_router.routes if hasattr(r, "path")]
airflow_routes += [matcher("/auth" + r.path) for r in login_router.routes]
from krxflow.api.app import app
from krxflow.plugin import KrxflowPlugin
prefix = KrxflowPlugin.fastapi_apps[0]["url_prefix"]
krx_routes = [matcher(prefix + r.path) for r in app.routes if hasattr(r, "path")]

for path in todo["paths"]:
    routes = krx_routes if path.startswith(prefix + "/") else airflow_routes
    if not any(m.match(path) for m in routes):
        problems.append(f"{path}: no such route")
import importlib
for target in todo["celery_apps"]:
    module, _, attr = target.rpartition(".")
    try:
        getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        problems.append(f"celery --app {target}: {exc}")
print(json.dumps(problems))
"""

#: Named in the pages as what Airflow 3 no longer has.
REMOVED_AIRFLOW_COMMANDS = {("dags", "backfill")}
PATH = re.compile(r"(/(?:krx|api/v2|auth)/[A-Za-z0-9_{}<>./-]*[A-Za-z0-9_}>])")


def shown_paths() -> set[str]:
    paths = set()
    for page in pages():
        for path in PATH.findall(page.read_text(encoding="utf-8")):
            paths.add(re.sub(r"<[^>]+>", "x", path).rstrip("."))
    return paths


@pytest.mark.integration
@pytest.mark.fresh_machine
def test_every_airflow_command_and_api_path_shown_exists():
    airflow = {}
    for fenced in (False, True):  # a fenced line is a whole command; an inline span may name one
        for page, snippet in all_snippets(fenced):
            for words in commands(snippet, "airflow"):
                if len(words) < 2:
                    continue  # "the `airflow` CLI"
                removed = tuple(words[1:3]) in REMOVED_AIRFLOW_COMMANDS
                complete = fenced and "..." not in words and not any("<" in w or "…" in w for w in words)
                airflow[tuple(words)] = (list(words), complete, removed)
    shown = {tuple(w[1:3]) for w, _, _ in airflow.values()}
    assert {("backfill", "create"), ("dags", "unpause"), ("celery", "worker"),
            ("dags", "backfill")} <= shown, shown
    assert any(complete and not removed for _, complete, removed in airflow.values()), "no full command line"
    paths = shown_paths()
    assert {"/krx/stocks", "/api/v2/backfills", "/api/v2/monitor/health", "/auth/token"} <= paths, paths
    celery_apps = {words[words.index("--app") + 1] for _, snippet in all_snippets()
                   for words in commands(snippet, "celery") if "--app" in words}
    assert celery_apps
    out = subprocess.run([sys.executable, "-c", CHECK_SCRIPT], input=json.dumps(
        {"airflow": list(airflow.values()), "paths": sorted(paths), "celery_apps": sorted(celery_apps)}),
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    problems = json.loads(out.stdout.strip().splitlines()[-1])
    assert problems == []


@pytest.mark.integration
@pytest.mark.fresh_machine
def test_every_krxflow_module_command_shown_exists():
    shown = {}
    for page, snippet in all_snippets():
        for words in commands(snippet, "python"):
            if len(words) >= 3 and words[1] == "-m" and words[2].startswith("krxflow."):
                shown.setdefault(words[2], set()).update(w.split("=")[0] for w in words[3:] if w.startswith("--"))
    assert {"krxflow.db", "krxflow.bootstrap", "krxflow.krx.cold_start"} <= set(shown), shown
    for module, flags in sorted(shown.items()):
        out = subprocess.run([sys.executable, "-m", module, "--help"], cwd=ROOT, capture_output=True, text=True,
                             timeout=120)
        assert out.returncode == 0, f"python -m {module} --help: {out.stderr[-2000:]}"
        for flag in flags:
            assert flag in out.stdout, f"python -m {module} has no {flag}"
