"""Load closedloop.yaml: every problem at once, each with file, line and field.

The YAML is composed into nodes first so each value keeps its line; pydantic errors are then
mapped back to the line of the deepest key that exists.  ``${VAR}`` references are resolved
from the environment here, once; a secret written literally into the file is refused, because
the file is meant to live in a repository.

The file is read as something nobody trusts: it must be UTF-8 (else the byte offset and line of
the first bad byte are named), at most ``MAX_CONFIG_BYTES``, nested at most ``MAX_DEPTH`` deep
and at most ``MAX_NODES`` values once its aliases are expanded.  Those limits are checked on
the parser's event stream before anything is built, so a "billion laughs" alias bomb is refused
in milliseconds rather than expanded; a real config is a few hundred values.  Every file the
config names (``*_file``: secrets, credentials, rates) must exist and be readable, checked at
start-up so ``config validate`` and every command say so, not a run half-way through.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from closedloop.config.attribution import AttributionConfig
from closedloop.config.models import Config
from closedloop.errors import ConfigError, Problem

__all__ = [
    "MAX_CONFIG_BYTES",
    "MAX_DEPTH",
    "MAX_NODES",
    "ConfigError",
    "Problem",
    "load_attribution_config",
    "load_config",
    "named_files",
    "parse_config",
    "read_secret",
]

MAX_CONFIG_BYTES = 1 << 20
"""A config file larger than 1 MiB is refused unread (a real one is a few KB)."""
MAX_NODES = 20_000
"""Values in the document with every alias expanded; far above any real config, far below a bomb."""
MAX_DEPTH = 50
"""Nesting of mappings and lists; the composer recurses, so deeper input must not reach it."""

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_SECRET_KEYS = re.compile(r"(^|_)(token|secret|password|api_key|private_key|client_secret)$")
# Files the config names that closedloop creates itself when they are missing.
_CREATED_FILES = frozenset({"hash_key_file"})

Loc = tuple[str | int, ...]
_CONSTRUCTOR = yaml.SafeLoader("")  # only its scalar constructors are used; they keep no state
# libyaml when the wheel has it (ten times faster); both keep line marks on every node.
_FAST_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_config(
    path: str | Path, *, environ: Mapping[str, str] | None = None, check_files: bool = False
) -> Config:
    """The validated config of ``path``; ``check_files`` also checks every file it names.

    Commands load with ``check_files=True`` (``closedloop.cli.console.load``); library callers
    that only read settings (tests, `doctor`, which reports each file as a check) leave it off.
    """
    file = str(path)
    env = os.environ if environ is None else environ
    text = read_config_text(path)
    return parse_config(text, file=file, environ=env, check_files=check_files)


def read_config_text(path: str | Path) -> str:
    """The file's text: refused when missing, unreadable, too large or not UTF-8."""
    file = str(path)
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError([Problem(file, None, "", "file not found")]) from None
    except IsADirectoryError:
        raise ConfigError([Problem(file, None, "", "is a directory, not a YAML file")]) from None
    except OSError as exc:
        raise ConfigError([Problem(file, None, "", f"cannot read: {exc.strerror}")]) from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError([Problem(file, None, "", f"larger than {MAX_CONFIG_BYTES:,} bytes; not a config file")])
    return decode_utf8(raw, file=file)


def decode_utf8(raw: bytes, *, file: str) -> str:
    """UTF-8 text (a leading BOM is dropped), or a ConfigError naming the first bad byte."""
    try:
        return raw.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        bad = raw[exc.start]
        raise ConfigError(
            [
                Problem(
                    file,
                    line,
                    "",
                    f"not UTF-8: byte 0x{bad:02x} at offset {exc.start} (line {line}); "
                    "save the file as UTF-8 (a binary or Latin-1 file is not a config)",
                )
            ]
        ) from None


def load_attribution_config(path: str | Path) -> AttributionConfig:
    """The attribution settings of ``closedloop attribute --config``: a whole closedloop.yaml
    (only its ``attribution:`` section is read, so an analyst needs no CRM secrets) or that
    section alone."""
    file = str(path)
    text = read_config_text(path)
    _compose(text, file)  # the same limits as the whole config; then the plain values
    data = yaml.load(text, Loader=_FAST_LOADER) or {}
    if isinstance(data, dict) and isinstance(data.get("attribution"), dict):
        data = data["attribution"]
    try:
        return AttributionConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(
            [Problem(file, None, _dotted(tuple(e["loc"])), _message(e)) for e in exc.errors()]
        ) from None


def parse_config(
    text: str,
    *,
    file: str = "<config>",
    environ: Mapping[str, str] | None = None,
    check_files: bool = False,
) -> Config:
    """The validated config of ``text``; any input ends here or in a ``ConfigError``."""
    env = os.environ if environ is None else environ
    node = _compose(text, file)
    problems: list[Problem] = []
    lines: dict[Loc, int] = {}
    data = {} if node is None else _to_python(node, (), lines, env, file, problems)
    if not isinstance(data, dict):
        raise ConfigError([Problem(file, 1, "", "the top level must be a mapping of sections")])
    if check_files:
        problems.extend(_file_problems(data, (), lines, file))
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        already = {p.field for p in problems}
        for error in exc.errors():
            loc: Loc = tuple(error["loc"])
            field = _dotted(loc)
            if any(f == field or f.startswith(field + ".") for f in already):
                continue  # the loader already said why this value (or one below it) is missing
            problems.append(Problem(file, _line_for(loc, lines), _dotted(loc), _message(error)))
    if problems:
        problems.sort(key=lambda p: (p.line or 0, p.field))
        raise ConfigError(problems)
    return config


def _compose(text: str, file: str) -> yaml.Node | None:
    """The document's node tree, after its size, depth and alias expansion passed the limits."""
    if len(text) > MAX_CONFIG_BYTES:
        raise ConfigError([Problem(file, None, "", f"larger than {MAX_CONFIG_BYTES:,} characters; not a config file")])
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ConfigError([Problem(file, None, "", f"not UTF-8 text (character {exc.start})")]) from None
    try:
        _check_limits(yaml.parse(text, Loader=_FAST_LOADER), file)
        node: yaml.Node | None = yaml.compose(text, Loader=_FAST_LOADER)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        if isinstance(exc, yaml.reader.ReaderError):  # a character YAML refuses: no mark, a position
            line = text.count("\n", 0, exc.position) + 1
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError([Problem(file, line, "", f"not valid YAML: {problem}")]) from None
    return node


def _check_limits(events: Any, file: str) -> None:
    """Walk the parser's events once: nesting depth, and the node count with aliases expanded.

    An anchor's size is known at its end event, so an alias costs its expanded size without
    being expanded; an alias to an anchor still open is a loop and refused.
    """
    depth, count = 0, 0
    sizes: dict[str, int] = {}
    open_anchors: list[tuple[str | None, int]] = []

    def refuse(event: Any, message: str) -> ConfigError:
        return ConfigError([Problem(file, event.start_mark.line + 1, "", message)])

    for event in events:
        if isinstance(event, yaml.AliasEvent):
            if event.anchor not in sizes:
                if any(name == event.anchor for name, _ in open_anchors):
                    raise refuse(event, f"alias *{event.anchor} refers to itself (a loop)")
                raise refuse(event, f"alias *{event.anchor} has no anchor &{event.anchor} before it")
            count += sizes[event.anchor]
        elif isinstance(event, yaml.ScalarEvent):
            count += 1
            if event.anchor is not None:
                sizes[event.anchor] = 1
        elif isinstance(event, yaml.CollectionStartEvent):
            count += 1
            depth += 1
            if depth > MAX_DEPTH:
                raise refuse(event, f"nested more than {MAX_DEPTH} levels deep")
            open_anchors.append((event.anchor, count))
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
            anchor, start = open_anchors.pop()
            if anchor is not None:
                sizes[anchor] = count - start + 1
        if count > MAX_NODES:
            raise refuse(
                event,
                f"more than {MAX_NODES:,} values once aliases (*name) are expanded; refused as an alias bomb",
            )


def _to_python(
    node: yaml.Node,
    loc: Loc,
    lines: dict[Loc, int],
    env: Mapping[str, str],
    file: str,
    problems: list[Problem],
) -> Any:
    lines[loc] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                problems.append(
                    Problem(file, key_node.start_mark.line + 1, _dotted(loc), "a key must be plain text")
                )
                continue
            key = str(key_node.value)
            child = (*loc, key)
            if key in out:
                problems.append(Problem(file, key_node.start_mark.line + 1, _dotted(child), "duplicate key"))
            lines[child] = key_node.start_mark.line + 1
            value = _to_python(value_node, child, lines, env, file, problems)
            lines[child] = key_node.start_mark.line + 1
            if _SECRET_KEYS.search(key) and isinstance(value_node, yaml.ScalarNode):
                raw = str(value_node.value)
                if raw and not _ENV_REF.fullmatch(raw.strip()):
                    problems.append(
                        Problem(
                            file,
                            lines[child],
                            _dotted(child),
                            "secrets must not be written into the file; use ${ENV_VAR} or "
                            f"{key}_file: /path/to/secret",
                        )
                    )
                    value = None
            out[key] = value
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_to_python(item, (*loc, i), lines, env, file, problems) for i, item in enumerate(node.value)]
    value = _scalar(node, loc, lines, file, problems)
    if isinstance(value, str) and "${" in value:
        missing = [name for name in _ENV_REF.findall(value) if name not in env]
        if missing:
            problems.append(
                Problem(
                    file,
                    lines[loc],
                    _dotted(loc),
                    f"environment variable {', '.join(missing)} is not set",
                )
            )
            return None
        return _ENV_REF.sub(lambda m: env[m.group(1)], value)
    return value


def _scalar(node: yaml.Node, loc: Loc, lines: dict[Loc, int], file: str, problems: list[Problem]) -> Any:
    """A scalar through YAML's safe constructors (int, float, bool, null, timestamp); text stays text."""
    if node.tag == "tag:yaml.org,2002:str":
        return node.value
    construct = yaml.SafeLoader.yaml_constructors.get(node.tag)
    if construct is None:
        problems.append(Problem(file, lines[loc], _dotted(loc), f"unsupported YAML tag {node.tag[:60]!r}"))
        return None
    try:
        return construct(_CONSTRUCTOR, node)
    except Exception:  # PyYAML's constructors fail in several ways (AttributeError on a bad timestamp)
        # a !!timestamp that is no date, a !!binary that is no base64, a collection tag on a scalar
        problems.append(Problem(file, lines[loc], _dotted(loc), f"cannot be read as {node.tag.rsplit(':', 1)[-1]}"))
        return None


def _file_problems(data: Any, loc: Loc, lines: dict[Loc, int], file: str) -> list[Problem]:
    """Every ``*_file`` the config names must be a readable file; its content is never shown."""
    found: list[Problem] = []
    if isinstance(data, dict):
        for key, value in data.items():
            child = (*loc, key)
            if key.endswith("_file") and key not in _CREATED_FILES and isinstance(value, str) and value:
                reason = file_unreadable(value)
                if reason:
                    found.append(Problem(file, _line_for(child, lines), _dotted(child), f"{value}: {reason}"))
            else:
                found.extend(_file_problems(value, child, lines, file))
    elif isinstance(data, list):
        for i, item in enumerate(data):
            found.extend(_file_problems(item, (*loc, i), lines, file))
    return found


def named_files(config: Config) -> list[tuple[str, str]]:
    """(field, path) of every file the validated config names and expects to exist (secrets,
    credentials, rates): what `serve` keeps checking for /readyz."""
    found: list[tuple[str, str]] = []

    def walk(data: Any, loc: Loc) -> None:
        if isinstance(data, dict):
            for key, value in data.items():
                child = (*loc, key)
                if key.endswith("_file") and key not in _CREATED_FILES and isinstance(value, str) and value:
                    found.append((_dotted(child), value))
                else:
                    walk(value, child)
        elif isinstance(data, list):
            for i, item in enumerate(data):
                walk(item, (*loc, i))

    walk(config.model_dump(), ())
    return found


def file_unreadable(path: str) -> str | None:
    """Why ``path`` cannot be read as a file, or None when it can (one byte is read, never shown)."""
    if "\x00" in path:
        return "not a file name (it holds a NUL character)"
    try:
        with open(path, "rb") as handle:
            handle.read(1)
    except FileNotFoundError:
        return "file not found"
    except IsADirectoryError:
        return "is a directory, not a file"
    except PermissionError:
        return f"not readable by this user (uid {os.getuid()}); check its owner and mode"
    except OSError as exc:
        return f"cannot read: {exc.strerror}"
    return None


def _line_for(loc: Loc, lines: dict[Loc, int]) -> int | None:
    for end in range(len(loc), -1, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return None


def _dotted(loc: Loc) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _message(error: Mapping[str, Any]) -> str:
    if error["type"] == "extra_forbidden":
        return "unknown field (check the spelling; see `closedloop config schema`)"
    message = str(error["msg"])
    return message.removeprefix("Value error, ")


def read_secret(value: Any, file: str | None, *, what: str) -> str:
    """The secret's text, from the resolved env value or the file; never echo it in errors."""
    if value is not None:
        secret = value.get_secret_value() if hasattr(value, "get_secret_value") else str(value)
        if secret:
            return secret
    if file:
        try:
            return Path(file).read_text(encoding="utf-8").strip()
        except UnicodeDecodeError as exc:
            raise ConfigError([Problem(file, None, what, f"secret file is not UTF-8 (byte {exc.start})")]) from None
        except OSError as exc:
            raise ConfigError([Problem(file, None, what, f"cannot read secret file: {exc.strerror}")]) from None
    raise ConfigError([Problem("<config>", None, what, "no secret configured")])
