"""The one config engine: YAML with line numbers, typed coercion, `--set`, flags from dataclasses.

Every config kind (run YAML, SFT recipe, model overrides, scaling-law inputs, tokenizer
options, evaluation options) is a dataclass read through `load_yaml` + `from_dict`, so a
bad key or value is one `ConfigError` that names the file, the line and the dotted key.
Command-line flags are derived from the same dataclasses with `add_flags` / `from_flags`.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import types
from dataclasses import fields
from importlib import resources
from pathlib import Path
from typing import Any, get_type_hints

import yaml


class ConfigError(ValueError):
    """A config file, field or value that cannot be used; the message names it.

    Raised while coercing, it also carries the dotted `key` ("stages[0].lr") and the
    `detail` without it, so a loader can add the file and line (SFT recipes do).
    """

    def __init__(self, message: str, key: str = "", detail: str = ""):
        super().__init__(message)
        self.key, self.detail = key, detail or message


def _field_error(where: str, detail: str) -> ConfigError:
    return ConfigError(f"{where}: {detail}" if where else detail, key=where, detail=detail)


def _join(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name


def packaged(relative: str) -> Path:
    """A file shipped inside the package (demo configs, recipes, task files): `pretrain/demo.yaml`."""
    return Path(str(resources.files("bloomberg_style") / "configs" / relative))


# ---- YAML with the line of every key ---------------------------------------------------
def _lines(node: yaml.Node, prefix: str, out: dict[str, int]) -> None:
    out.setdefault(prefix, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            dotted = f"{prefix}.{key.value}" if prefix else str(key.value)
            out[dotted] = key.start_mark.line + 1
            _lines(value, dotted, out)
    elif isinstance(node, yaml.SequenceNode):
        for i, value in enumerate(node.value):
            _lines(value, f"{prefix}.{i}" if prefix else str(i), out)


def load_yaml(path: str | Path, what: str = "config") -> tuple[dict[str, Any], dict[str, int]]:
    """Read a YAML mapping; return it and {dotted key: line} for error messages."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{what} file not found: {path}")
    text = path.read_text(encoding="utf-8")
    try:
        data = yaml.safe_load(text) or {}
        node = yaml.compose(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections")
    lines: dict[str, int] = {}
    if node is not None:
        _lines(node, "", lines)
    return data, lines


_KEY = re.compile(r"^(?:--set )?([A-Za-z_][\w]*(?:(?:\.[\w*]+)|(?:\[\d+\]))*)")


def dotted_parts(key: str) -> list[str]:
    """ "stages[0].data.format" -> ["stages", "0", "data", "format"]."""
    return [p for p in re.split(r"[.\[\]]", key) if p]


def locate(exc: ConfigError, path: str | Path, lines: dict[str, int], overridden: set[str]) -> ConfigError:
    """Prefix `file:line:` to an error about a key (its own, or the leading dotted key of a
    validate() message); a value that came from `--set` says so instead."""
    message = str(exc)
    match = _KEY.match(message)
    if not exc.key and not match:
        return exc
    parts = dotted_parts(exc.key or match.group(1))
    key = ".".join(parts)
    hits = sorted(o for o in overridden if o == key or o.startswith(key + ".") or key.startswith(o + "."))
    if hits:
        return ConfigError(f"{path}: {message} (from --set {', '.join(hits)})", exc.key, exc.detail)
    while parts and ".".join(parts) not in lines:
        parts.pop()
    line = f":{lines['.'.join(parts)]}" if parts else ""
    return ConfigError(f"{path}{line}: {message}", exc.key, exc.detail)


def load_config(cls: type, path: str | Path, overrides: list[str] | None = None, what: str = "config"):
    """Read `path` into dataclass `cls`, apply `key=value` overrides, validate; errors carry file:line."""
    data, lines = load_yaml(path, what)
    overridden = set()
    for item in overrides or []:
        apply_override(data, item)
        overridden.add(item.split("=", 1)[0].strip())
    try:
        obj = from_dict(cls, data)
        if hasattr(obj, "validate"):
            obj.validate()
        return obj
    except ValueError as exc:  # ConfigError, or a section's own ValueError naming the field
        error = exc if isinstance(exc, ConfigError) else ConfigError(str(exc))
        raise locate(error, path, lines, overridden) from None


# ---- `--set section.key=value` ---------------------------------------------------------
def apply_override(data: dict[str, Any], item: str) -> None:
    """Apply one `section.key=value` override (value parsed as YAML) to a nested dict."""
    if "=" not in item:
        raise ConfigError(f"--set {item!r}: expected section.key=value")
    dotted, raw = item.split("=", 1)
    keys = dotted.strip().split(".")
    node = data
    for key in keys[:-1]:
        if isinstance(node, list):
            node = node[_list_index(node, key, dotted)]
            continue
        node = node.setdefault(key, {})
        if not isinstance(node, (dict, list)):
            raise ConfigError(f"--set {dotted}: {key!r} is not a section")
    value = yaml.safe_load(raw)
    if isinstance(node, list):
        node[_list_index(node, keys[-1], dotted)] = value
    else:
        node[keys[-1]] = value


def _list_index(node: list, key: str, dotted: str) -> int:
    if not key.isdigit() or int(key) >= len(node):
        raise ConfigError(f"--set {dotted}: {key!r} is not an index of a list of {len(node)}")
    return int(key)


# ---- typed coercion --------------------------------------------------------------------
def to_plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_plain(dataclasses.asdict(value))
    if isinstance(value, dict):
        return {k: to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    return value


def from_dict(cls: type, data: Any, where: str = "") -> Any:
    """Build dataclass `cls` from a mapping; unknown keys and mistyped values name `where.key`."""
    if not isinstance(data, dict):
        raise _field_error(where, f"expected a mapping, got {type(data).__name__}")
    hints = get_type_hints(cls)
    known = {f.name for f in fields(cls) if f.init and not f.metadata.get("internal")}
    unknown = sorted(set(data) - known)
    if unknown:
        detail = f"unknown key(s) {unknown}; known keys: {sorted(known)}"
        raise _field_error(_join(where, unknown[0]), detail)
    return cls(**{name: coerce(hints[name], value, _join(where, name)) for name, value in data.items()})


def coerce(hint: Any, value: Any, where: str) -> Any:
    """`value` as type `hint` (dataclass, list, tuple, dict, bool, int, float, str, `X | None`)."""
    if isinstance(hint, types.UnionType):  # `X | None`
        if value is None and type(None) in hint.__args__:
            return None
        options = [a for a in hint.__args__ if a is not type(None)]
        if len(options) > 1:
            return value  # a real union (e.g. dict | float): the section's validate() checks it
        (hint,) = options
    origin = getattr(hint, "__origin__", None)
    if dataclasses.is_dataclass(hint):
        return from_dict(hint, value, where)
    if origin is list:
        if not isinstance(value, list):
            raise _field_error(where, f"expected a list, got {value!r}")
        (item,) = hint.__args__
        return [coerce(item, v, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise _field_error(where, f"expected a list, got {value!r}")
        if len(hint.__args__) == 2 and hint.__args__[1] is Ellipsis:  # tuple[X, ...]
            return tuple(coerce(hint.__args__[0], v, f"{where}[{i}]") for i, v in enumerate(value))
        return tuple(coerce(t, v, where) for t, v in zip(hint.__args__, value))
    if origin is dict:
        if not isinstance(value, dict):
            raise _field_error(where, f"expected a mapping, got {value!r}")
        _, item = hint.__args__
        return {str(k): coerce(item, v, _join(where, str(k))) for k, v in value.items()}
    if hint is bool:
        if not isinstance(value, bool):
            raise _field_error(where, f"expected true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise _field_error(where, f"expected an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, str):  # PyYAML reads 6e-5 (no dot) as a string
            try:
                return float(value)
            except ValueError:
                raise _field_error(where, f"expected a number, got {value!r}") from None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _field_error(where, f"expected a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise _field_error(where, f"expected a string, got {value!r}")
        return value
    return value


# ---- command-line flags from the same dataclasses -------------------------------------
def add_set_flag(parser: argparse.ArgumentParser, example: str = "train.steps=100") -> None:
    """The repeatable `--set KEY=VALUE` of every command that reads a config file (apply_override)."""
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help=f"override a config value, e.g. --set {example} (repeatable)")  # fmt: skip


def flag_name(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_flags(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    cls: type,
    helps: dict[str, str],
    *,
    only: list[str] | None = None,
    special: dict[str, dict[str, Any]] | None = None,
) -> None:
    """One flag per field of `cls` (in `only`, or all): --field-name, typed, defaulting to the field.

    `special` gives argparse keywords for fields whose flag is not a plain typed value
    (e.g. `{"type": parse_bytes}`, `{"action": "append"}`, `{"choices": [...]}`).
    """
    hints = get_type_hints(cls)
    by_name = {f.name: f for f in fields(cls)}
    for name in only or list(by_name):
        f, extra = by_name[name], dict((special or {}).get(name, {}))
        hint = hints[name]
        if isinstance(hint, types.UnionType):
            hint = next(a for a in hint.__args__ if a is not type(None))
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = None
        flag, group = extra.pop("flag", flag_name(name)), extra.pop("group", None) or parser
        kwargs: dict[str, Any] = {"dest": name, "help": helps.get(name)}
        if hint is bool and "action" not in extra:
            kwargs["action"] = "store_false" if default else "store_true"
        else:
            kwargs["default"] = default
            if hint in (int, float, str):
                kwargs["type"] = hint
        kwargs.update(extra)
        group.add_argument(flag, **kwargs)


def from_flags(cls: type, args: argparse.Namespace, **changes: Any):
    """`cls` from the parsed flags of `add_flags` (fields without a flag keep their default)."""
    values = {f.name: getattr(args, f.name) for f in fields(cls) if hasattr(args, f.name)}
    values.update(changes)
    return cls(**values)
