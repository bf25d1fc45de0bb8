"""Load closedloop.yaml: every problem at once, each with file, line and field.

The YAML is composed into nodes first so each value keeps its line; pydantic errors are then
mapped back to the line of the deepest key that exists.  ``${VAR}`` references are resolved
from the environment here, once; a secret written literally into the file is refused, because
the file is meant to live in a repository.
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

__all__ = ["ConfigError", "Problem", "load_attribution_config", "load_config", "parse_config", "read_secret"]

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_SECRET_KEYS = re.compile(r"(^|_)(token|secret|password|api_key|private_key|client_secret)$")

Loc = tuple[str | int, ...]
_SCALARS = yaml.SafeLoader("")  # only its scalar constructors are used


def load_config(path: str | Path, *, environ: Mapping[str, str] | None = None) -> Config:
    path = Path(path)
    env = os.environ if environ is None else environ
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([Problem(str(path), None, "", "file not found")]) from None
    except OSError as exc:
        raise ConfigError([Problem(str(path), None, "", f"cannot read: {exc.strerror}")]) from None
    return parse_config(text, file=str(path), environ=env)


def load_attribution_config(path: str | Path) -> AttributionConfig:
    """The attribution settings of ``closedloop attribute --config``: a whole closedloop.yaml
    (only its ``attribution:`` section is read, so an analyst needs no CRM secrets) or that
    section alone."""
    file = str(path)
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise ConfigError([Problem(file, None, "", f"cannot read: {exc.strerror}")]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise ConfigError([Problem(file, line, "", f"not valid YAML: {getattr(exc, 'problem', exc)}")]) from None
    if isinstance(data, dict) and isinstance(data.get("attribution"), dict):
        data = data["attribution"]
    try:
        return AttributionConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(
            [Problem(file, None, _dotted(tuple(e["loc"])), _message(e)) for e in exc.errors()]
        ) from None


def parse_config(text: str, *, file: str = "<config>", environ: Mapping[str, str] | None = None) -> Config:
    env = os.environ if environ is None else environ
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError([Problem(file, line, "", f"not valid YAML: {problem}")]) from None
    problems: list[Problem] = []
    lines: dict[Loc, int] = {}
    data = {} if node is None else _to_python(node, (), lines, env, file, problems)
    if not isinstance(data, dict):
        raise ConfigError([Problem(file, 1, "", "the top level must be a mapping of sections")])
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
    value = _SCALARS.construct_object(node) if node.tag != "tag:yaml.org,2002:str" else node.value
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
        except OSError as exc:
            raise ConfigError([Problem(file, None, what, f"cannot read secret file: {exc.strerror}")]) from None
    raise ConfigError([Problem("<config>", None, what, "no secret configured")])
