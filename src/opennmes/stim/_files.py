"""Program files: YAML or JSON with unit-bearing values (see docs/program-format.md).

Whatever bytes are fed to the loader, the result is a :class:`Program` or a
:class:`~opennmes.errors.ProgramError` that names the file, the field and the fix.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from opennmes.errors import ProgramError
from opennmes.stim._program import Program

__all__ = ["load_program", "load_program_text", "load_program_bytes", "program_from_dict",
           "save_program", "program_schema", "read_yaml", "validation_lines"]

_MAX_BYTES = 1_000_000


class _Loader(yaml.SafeLoader):
    """YAML 1.2-style booleans: only true/false. YAML 1.1 would read the envelope keys
    ``on:`` and ``off:`` (and yes/no) as booleans.

    A key written twice in one mapping is an error (YAML 1.2 requires unique keys; PyYAML
    would silently keep the last value, so ``amplitude: 20 mA`` followed further down by
    ``amplitude: 80 mA`` would deliver 80 mA to a reader who saw 20)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False
                          ) -> dict[Any, Any]:
        if isinstance(node, yaml.MappingNode):
            first: dict[Any, yaml.Node] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":  # '<<': merged keys may repeat
                    continue
                key = self.construct_object(key_node, deep=deep)
                try:
                    seen = first.get(key)
                except TypeError:  # an unhashable key: the base class reports it
                    continue
                if seen is not None:
                    raise yaml.constructor.ConstructorError(
                        "while constructing a mapping", node.start_mark,
                        f"duplicate key {key!r} (first at line {seen.start_mark.line + 1})",
                        key_node.start_mark)
                first[key] = key_node
        return super().construct_mapping(node, deep=deep)


_Loader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:bool"]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)


def _field_path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def read_yaml(text: str) -> Any:
    """Parse YAML (or JSON) text with YAML 1.2-style booleans, as every OpenNMES data file.

    Raises ``yaml.YAMLError`` for text that is not YAML."""
    return yaml.load(text, Loader=_Loader)  # noqa: S506 (safe loader subclass)


def validation_lines(exc: ValidationError, docs: str) -> list[str]:
    """One ``field.path: what is wrong`` line per error of a pydantic validation, for the
    people who write data files (``docs`` names the page describing the format)."""
    lines = []
    for err in exc.errors(include_url=False):
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and "[" in p))
        field = _field_path(loc) or "(top level)"
        msg = str(err["msg"]).removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = f"unknown field; check its spelling (see {docs})"
        elif err["type"] == "missing":
            msg = "required field is missing"
        lines.append(f"{field}: {msg}")
    return lines


def _explain(exc: ValidationError, source: str | None) -> ProgramError:
    lines = validation_lines(exc, "docs/program-format.md")
    text = lines[0] if len(lines) == 1 else f"{len(lines)} errors:\n  " + "\n  ".join(lines)
    return ProgramError(text, source=source)


def program_from_dict(data: Any, *, source: str | None = None, from_file: bool = True
                      ) -> Program:
    """Validate a mapping (as read from a file) into a Program.

    With ``from_file`` (the default) physical values must carry units.
    """
    if not isinstance(data, dict):
        raise ProgramError(
            f"a program file must hold a mapping with name and channels, got "
            f"{type(data).__name__}", source=source)
    try:
        return Program.model_validate(data, context={"from_file": from_file})
    except ValidationError as exc:
        raise _explain(exc, source) from exc
    except (ValueError, TypeError, ArithmeticError, RecursionError) as exc:
        raise ProgramError(f"invalid program: {exc}", source=source) from exc


def load_program_bytes(data: bytes, *, source: str | None = None) -> Program:
    """Parse YAML or JSON bytes (JSON is YAML) into a Program."""
    if len(data) > _MAX_BYTES:
        raise ProgramError(f"file is {len(data)} bytes; a program file must be under "
                           f"{_MAX_BYTES} bytes", source=source)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProgramError(f"not UTF-8 text (byte {exc.start})", source=source) from exc
    return load_program_text(text, source=source)


def load_program_text(text: str, *, source: str | None = None) -> Program:
    """Parse YAML or JSON text into a Program."""
    try:
        data = read_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ProgramError(f"not valid YAML/JSON{where}: {problem}", source=source) from exc
    except (ValueError, TypeError, RecursionError, ArithmeticError) as exc:
        raise ProgramError(f"cannot read the file: {exc}", source=source) from exc
    return program_from_dict(data, source=source)


def load_program(path: str | Path) -> Program:
    """Load a program file (``.yaml``, ``.yml`` or ``.json``)."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise ProgramError(f"cannot open: {exc.strerror}", source=str(p)) from exc
    return load_program_bytes(data, source=str(p))


def save_program(program: Program, path: str | Path) -> None:
    """Write a program as YAML (``.yaml``/``.yml``) or JSON (``.json``) with units."""
    p = Path(path)
    data = program.to_file_dict()
    if p.suffix == ".json":
        p.write_text(json.dumps(data, indent=2) + "\n")
    elif p.suffix in (".yaml", ".yml"):
        p.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    else:
        raise ProgramError("unknown program file type; use .yaml, .yml or .json", source=str(p))


def program_schema() -> dict[str, Any]:
    """JSON Schema of the program file format."""
    return Program.model_json_schema(mode="serialization")
