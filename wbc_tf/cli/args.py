"""Derive argparse flags from a dataclass, so every default lives in one place (`wbc_tf.config`).

Each field ``some_name: T = default`` becomes ``--some-name`` with ``type=T`` and that default.
Help text comes from, in order: ``field.metadata['help']``, an ``overrides`` entry, the comment on
the field's line (``x: int = 1  # help``), or the comment block right above it (a field without
its own comment shares the block of the field directly above it). Section titles written as
``# --- title ---`` are not help text.

Supported types: int, float, str, bool (``--flag`` / ``--no-flag``), ``Literal[...]`` (choices),
``Optional[T]`` and ``tuple[T, ...]`` / ``list[T]`` (``nargs='+'``, T may be a ``Literal``).

Example::

    parser = argparse.ArgumentParser()
    add_dataclass_arguments(parser, InferenceConfig, overrides={"short_side": {"metavar": "PX"}})
    config = dataclass_from_args(InferenceConfig, parser.parse_args())
"""

import argparse
import dataclasses
import inspect
import io
import re
import textwrap
import tokenize
import typing

_FIELD_LINE = re.compile(r"^(\w+)\s*:")


def _inline_comment(line):
    """The ``# comment`` of one source line (ignoring '#' inside strings), or ''."""
    try:
        for tok in tokenize.generate_tokens(io.StringIO(line).readline):
            if tok.type == tokenize.COMMENT:
                return tok.string.lstrip("#").strip()
    except (tokenize.TokenError, IndentationError, SyntaxError):
        pass
    return ""


def field_comments(cls):
    """``{field_name: help text}`` read from the comments in ``cls``'s source ('' if none)."""
    names = {f.name for f in dataclasses.fields(cls)}
    try:
        lines = textwrap.dedent(inspect.getsource(cls)).splitlines()
    except (OSError, TypeError):  # no source (e.g. defined in a REPL)
        return {}
    helps, block, shared = {}, [], ""
    inline_owner, field_indent = None, 0  # field whose inline comment may continue below
    for line in lines:
        text = line.strip()
        indent = len(line) - len(line.lstrip())
        if text.startswith("#"):
            comment = text.lstrip("#").strip()
            if inline_owner and indent > field_indent:  # aligned continuation of an inline comment
                helps[inline_owner] += " " + comment
                continue
            inline_owner = None
            if not comment.startswith("---"):  # '# --- data ---' is a section title
                block.append(comment)
            shared = ""
            continue
        match = _FIELD_LINE.match(text)
        if match and match.group(1) in names:
            if block:
                shared = " ".join(block)
            inline = _inline_comment(text)
            helps[match.group(1)] = inline or shared
            inline_owner, field_indent = (match.group(1) if inline else None), indent
            block = []
            continue
        block, shared, inline_owner = [], "", None  # a blank line or other code ends the block
    return helps


def _argparse_type(tp):
    """Map a field annotation to argparse keywords: type / choices / nargs / action."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Union and type(None) in args:  # Optional[T]
        (inner,) = [a for a in args if a is not type(None)]
        return _argparse_type(inner)
    if origin is typing.Literal:
        return {"type": type(args[0]), "choices": list(args)}
    if origin in (tuple, list):
        inner = _argparse_type(args[0] if args else str)
        return {**inner, "nargs": "+"}
    if tp is bool:
        return {"action": argparse.BooleanOptionalAction}
    if tp in (int, float, str):
        return {"type": tp}
    raise TypeError(f"add_dataclass_arguments: unsupported field type {tp!r}")


def flag_name(name, prefix=""):
    """``--<prefix><name>`` with underscores as dashes."""
    return "--" + (prefix + name).replace("_", "-")


def add_dataclass_arguments(parser, cls, prefix="", overrides=None, title=None):
    """Add one ``--flag`` per field of dataclass ``cls`` to ``parser``.

    Args:
        parser: an `argparse.ArgumentParser` (or an argument group).
        cls: a dataclass type whose fields all have defaults.
        prefix: prepended to flag names and destinations (e.g. ``'infer_'`` → ``--infer-fit``).
        overrides: ``{field: {argparse kwargs}}`` to add or replace keywords (e.g. choices, help);
            ``'flags': ['-o']`` adds short option strings. A ``required`` flag shows no default.
        title: if given, the flags go into an argument group with this title.

    Returns:
        The parser or group the flags were added to.
    """
    overrides = overrides or {}
    hints = typing.get_type_hints(cls)
    comments = field_comments(cls)
    target = parser.add_argument_group(title) if title else parser
    for field in dataclasses.fields(cls):
        if not field.init:
            continue
        if field.default is not dataclasses.MISSING:
            default = field.default
        elif field.default_factory is not dataclasses.MISSING:
            default = field.default_factory()
        else:
            raise TypeError(f"{cls.__name__}.{field.name} has no default")
        kwargs = _argparse_type(hints[field.name])
        if "choices" in field.metadata:
            kwargs["choices"] = list(field.metadata["choices"])
        text = field.metadata.get("help") or comments.get(field.name, "")
        kwargs.update(default=default, dest=prefix + field.name,
                      help=(text.replace("%", "%%") + " (default: %(default)s)").strip())
        kwargs.update(overrides.get(field.name, {}))
        if kwargs.get("required") and kwargs["help"].endswith(" (default: %(default)s)"):
            kwargs["help"] = kwargs["help"][:-len(" (default: %(default)s)")]
        if kwargs.get("nargs") == "+" and isinstance(default, (tuple, list)):
            kwargs["default"] = list(default)
        flags = kwargs.pop("flags", ())
        target.add_argument(*flags, flag_name(field.name, prefix), **kwargs)
    return target


def dataclass_from_args(cls, namespace, prefix=""):
    """Build ``cls`` from a parsed namespace (fields missing from it keep their defaults)."""
    values = {}
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
        dest = prefix + field.name
        if field.init and hasattr(namespace, dest):
            value = getattr(namespace, dest)
            if typing.get_origin(hints[field.name]) is tuple and isinstance(value, list):
                value = tuple(value)
            values[field.name] = value
    return cls(**values)
