"""The generated parts of the documentation, as plain functions.

The settings reference (``docs/configuration.md``) and the hook reference (``docs/hooks.md``)
are generated from the code: the settings from every declaration of RedBeat's own
distributions (``redbeat_register_settings``), the hooks from ``redbeat_core.hookspecs``. The
generated Markdown is committed between two markers, so it reads in a checkout as on the site:

    <!-- redbeat:settings:begin -->
    ...
    <!-- redbeat:settings:end -->

``python docs/_generate.py`` rewrites it (``--check`` only says whether it is stale); a test
fails when it differs from what the code generates, and ``docs/_hooks.py`` (the MkDocs hook)
renders the same blocks again at build time, so the site cannot show stale text either. Nothing
here imports MkDocs.
"""

from __future__ import annotations

import inspect
import re
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

#: The generated blocks: name -> the page holding it (the generators are at the end).
BLOCKS = {"settings": "configuration.md", "hooks": "hooks.md", "hook-types": "hooks.md"}


def block(name: str) -> re.Pattern[str]:
    """The committed block ``name``: its two markers and what lies between them."""
    return re.compile(
        rf"(<!-- redbeat:{name}:begin -->\n)(.*?)(<!-- redbeat:{name}:end -->)", re.DOTALL
    )


# ------------------------------------------------------------------------------ shared helpers

_ROLE = re.compile(r":(?P<role>[a-z]+):`(?P<tilde>~?)(?P<target>[^`]+)`")
_DOUBLE_BACKTICKS = re.compile(r"``(.+?)``")
_CODE_WORDS = re.compile(
    r"`[^`]*`"  # already code: left alone
    r"|(?<![A-Za-z])'[^'\s][^']*'(?![A-Za-z])"  # a quoted literal, not an apostrophe
    r"|(?<![\w.])-1\b"  # celery-redbeat's "forever"
    r"|\b[a-z][a-z0-9+.-]*://[^\s,;)]*"  # a URL
    r"|\b[A-Za-z][A-Za-z0-9]*(?:_[A-Za-z0-9]+)+(?:\['[a-z_]+'\])?"  # an identifier
    r"|\b(?:None|True|False)\b"
)


def rst_to_markdown(text: str) -> str:
    """Sphinx roles and double backticks (as in the hookspec docstrings) as Markdown code."""

    def role(match: re.Match[str]) -> str:
        target = match["target"]
        if match["tilde"]:
            target = target.rsplit(".", 1)[-1]
        if match["role"] in {"meth", "func"}:
            target += "()"
        return f"`{target}`"

    return _DOUBLE_BACKTICKS.sub(r"`\1`", _ROLE.sub(role, text))


def code_words(text: str) -> str:
    """Prose with identifiers, URLs and quoted literals set as code (``SETTINGS`` is plain
    text, written for the README and error messages)."""

    def wrap(match: re.Match[str]) -> str:
        word = match[0]
        if word.startswith("`"):
            return word
        return f"`{word}`"

    return _CODE_WORDS.sub(wrap, text)


def _cell(text: str) -> str:
    """Text for one Markdown table cell: no newlines, no bare pipes outside code."""
    text = " ".join(text.split())
    parts = re.split(r"(`[^`]*`)", text)
    return "".join(p if p.startswith("`") else p.replace("|", "\\|") for p in parts)


# ------------------------------------------------------------------------------ settings


def setting_anchor(name: str) -> str:
    """The HTML id of a setting's row: ``redbeat_lock_timeout``, ``retry_period``."""
    match = re.search(r"\['([a-z_]+)'\]$", name)
    return match[1] if match else name


def setting_label(name: str) -> str:
    """A setting's name as the table shows it, with its anchor: a key inside another setting
    (``x['key']``) is shown as the key, then where it lives."""
    anchor = f"{{#{setting_anchor(name)}}}"
    match = re.fullmatch(r"(?P<outer>\w+)\['(?P<key>\w+)'\]", name)
    if match:
        return f"`{match['key']}`{anchor} (in `{match['outer']}`)"
    return f"`{name}`{anchor}"


#: The distributions whose settings the reference shows, in this order, with a title each.
SETTING_OWNERS = {
    "redbeat-core": "RedBeat",
    "redbeat-redis": "Redis, Sentinel and Cluster backends (redbeat-redis)",
    "redbeat-prometheus": "Prometheus metrics (redbeat-prometheus)",
}


def declared_settings() -> list[Any]:
    """Every setting RedBeat's own distributions declare: the core, the backends the
    ``redbeat`` distribution brings, and the Prometheus plugin. Other installed plugins are
    left out, so the reference does not depend on what happens to be installed."""
    from redbeat_core.plugins import PluginManager

    manager = PluginManager.load(autoload=False)
    manager.register_import_path("redbeat_prometheus.plugin")
    registry = manager.settings_registry()
    return sorted(
        (s for s in registry if s.owner in SETTING_OWNERS),
        key=lambda s: list(SETTING_OWNERS).index(s.owner),
    )


def setting_rows(settings: Iterable[Any]) -> list[Any]:
    """The reference's rows: each setting, then the documented keys of a dict setting
    (``redbeat_redis_options['retry_period']``)."""
    rows: list[Any] = []
    for setting in settings:
        rows.append(setting)
        rows.extend(
            _Row(f"{setting.name}['{key.name}']", key.type, key.shown_default, key.doc)
            for key in setting.keys
        )
    return rows


@dataclass(frozen=True)
class _Row:
    name: str
    type: str
    shown_default: str
    doc: str


def _shown_type(setting: Any) -> str:
    return setting.type or "str"


def _meaning(setting: Any) -> str:
    if getattr(setting, "alias_of", None):
        return f"Another name for {setting.alias_of}: {setting.doc}"
    return str(setting.doc)


def settings_markdown(settings: Iterable[Any] | None = None) -> str:
    """The settings reference: a table per owner, a row per setting (and per documented key
    of a dict setting), anchored by name."""
    found = declared_settings() if settings is None else list(settings)
    out: list[str] = []
    owners = [o for o in SETTING_OWNERS if any(s.owner == o for s in found)]
    owners += sorted({s.owner for s in found} - set(owners))
    for owner in owners:
        title = SETTING_OWNERS.get(owner, owner)
        out += [f"### {title}", ""]
        out += ["| Setting | Type | Default | Meaning |", "| --- | --- | --- | --- |"]
        for row in setting_rows(s for s in found if s.owner == owner):
            cells = (
                setting_label(row.name),
                _cell(f"`{_shown_type(row)}`"),
                _cell(_default(row.shown_default)),
                _cell(code_words(_meaning(row))),
            )
            out.append("| " + " | ".join(cells) + " |")
        out.append("")
    return "\n".join(out)


def _default(text: str) -> str:
    if re.fullmatch(r"-?[0-9.]+|'[^']*'|\[\]|None", text):
        return f"`{text}`"
    return code_words(text)


# ------------------------------------------------------------------------------ hooks


@dataclass(frozen=True)
class HookDoc:
    """One hookspec, as the reference shows it."""

    name: str
    signature: str
    description: tuple[str, ...]
    params: tuple[tuple[str, str], ...]
    firstresult: bool
    historic: bool
    line: int


@dataclass(frozen=True)
class HookGroup:
    """The hooks under one banner comment of the hookspec module."""

    title: str
    description: str
    hooks: tuple[HookDoc, ...]


_BANNER_RULE = re.compile(r"^# -{10,}$")
_BANNER_TEXT = re.compile(r"^# (?P<title>[^:]+?)(?::\s*(?P<description>.*))?$")
_PARAM = re.compile(r"^:param (?P<name>\w+):\s*(?P<text>.*)$")
#: Docstring paragraphs that restate a spec option; shown from the spec itself instead.
_FIRSTRESULT_SENTENCE = "Stops at first non-None result."
_HISTORIC_PREFIX = "Historic:"


def _hookspecs_module() -> ModuleType:
    from redbeat_core import hookspecs

    return hookspecs


def _spec_options(func: Callable[..., Any], project: str) -> dict[str, Any] | None:
    options = getattr(func, f"{project}_spec", None)
    return options if isinstance(options, dict) else None


def _annotation(annotation: Any) -> str:
    # The module uses ``from __future__ import annotations``: annotations are strings.
    return annotation if isinstance(annotation, str) else inspect.formatannotation(annotation)


def hook_signature(func: Callable[..., Any]) -> str:
    """``def name(arg: Type, ...) -> Return``, annotations as written in the source."""
    sig = inspect.signature(func)
    params = ", ".join(
        p.name if p.annotation is p.empty else f"{p.name}: {_annotation(p.annotation)}"
        for p in sig.parameters.values()
    )
    result = (
        "" if sig.return_annotation is sig.empty else f" -> {_annotation(sig.return_annotation)}"
    )
    return f"def {func.__name__}({params}){result}"


def _paragraphs(doc: str) -> list[list[str]]:
    paragraphs: list[list[str]] = [[]]
    for line in doc.splitlines():
        if line.strip():
            paragraphs[-1].append(line)
        elif paragraphs[-1]:
            paragraphs.append([])
    return [p for p in paragraphs if p]


def _params(lines: Sequence[str]) -> list[tuple[str, str]]:
    params: list[tuple[str, str]] = []
    for line in lines:
        match = _PARAM.match(line.strip())
        if match:
            params.append((match["name"], match["text"]))
        elif params:  # a continuation line
            name, text = params[-1]
            params[-1] = (name, f"{text} {line.strip()}")
    return params


def hook_doc(func: Callable[..., Any], options: dict[str, Any]) -> HookDoc:
    """What the reference shows for one hookspec function."""
    firstresult = bool(options.get("firstresult"))
    historic = bool(options.get("historic"))
    description: list[str] = []
    params: list[tuple[str, str]] = []
    for paragraph in _paragraphs(inspect.getdoc(func) or ""):
        text = " ".join(line.strip() for line in paragraph)
        restates_option = (firstresult and text == _FIRSTRESULT_SENTENCE) or (
            historic and text.startswith(_HISTORIC_PREFIX)
        )
        if paragraph[0].lstrip().startswith(":param "):
            params.extend(_params(paragraph))
        elif not restates_option:
            description.append(text)
    return HookDoc(
        name=func.__name__,
        signature=hook_signature(func),
        description=tuple(description),
        params=tuple(params),
        firstresult=firstresult,
        historic=historic,
        line=func.__code__.co_firstlineno,
    )


def _banners(module: ModuleType) -> list[tuple[int, str, str]]:
    """``(line, title, description)`` of each banner comment::

    # -----------------
    # Title: description
    # -----------------
    """
    lines = inspect.getsource(module).splitlines()
    found = []
    for i in range(len(lines) - 2):
        if _BANNER_RULE.match(lines[i]) and _BANNER_RULE.match(lines[i + 2]):
            match = _BANNER_TEXT.match(lines[i + 1])
            if match:
                description = match["description"] or ""
                found.append((i + 2, match["title"], description[:1].upper() + description[1:]))
    return found


def hook_groups(module: ModuleType | None = None) -> list[HookGroup]:
    """Every hookspec of the module (functions carrying pluggy's ``<project>_spec``
    attribute), in source order, grouped under the banner comment above it."""
    module = module or _hookspecs_module()
    project = getattr(module, "PROJECT_NAME", "redbeat")
    hooks = sorted(
        (
            hook_doc(obj, options)
            for obj in vars(module).values()
            if inspect.isfunction(obj) and (options := _spec_options(obj, project)) is not None
        ),
        key=lambda hook: hook.line,
    )
    banners = _banners(module)
    groups: list[HookGroup] = []
    for index, (line, title, description) in enumerate(banners):
        end = banners[index + 1][0] if index + 1 < len(banners) else float("inf")
        members = tuple(h for h in hooks if line < h.line < end)
        if members:
            groups.append(HookGroup(title, description, members))
    first = banners[0][0] if banners else float("inf")
    ungrouped = tuple(h for h in hooks if h.line < first)
    if ungrouped:
        groups.insert(0, HookGroup("Hooks", "", ungrouped))
    return groups


def _calling(hook: HookDoc) -> str:
    if hook.firstresult:
        calling = "**firstresult**: the first non-`None` result wins; the rest are skipped."
    else:
        calling = "Every implementation is called."
    if hook.historic:
        calling += " **historic**: a plugin registered later still gets the call."
    return calling


def hooks_markdown(module: ModuleType | None = None) -> str:
    """The hook reference: a section per group, a subsection per hook."""
    out: list[str] = []
    groups = hook_groups(module)
    out.append("| Hook | Group | firstresult | historic |")
    out.append("| --- | --- | --- | --- |")
    for group in groups:
        for hook in group.hooks:
            out.append(
                f"| [`{hook.name}`](#{hook.name}) | {group.title} | "
                f"{'yes' if hook.firstresult else 'no'} | {'yes' if hook.historic else 'no'} |"
            )
    out.append("")
    for group in groups:
        out.append(f"## {group.title}")
        out.append("")
        if group.description:
            out.append(group.description)
            out.append("")
        for hook in group.hooks:
            out.append(f"### `{hook.name}`")
            out.append("")
            out.append("```python")
            out.append(hook.signature)
            out.append("```")
            out.append("")
            out.extend(f"{rst_to_markdown(p)}\n" for p in hook.description)
            if hook.params:
                out.append("Arguments:")
                out.append("")
                out.extend(f"- `{name}`: {rst_to_markdown(text)}" for name, text in hook.params)
                out.append("")
            out.append(_calling(hook))
            out.append("")
    return "\n".join(out)


# ------------------------------------------------------------------------------ pages


# ------------------------------------------------------------------------------ hook types

#: The values hooks receive, documented field by field (the classes are in ``redbeat_core``).
HOOK_TYPES = ("Dispatched", "DueRun", "DueRuns", "Decision", "Skipped", "Fence", "Finding")
_IVAR = re.compile(r"^:ivar (?P<name>\w+):\s*(?P<text>.*)$")


@dataclass(frozen=True)
class TypeDoc:
    """One class a hook receives, as the reference shows it."""

    name: str
    summary: tuple[str, ...]
    fields: tuple[tuple[str, str, str], ...]  # (name, type, meaning)
    methods: tuple[tuple[str, str], ...]  # (signature, first paragraph)


def _ivars(doc: str) -> dict[str, str]:
    found: dict[str, str] = {}
    name = None
    for line in doc.splitlines():
        match = _IVAR.match(line.strip())
        if match:
            name = match["name"]
            found[name] = match["text"]
        elif name and line.startswith(" ") and line.strip():
            found[name] += " " + line.strip()
        else:
            name = None
    return found


def type_doc(cls: type) -> TypeDoc:
    """Fields (attrs classes, from their ``:ivar`` lines) or public methods of ``cls``."""
    import attrs

    doc = inspect.getdoc(cls) or ""
    summary = tuple(
        " ".join(line.strip() for line in p)
        for p in _paragraphs(doc)
        if not p[0].lstrip().startswith(":ivar ")
    )
    ivars = _ivars(doc)
    fields: list[tuple[str, str, str]] = []
    methods: list[tuple[str, str]] = []
    if attrs.has(cls):
        for field in attrs.fields(cls):
            if field.name.startswith("_"):
                continue
            shown = field.type if isinstance(field.type, str) else _annotation(field.type)
            fields.append((field.name, str(shown), ivars.get(field.name, "")))
    for name, member in vars(cls).items():
        if name.startswith("_") or not (inspect.isfunction(member) or isinstance(member, property)):
            continue
        func = member.fget if isinstance(member, property) else member
        text = _paragraphs(inspect.getdoc(func) or "")
        first = " ".join(line.strip() for line in text[0]) if text else ""
        if isinstance(member, property):
            ret = inspect.signature(func).return_annotation
            fields.append((name, _annotation(ret), first))
        elif not attrs.has(cls):
            methods.append((hook_signature(func).removeprefix("def "), first))
    return TypeDoc(cls.__name__, summary, tuple(fields), tuple(methods))


def hook_types_markdown() -> str:
    """The classes hooks receive, field by field with units (their docstrings say them)."""
    import redbeat_core

    out: list[str] = []
    for name in HOOK_TYPES:
        doc = type_doc(getattr(redbeat_core, name))
        out += [f"### `{doc.name}`", ""]
        out += [f"{rst_to_markdown(p)}\n" for p in doc.summary]
        if doc.fields:
            out += ["| Field | Type | Meaning |", "| --- | --- | --- |"]
            out += [
                f"| `{field}` | {_cell(f'`{kind}`')} | {_cell(rst_to_markdown(text))} |"
                for field, kind, text in doc.fields
            ]
            out.append("")
        if doc.methods:
            out += ["| Method | What it does |", "| --- | --- |"]
            out += [
                f"| {_cell(f'`{sig}`')} | {_cell(rst_to_markdown(text))} |"
                for sig, text in doc.methods
            ]
            out.append("")
    return "\n".join(out)


GENERATORS: dict[str, Callable[[], str]] = {
    "settings": settings_markdown,
    "hooks": hooks_markdown,
    "hook-types": hook_types_markdown,
}


def render(markdown: str, docs_dir: Path) -> str:
    """A page's Markdown with every generated block filled in afresh."""
    for name, generator in GENERATORS.items():
        pattern = block(name)
        if pattern.search(markdown):
            content = generator().rstrip("\n") + "\n"
            markdown = pattern.sub(lambda m, c=content: m[1] + c + m[3], markdown)
    return markdown


def stale_pages(docs_dir: Path) -> list[str]:
    """The pages whose committed blocks differ from what the code generates now."""
    stale = []
    for page in sorted(set(BLOCKS.values())):
        text = (docs_dir / page).read_text(encoding="utf-8")
        if render(text, docs_dir) != text:
            stale.append(page)
    return stale


def write(docs_dir: Path) -> list[str]:
    """Rewrite the generated blocks in place; returns the pages that changed."""
    changed = stale_pages(docs_dir)
    for page in changed:
        path = docs_dir / page
        path.write_text(render(path.read_text(encoding="utf-8"), docs_dir), encoding="utf-8")
    return changed


def rendered_pages(docs_dir: Path) -> dict[str, str]:
    """Every Markdown page of the site, rendered as the site shows it, by file name."""
    return {
        path.relative_to(docs_dir).as_posix(): render(path.read_text(encoding="utf-8"), docs_dir)
        for path in sorted(docs_dir.rglob("*.md"))
    }


def main(argv: Sequence[str]) -> int:
    """``python docs/_generate.py [--check]``: rewrite the generated blocks (or only check)."""
    docs_dir = Path(__file__).resolve().parent
    if "--check" in argv:
        stale = stale_pages(docs_dir)
        for page in stale:
            sys.stdout.write(
                f"docs/{page}: generated block is stale; run: python docs/_generate.py\n"
            )
        return 1 if stale else 0
    for page in write(docs_dir):
        sys.stdout.write(f"docs/{page}: regenerated\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
