"""Typed models parsed from JSON-like data: request bodies, filters, the config file.

A subclass of `Model` declares its fields as annotated class attributes;
`Model.model_validate(data)` checks a dict against them and returns an
instance, or raises `ValidationError` naming the first problem's location and
kind, which the API layer maps to the spec's error codes.

Hearth used pydantic for this. Its import and compiled core cost every server
process about 7 MiB of resident memory (7% of an idle server with a thousand
parked long-polls) for the handful of types our bodies use, so this module
covers exactly those: str, int, float, bool, Path, Any, Literal, optional
and union types, list, dict, and nested models, plus bounds, aliases and
per-field check functions.

Strict models (request bodies) take JSON types as they are: an integer field
refuses `true` and `"1"`. Lax models (the config file) also take an integer
for a float and a string for a path.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar

Loc = tuple[str | int, ...]
ErrorKind = Literal["missing", "type", "bounds", "value", "extra"]
Check = Callable[[Any, Loc], Any]
F = TypeVar("F")
_MISSING: Any = object()


class ValidationError(ValueError):
    """The first problem found: where (`loc`), what kind, and a message for people."""

    def __init__(self, loc: Loc, kind: ErrorKind, message: str) -> None:
        super().__init__(message)
        self.loc = loc
        self.kind = kind
        self.message = message

    @property
    def field(self) -> str:
        return ".".join(str(p) for p in self.loc) or "body"

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


class _FieldSpec:
    """What `field(...)` returns: a default and constraints, read at class set-up."""

    __slots__ = ("alias", "default", "factory", "ge", "gt", "le")

    def __init__(self, default: Any, factory: Callable[[], Any] | None, ge: float | None,
                 gt: float | None, le: float | None, alias: str | None) -> None:
        self.default, self.factory, self.alias = default, factory, alias
        self.ge, self.gt, self.le = ge, gt, le


def field(*, default: Any = _MISSING, default_factory: Callable[[], Any] | None = None,
          ge: float | None = None, gt: float | None = None, le: float | None = None,
          alias: str | None = None) -> Any:
    """A field with a default (or factory), numeric bounds, or a different JSON key."""
    return _FieldSpec(default, default_factory, ge, gt, le, alias)


def field_validator(*names: str) -> Callable[[F], F]:
    """Mark a classmethod as a check of the named fields, run after their type check.

    It returns the value to keep; a ValueError it raises is a `value` error.
    """
    def mark(method: F) -> F:
        func = method.__func__ if isinstance(method, classmethod) else method
        vars(func)["__hearth_checks__"] = names
        return method
    return mark


class _Field:
    __slots__ = ("check", "default", "factory", "key", "name", "required")

    def __init__(self, name: str, key: str, check: Check, default: Any,
                 factory: Callable[[], Any] | None) -> None:
        self.name, self.key, self.check = name, key, check
        self.default, self.factory = default, factory
        self.required = default is _MISSING and factory is None


@typing.dataclass_transform(kw_only_default=True, field_specifiers=(field,))
class Model:
    """Base of every parsed model (see the module docstring)."""

    __hearth_strict__: ClassVar[bool] = False
    __hearth_extra__: ClassVar[Literal["ignore", "allow", "forbid"]] = "ignore"
    __hearth_frozen__: ClassVar[bool] = False
    __hearth_fields__: ClassVar[tuple[_Field, ...] | None] = None
    # Kept beside the fields rather than among them (they are no field).
    __slots__ = ("__dict__", "model_extra", "model_fields_set")

    model_fields_set: ClassVar[set[str]]  # the fields the data gave
    model_extra: ClassVar[dict[str, Any]]  # keys no field names, where `extra="allow"`

    def __init_subclass__(cls, *, strict: bool | None = None,
                          extra: Literal["ignore", "allow", "forbid"] | None = None,
                          frozen: bool | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if strict is not None:
            cls.__hearth_strict__ = strict
        if extra is not None:
            cls.__hearth_extra__ = extra
        if frozen is not None:
            cls.__hearth_frozen__ = frozen
        # Fields are worked out on first use: annotations may name classes
        # defined later in the module.
        cls.__hearth_fields__ = None

    def __init__(self, **data: Any) -> None:
        self._fill(data, (), by_name=True)

    @classmethod
    def model_validate(cls: type[M], data: Any) -> M:
        return cls._parse(data, ())

    @classmethod
    def _parse(cls: type[M], data: Any, loc: Loc) -> M:
        if isinstance(data, cls):
            return data
        if not isinstance(data, dict):
            raise ValidationError(loc, "type", "expected a JSON object")
        obj = cls.__new__(cls)
        obj._fill(data, loc, by_name=False)
        return obj

    def _fill(self, data: dict[str, Any], loc: Loc, *, by_name: bool) -> None:
        """Check `data` into this instance: keyed by alias (JSON), or also by field name (keywords)."""
        cls = type(self)
        fields = cls.__hearth_fields__ or cls._fields()
        values: dict[str, Any] = {}
        given: set[str] = set()
        for f in fields:
            raw = data.get(f.key, _MISSING)
            if raw is _MISSING and by_name and f.key != f.name:
                raw = data.get(f.name, _MISSING)
            if raw is _MISSING:
                if f.required:
                    raise ValidationError((*loc, f.key), "missing", "this field is required")
                values[f.name] = f.factory() if f.factory is not None else f.default
                continue
            values[f.name] = f.check(raw, (*loc, f.key))
            given.add(f.name)
        extra: dict[str, Any] = {}
        if len(given) < len(data):
            known = {k for f in fields for k in ((f.key, f.name) if by_name else (f.key,))}
            extra = {k: v for k, v in data.items() if k not in known}
            if extra and cls.__hearth_extra__ == "forbid":
                raise ValidationError((*loc, str(next(iter(extra)))), "extra", "unknown key")
            if cls.__hearth_extra__ != "allow":
                extra = {}
        object.__setattr__(self, "__dict__", values)
        object.__setattr__(self, "model_fields_set", given)
        object.__setattr__(self, "model_extra", extra)

    @classmethod
    def _fields(cls) -> tuple[_Field, ...]:
        hints = typing.get_type_hints(cls)
        marked: dict[str, tuple[str, ...]] = {}  # method name -> fields (a subclass's override wins)
        for klass in reversed(cls.__mro__):
            for attr, member in vars(klass).items():
                func = member.__func__ if isinstance(member, classmethod) else member
                if hasattr(func, "__hearth_checks__"):
                    marked[attr] = func.__hearth_checks__
        checks: dict[str, list[Callable[[Any], Any]]] = {}
        for attr, names in marked.items():
            for name in names:
                checks.setdefault(name, []).append(getattr(cls, attr))
        fields = []
        for name, tp in hints.items():
            if name.startswith(("_", "model_")) or typing.get_origin(tp) is ClassVar:
                continue
            spec = getattr(cls, name, _MISSING)
            if not isinstance(spec, _FieldSpec):
                spec = _FieldSpec(spec, None, None, None, None, None)
            check = _bounded(_checker(tp, cls.__hearth_strict__), spec)
            if name in checks:
                check = _with_checks(check, checks.pop(name))
            fields.append(_Field(name, spec.alias or name, check, spec.default, spec.factory))
        if checks:
            raise TypeError(f"{cls.__name__}: checks for unknown fields {sorted(checks)}")
        cls.__hearth_fields__ = tuple(fields)
        return cls.__hearth_fields__

    def model_dump(self) -> dict[str, Any]:
        """Fields (and allowed extra keys) as plain values, nested models as dicts."""
        out = {name: _dump(value) for name, value in self.__dict__.items()}
        out.update(self.model_extra)
        return out

    def __setattr__(self, name: str, value: Any) -> None:
        if type(self).__hearth_frozen__:
            raise AttributeError(f"{type(self).__name__} is frozen")
        super().__setattr__(name, value)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, Model)
        return self.__dict__ == other.__dict__ and self.model_extra == other.model_extra

    def __hash__(self) -> int:
        if not type(self).__hearth_frozen__:
            raise TypeError(f"unhashable type: {type(self).__name__}")
        return hash((type(self), tuple(_freeze(v) for v in self.__dict__.values())))

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self.__dict__.items())
        return f"{type(self).__name__}({inner})"


M = TypeVar("M", bound=Model)


def _dump(value: Any) -> Any:
    if isinstance(value, Model):
        return value.model_dump()
    if isinstance(value, list):
        return [_dump(v) for v in value]
    if isinstance(value, dict):
        return {k: _dump(v) for k, v in value.items()}
    return value


def _freeze(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, dict):
        return tuple((k, _freeze(v)) for k, v in value.items())
    return value


# --- type checks ------------------------------------------------------------------


def _checker(tp: Any, strict: bool) -> Check:
    """A function that checks (and, for lax models, converts) a value of type `tp`."""
    if tp is Any or tp is object:
        return _any
    if tp is str:
        return _of_type(str, "a string")
    if tp is bool:
        return _of_type(bool, "true or false")
    if tp is int:
        return _integer
    if tp is float:
        return _number
    if tp is Path and not strict:
        return _path
    if isinstance(tp, type) and issubclass(tp, Model):
        return tp._parse
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is Literal:
        return _literal(args)
    if origin is typing.Union or origin is types.UnionType:
        return _union([_checker(a, strict) for a in args if a is not type(None)], type(None) in args)
    if origin is list:
        return _list(_checker(args[0], strict) if args else _any, (list,) if strict else (list, tuple))
    if origin is dict:
        return _dict(_checker(args[1], strict) if args else _any)
    raise TypeError(f"no check for type {tp!r}")


def _any(value: Any, loc: Loc) -> Any:
    return value


def _of_type(kind: type, name: str) -> Check:
    def check(value: Any, loc: Loc) -> Any:
        if type(value) is not kind:
            raise ValidationError(loc, "type", f"expected {name}")
        return value
    return check


def _integer(value: Any, loc: Loc) -> int:
    if type(value) is not int:
        raise ValidationError(loc, "type", "expected an integer")
    return value


def _number(value: Any, loc: Loc) -> float:
    if type(value) not in (int, float):
        raise ValidationError(loc, "type", "expected a number")
    return float(value)


def _path(value: Any, loc: Loc) -> Path:
    if not isinstance(value, str | Path):
        raise ValidationError(loc, "type", "expected a path")
    return Path(value)


def _literal(allowed: tuple[Any, ...]) -> Check:
    options = ", ".join(repr(a) for a in allowed)

    def check(value: Any, loc: Loc) -> Any:
        for a in allowed:
            if type(value) is type(a) and value == a:
                return value
        raise ValidationError(loc, "type", f"expected one of {options}")
    return check


def _union(members: list[Check], nullable: bool) -> Check:
    def check(value: Any, loc: Loc) -> Any:
        if value is None:
            if nullable:
                return None
            raise ValidationError(loc, "type", "must not be null")
        first: ValidationError | None = None
        for member in members:
            try:
                return member(value, loc)
            except ValidationError as e:
                first = first or e
        assert first is not None
        raise first
    return check


def _list(item: Check, kinds: tuple[type, ...]) -> Check:
    def check(value: Any, loc: Loc) -> list[Any]:
        if type(value) not in kinds:
            raise ValidationError(loc, "type", "expected a list")
        if item is _any:
            return list(value)
        return [item(v, (*loc, i)) for i, v in enumerate(value)]
    return check


def _dict(item: Check) -> Check:
    def check(value: Any, loc: Loc) -> dict[str, Any]:
        if type(value) is not dict:
            raise ValidationError(loc, "type", "expected a JSON object")
        for k in value:
            if type(k) is not str:
                raise ValidationError((*loc, str(k)), "type", "keys must be strings")
        if item is _any:
            return dict(value)
        return {k: item(v, (*loc, k)) for k, v in value.items()}
    return check


def _bounded(check: Check, spec: _FieldSpec) -> Check:
    ge, gt, le = spec.ge, spec.gt, spec.le
    if ge is None and gt is None and le is None:
        return check

    def bounded(value: Any, loc: Loc) -> Any:
        value = check(value, loc)
        if value is None:
            return value
        if ge is not None and value < ge:
            raise ValidationError(loc, "bounds", f"must be at least {ge}")
        if gt is not None and value <= gt:
            raise ValidationError(loc, "bounds", f"must be greater than {gt}")
        if le is not None and value > le:
            raise ValidationError(loc, "bounds", f"must be at most {le}")
        return value
    return bounded


def _with_checks(check: Check, funcs: list[Callable[[Any], Any]]) -> Check:
    def checked(value: Any, loc: Loc) -> Any:
        value = check(value, loc)
        for func in funcs:
            try:
                value = func(value)
            except (ValueError, AssertionError) as e:
                raise ValidationError(loc, "value", str(e)) from None
        return value
    return checked
