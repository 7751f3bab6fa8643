"""README.md, the pages under docs/ and the folder READMEs (training/, serving/, ...) stay true to the repository
(issue 25, "the README is a door").

Checked without a network or a server, in a second or two:
- every relative link and image resolves to a file, and every ``#anchor`` to a heading of its page;
- every repository path and ``gandeploy.module.name`` the prose names in backticks exists;
- every command a ``bash`` / ``sh`` / ``console`` block (or a block with no language) shows parses: ``gandeploy ...`` (also as
  ``python -m gandeploy.cli`` or under ``torchrun``) against the real click CLI — its subcommand, options, option
  values and arguments, without running it — ``make X`` against the Makefile's targets, ``pip install .[extra]``
  against pyproject.toml's extras and ``pytest tests/...`` against the test files;
- every ``--flag`` an inline ``gandeploy SUBCOMMAND ...`` (prose, or a row of a table whose first cell names the
  command) gives belongs to that subcommand.
Each test lists every offender with its page and line, not only the first.
"""

from __future__ import annotations

import ast
import functools
import re
import shlex
import tomllib
from collections.abc import Iterator
from pathlib import Path

import click
import pytest

REPO = Path(__file__).resolve().parents[1]
# The README, the docs pages, and the folder READMEs they link to (training notes, deployment).
FOLDER_READMES = ("training", "serving", "export", "model_repository")
PAGES = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md")),
         *(REPO / d / "README.md" for d in FOLDER_READMES if (REPO / d / "README.md").is_file())]

FENCE = re.compile(r"^(```+|~~~+)[ \t]*([\w+-]*)[^\n]*\n(.*?)^\1[ \t]*$", re.DOTALL | re.MULTILINE)
SHELL_LANGS = {"bash", "sh", "shell", "console", "zsh"}
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HTML_SRC = re.compile(r"<(?:img|a)\b[^>]*?\b(?:src|href)=\"([^\"]+)\"", re.IGNORECASE)
SPAN = re.compile(r"(`+)(.+?)\1", re.DOTALL)
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$", re.MULTILINE)
FLAG = re.compile(r"(?<![\w-])--[a-z0-9][a-z0-9-]*")
# Paths the prose names that the repository holds (generated folders such as training/runs, serving/logs and
# reports/ are not checked).
REPO_PATH = re.compile(r"^(?:(?:gandeploy|tests|docs|training/recipes|\.ci)/|serving/(?!logs/))[\w./-]*$"
                       r"|^(?:Makefile|pyproject\.toml)$")
PLACEHOLDER = re.compile(r"[<>{}*\[\]]|\.\.\.|(?:^|/)[^/]*[A-Z]{2,}[^/]*?(?:\.\w+)?$")
DOTTED = re.compile(r"^gandeploy(?:\.[A-Za-z_]\w*)+$(?<!\.json)(?<!\.toml)(?<!\.md)(?<!\.py)")


# ---------------------------------------------------------------------------------------------- page structure


def rel(page: Path) -> str:
    return page.relative_to(REPO).as_posix() if page.is_relative_to(REPO) else page.name


def line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def blank_code(text: str) -> str:
    """The page with fenced blocks and inline code spans blanked (same length, newlines kept), for link search."""
    out = FENCE.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), text)
    return SPAN.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), out)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: markup dropped, lower case, punctuation removed, spaces to hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # links keep their text
    text = re.sub(r"<[^>]+>", "", text).strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    seen: dict[str, int] = {}
    found = set()
    text = FENCE.sub("", page.read_text(encoding="utf-8"))
    for m in HEADING.finditer(text):
        base = slug(m.group(2))
        n = seen.get(base, 0)
        seen[base] = n + 1
        found.add(base if n == 0 else f"{base}-{n}")
    found.update(re.findall(r"<a\s+(?:name|id)=\"([^\"]+)\"", text))
    return found


OUR_PROGRAMS = re.compile(r"^\s*(?:[A-Za-z_]\w*=\S*\s+)*(?:gandeploy|make|pip3?|pytest|python3?|torchrun)\s")


def shell_blocks(page: Path) -> Iterator[tuple[int, str, str]]:
    """(first line number, language, body) of every shell code block of a page. A block with no language keeps
    only its lines that start one of our commands (with their backslash continuations): the rest may be a file
    listing or output."""
    text = page.read_text(encoding="utf-8")
    for m in FENCE.finditer(text):
        lang = m.group(2).lower()
        if lang in SHELL_LANGS:
            yield line_of(text, m.start(3)), lang, m.group(3)
        elif not lang:
            kept, continued = [], False
            for line in m.group(3).split("\n"):
                take = continued or bool(OUR_PROGRAMS.match(line))
                kept.append(line if take else "")
                continued = take and line.rstrip().endswith("\\")
            yield line_of(text, m.start(3)), "sh", "\n".join(kept)


def logical_lines(body: str, lang: str) -> Iterator[tuple[int, str]]:
    """(line offset, command line) of a shell block: backslash continuations joined, newlines inside quotes kept
    inside their line, console blocks reduced to their ``$`` prompt lines."""
    if lang == "console":
        body = "\n".join(line[2:] if line.startswith("$ ") else "" for line in body.split("\n"))
    start, current, quote, i = 0, [], "", 0
    lines = body.split("\n")
    text = "\n".join(lines)
    while i < len(text):
        c = text[i]
        if quote:
            if c == quote:
                quote = ""
            elif c == "\\" and quote == '"':
                current.append(c)
                i += 1
                c = text[i] if i < len(text) else ""
        elif c in "'\"":
            quote = c
        elif c == "#" and (not current or current[-1].isspace()):
            while i < len(text) and text[i] != "\n":  # a comment ends at the line's end
                i += 1
            continue
        elif c == "\\" and text[i + 1:i + 2] == "\n":
            current.append(" ")
            i += 2
            continue
        elif c == "\n":
            yield start, "".join(current)
            current, start = [], line_of(text, i + 1) - 1
            i += 1
            continue
        current.append(c)
        i += 1
    if current:
        yield start, "".join(current)


def segments(line: str) -> Iterator[list[str]]:
    """The simple commands of a shell line (split at ``&&``, ``;``, ``|``, ``&`` and redirections)."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    words: list[str] = []
    for token in lexer:
        if token and set(token) <= set("();<>|&"):
            if words:
                yield words
            words = []
        else:
            words.append(token)
    if words:
        yield words


# ---------------------------------------------------------------------------------------------- command checks


def makefile_targets() -> set[str]:
    text = (REPO / "Makefile").read_text(encoding="utf-8")
    targets = set()
    for m in re.finditer(r"^([A-Za-z0-9_.$()/ -]+?)\s*::?(?!=)", text, re.MULTILINE):
        targets.update(t for t in m.group(1).split() if "$" not in t)
    return targets


def extras() -> set[str]:
    with open(REPO / "pyproject.toml", "rb") as f:
        return set(tomllib.load(f)["project"].get("optional-dependencies", {}))


def check_gandeploy(args: list[str]) -> str | None:
    """None when ``gandeploy ARGS`` parses against the click CLI (nothing runs), else click's complaint."""
    from gandeploy.cli import main

    group_ctx = click.Context(main, info_name="gandeploy")
    while args and re.fullmatch(r"-v+|--verbose", args[0]):
        args = args[1:]
    if not args or args[0] in ("--help", "-h", "--version"):
        return None
    command = main.get_command(group_ctx, args[0])
    if command is None:
        return f"no such command '{args[0]}' (commands: {', '.join(main.list_commands(group_ctx))})"
    try:
        command.make_context(args[0], list(args[1:]), parent=group_ctx)
    except click.exceptions.Exit:  # --help
        return None
    except click.ClickException as exc:
        return exc.format_message()
    return None


def check_words(words: list[str]) -> str | None:
    """The complaint about one simple command, or None (commands other than ours are not checked)."""
    while words and re.match(r"^[A-Za-z_]\w*=", words[0]):  # VAR=value prefixes
        words = words[1:]
    while words and words[0] in ("sudo", "time", "nohup", "exec", "env"):
        words = words[1:]
    if not words:
        return None
    program = Path(words[0]).name
    if "-m" in words and words[words.index("-m") + 1:words.index("-m") + 2] in (["gandeploy.cli"], ["gandeploy"]):
        return check_gandeploy(words[words.index("-m") + 2:])
    if program == "gandeploy":
        return check_gandeploy(words[1:])
    if program == "make":
        unknown = [w for w in words[1:] if not w.startswith("-") and "=" not in w and w not in makefile_targets()]
        return f"no Makefile target {', '.join(unknown)}" if unknown else None
    if program in ("pip", "pip3") or words[1:3] == ["-m", "pip"]:
        wanted = {e.strip() for w in words for group in re.findall(r"\[([^\]]*)\]", w) for e in group.split(",")}
        unknown = sorted(wanted - extras())
        return f"no extra {', '.join(unknown)} in pyproject.toml (extras: {', '.join(sorted(extras()))})" \
            if unknown else None
    if program == "pytest" or words[1:3] == ["-m", "pytest"]:
        missing = [w for w in words if w.startswith("tests/") and not (REPO / w.split("::")[0]).exists()]
        return f"no test file {', '.join(missing)}" if missing else None
    return None


def block_offenders(page: Path) -> list[str]:
    found = []
    for first, lang, body in shell_blocks(page):
        for offset, line in logical_lines(body, lang):
            try:
                commands = list(segments(line))
            except ValueError as exc:  # unbalanced quotes
                found.append(f"{rel(page)}:{first + offset}: cannot split '{line.strip()}': {exc}")
                continue
            for words in commands:
                problem = check_words(words)
                if problem:
                    found.append(f"{rel(page)}:{first + offset}: `{' '.join(words)}`: {problem}")
    return found


def options_of(subcommand: str) -> dict[str, click.Option] | None:
    """Every spelling of SUB's options (``--amp`` and ``--no-amp`` alike) → the option; None: no such command."""
    from gandeploy.cli import main

    command = main.get_command(click.Context(main, info_name="gandeploy"), subcommand)
    if command is None:
        return None
    names: dict[str, click.Option] = {}
    for param in command.params:
        if isinstance(param, click.Option):
            names.update(dict.fromkeys([*param.opts, *param.secondary_opts], param))
    return names


# `--flag a|b|c` as the prose lists a choice option's values (a table cell escapes the bar: `a\|b`)
LISTED_CHOICES = re.compile(r"(--[a-z0-9][a-z0-9-]*)[ =]([a-z0-9][\w.-]*(?:\\?\|[a-z0-9][\w.-]*)+)")


def inline_offenders(page: Path) -> list[str]:
    """Inline ``gandeploy SUB ... --flag`` spans, and table rows whose first cell is one: each flag must be SUB's,
    and the values a ``--flag a|b`` lists must be among a choice option's choices."""
    text = FENCE.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), page.read_text(encoding="utf-8"))
    found = []

    def check(sub: str, spans: list[str], where: int, what: str) -> None:
        names = options_of(sub)
        if names is None:
            found.append(f"{rel(page)}:{where}: `{what}`: no such command '{sub}'")
            return
        for flag in (f for span in spans for f in FLAG.findall(span)):
            if flag not in names and flag != "--help":
                found.append(f"{rel(page)}:{where}: `{what}`: '{flag}' is not an option of 'gandeploy {sub}'")
        for flag, listed in (m for span in spans for m in LISTED_CHOICES.findall(span)):
            choice = getattr(names.get(flag), "type", None)
            wrong = [v for v in re.split(r"\\?\|", listed) if isinstance(choice, click.Choice)
                     and v not in choice.choices]
            if wrong:
                found.append(f"{rel(page)}:{where}: `{what}`: {flag} has no choice {', '.join(wrong)} "
                             f"(choices: {', '.join(map(str, choice.choices))})")

    for m in SPAN.finditer(text):
        span = m.group(2).strip()
        words = span.split()
        if len(words) >= 2 and words[0] == "gandeploy" and re.fullmatch(r"[a-z][\w-]*", words[1]):
            check(words[1], [span], line_of(text, m.start()), span)
        elif re.fullmatch(r"make [\w -]+|pip install .*", span):
            problem = check_words(span.split())
            if problem:
                found.append(f"{rel(page)}:{line_of(text, m.start())}: `{span}`: {problem}")
    for m in re.finditer(r"^\|\s*`gandeploy ([a-z][\w-]*)[^`]*`\s*\|(.*)$", text, re.MULTILINE):
        spans = [span for _, span in SPAN.findall(m.group(2)) if span.startswith("-")]
        check(m.group(1), spans, line_of(text, m.start()), f"table row gandeploy {m.group(1)}")
    return found


# ---------------------------------------------------------------------------------------------- names in prose


def module_file(parts: list[str]) -> Path | None:
    base = REPO.joinpath(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def defined_names(tree: ast.AST) -> set[str]:
    """Top-level names of a module or class body: defs, classes, assignments, imports, and the strings of a
    top-level tuple/list (names a module exports lazily, as gandeploy/__init__.py's API)."""
    names = set()
    for node in getattr(tree, "body", []):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(t.id for t in targets if isinstance(t, ast.Name))
            if isinstance(node.value, (ast.Tuple, ast.List)):
                names.update(e.value for e in node.value.elts if isinstance(e, ast.Constant)
                             and isinstance(e.value, str))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return names


def dotted_exists(name: str) -> bool:
    """Whether ``gandeploy.a.b.attr[.member]`` names a module, or a name a module defines (and a class member)."""
    parts = name.split(".")
    for cut in range(len(parts), 0, -1):
        path = module_file(parts[:cut])
        if path is None:
            continue
        rest = parts[cut:]
        node: ast.AST = ast.parse(path.read_text(encoding="utf-8"))
        for attr in rest[:2]:
            if attr not in defined_names(node) and attr not in ("__version__",):
                return bool(rest) and module_file(parts[:cut] + rest[:1]) is not None
            node = next((n for n in getattr(node, "body", []) if isinstance(n, ast.ClassDef) and n.name == attr),
                        ast.Module(body=[], type_ignores=[]))
            if not getattr(node, "body", None):
                return True  # a function or constant: its members are not checked
        return True
    return False


@functools.cache
def string_keys() -> frozenset[str]:
    """``gandeploy.*`` strings the package writes as keys (ONNX metadata such as ``gandeploy.model``): not names."""
    found = set()
    for path in (REPO / "gandeploy").rglob("*.py"):
        found.update(re.findall(r"[\"'](gandeploy\.[\w.]+)[\"']", path.read_text(encoding="utf-8")))
    return frozenset(found)


def name_offenders(page: Path) -> list[str]:
    text = FENCE.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), page.read_text(encoding="utf-8"))
    found = []
    for m in SPAN.finditer(text):
        span = m.group(2).strip()
        where = f"{rel(page)}:{line_of(text, m.start())}"
        if REPO_PATH.match(span) and not PLACEHOLDER.search(span):
            if not (REPO / span.rstrip("/")).exists():
                found.append(f"{where}: `{span}` does not exist")
        elif DOTTED.match(span) and span not in string_keys() and not dotted_exists(span):
            found.append(f"{where}: `{span}` is not a module or a name one defines")
    return found


def link_offenders(page: Path, root: Path = REPO) -> list[str]:
    text = page.read_text(encoding="utf-8")
    plain = blank_code(text)
    found = []
    for m in [*LINK.finditer(plain), *HTML_SRC.finditer(plain)]:
        target = m.group(1)
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE):  # https:, mailto:, ...
            continue
        where = f"{rel(page)}:{line_of(text, m.start())}: ({target})"
        path_part, _, anchor = target.partition("#")
        dest = (page.parent / path_part).resolve() if path_part else page
        if not dest.exists():
            found.append(f"{where}: no file {dest.relative_to(root) if dest.is_relative_to(root) else dest}")
        elif not dest.is_relative_to(root):
            found.append(f"{where}: points outside the repository")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            found.append(f"{where}: no heading '#{anchor}' in {rel(dest)}")
    return found


# ---------------------------------------------------------------------------------------------- the tests


def test_pages_found() -> None:
    assert REPO / "README.md" in PAGES and (REPO / "docs" / "README.md") in PAGES, PAGES
    assert REPO / "training" / "README.md" in PAGES and REPO / "serving" / "README.md" in PAGES, PAGES


def test_links_resolve() -> None:
    """Every relative link and image of README.md and docs/**/*.md names a file, and its #anchor a heading."""
    offenders = [o for page in PAGES for o in link_offenders(page)]
    assert not offenders, "broken links:\n" + "\n".join(offenders)


def test_named_paths_and_modules_exist() -> None:
    """Repository paths and gandeploy.* names the pages mention in backticks exist (a moved module shows here)."""
    offenders = [o for page in PAGES for o in name_offenders(page)]
    assert not offenders, "names that do not exist:\n" + "\n".join(offenders)


def test_command_blocks_parse() -> None:
    """Every gandeploy / make / pip / pytest command of a shell block parses against the CLI, Makefile, extras."""
    offenders = [o for page in PAGES for o in block_offenders(page)]
    assert not offenders, "commands that would fail:\n" + "\n".join(offenders)


def test_inline_commands_use_real_flags() -> None:
    """Inline `gandeploy SUB ... --flag` and the CLI tables' flags belong to SUB; `make X` names a target."""
    offenders = [o for page in PAGES for o in inline_offenders(page)]
    assert not offenders, "flags or targets that do not exist:\n" + "\n".join(offenders)


def test_readme_keeps_the_two_commands() -> None:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    assert "make demo" in text and "make test" in text


@pytest.mark.parametrize("line, complaint", [
    ("gandeploy export RUN --fp16 --no-such-flag", "No such option"),
    ("gandeploy exprot RUN", "no such command"),
    ("gandeploy train cgan digits --loss bogus", "bogus"),
    ("OMP_NUM_THREADS=1 python -m gandeploy.cli sample NAME --n", "requires an argument"),
    ("torchrun --nproc_per_node 2 -m gandeploy.cli train dcgan nodata", "nodata"),
    ("make demo && make no-such-target", "no Makefile target no-such-target"),
    ("pip install -e '.[serve,no-such-extra]'", "no extra no-such-extra"),
    ("pytest tests/no_such_test.py -k x", "no test file"),
])
def test_checker_catches_a_bad_command(line: str, complaint: str) -> None:
    """The command check is not vacuous: planted mistakes are reported, each with click's or our reason."""
    problems = [p for words in segments(line) if (p := check_words(words))]
    assert problems and complaint in problems[-1], problems


def test_checker_reports_every_offender_of_a_page(tmp_path: Path) -> None:
    """A planted page: one bad flag in a block (after a continuation and a multi-line quote), one inline, two bad
    links; good commands around them pass."""
    page = tmp_path / "page.md"
    page.write_text("# Title\n\n```bash\ngandeploy export training/runs/x --fp16   # fine\n"
                    "curl -s http://x -d '{\"a\":\n 1}'\n"
                    "gandeploy repo export/x --flavor ngc \\\n   --force\nmake test\n```\n\n"
                    "Run `gandeploy serve --http-port 0 --bogus` or `gandeploy repo X --flavour local|nvidia`, see [here](#title), [gone](#nope), "
                    "[file](missing.md).\n")
    blocks = block_offenders(page)
    assert len(blocks) == 1 and "--flavor" in blocks[0] and "page.md:7:" in blocks[0], blocks
    inline = inline_offenders(page)
    assert len(inline) == 2 and "--bogus" in inline[0] and "no choice nvidia" in inline[1], inline
    links = link_offenders(page, root=tmp_path)
    assert len(links) == 2 and "#nope" in links[0] and "missing.md" in links[1], links


def test_dotted_names() -> None:
    assert "gandeploy.model" in string_keys()  # an ONNX metadata key, not a module
    assert dotted_exists("gandeploy.models.io.latent_from_seed")
    assert dotted_exists("gandeploy.contract")
    assert dotted_exists("gandeploy.load")
    assert not dotted_exists("gandeploy.models.io.no_such_function")
    assert not dotted_exists("gandeploy.no_such_module.x")
