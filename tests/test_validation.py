"""hearth.validation: parsing JSON-like data into typed models, and the errors it names."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import pytest

from hearth.validation import Model, ValidationError, field, field_validator


class Inner(Model, strict=True):
    n: int
    tags: list[str] = field(default_factory=list)


class Body(Model, strict=True, extra="allow"):
    name: str
    count: int = field(default=1, ge=0, le=10)
    ratio: float | None = field(default=None, gt=0)
    flag: bool = False
    kind: Literal["a", "b"] = "a"
    inner: Inner | None = None
    items: list[Inner] = field(default_factory=list)
    table: dict[str, int] = field(default_factory=dict)
    anything: Any = None
    later: Later | None = None
    dotted: str | None = field(default=None, alias="m.dotted")

    @field_validator("name")
    @classmethod
    def _no_spaces(cls, value: str) -> str:
        if " " in value:
            raise ValueError("no spaces, please")
        return value.lower()


class Later(Model, strict=True):
    """Defined after the model that names it: fields are resolved on first use."""

    x: str


def error(model: type[Model], data: Any) -> ValidationError:
    with pytest.raises(ValidationError) as info:
        model.model_validate(data)
    return info.value


def test_valid_data_gives_typed_fields_defaults_and_what_was_given() -> None:
    body = Body.model_validate({"name": "Ab", "count": 3, "ratio": 2, "inner": {"n": 1},
                                "items": [{"n": 2, "tags": ["t"]}], "table": {"k": 5},
                                "later": {"x": "y"}, "m.dotted": "d", "anything": [1]})
    assert body.name == "ab"  # a check's return value is what is kept
    assert (body.count, body.ratio, body.flag, body.kind) == (3, 2.0, False, "a")
    assert isinstance(body.ratio, float)
    assert body.inner == Inner(n=1)
    assert body.items == [Inner(n=2, tags=["t"])]
    assert body.table == {"k": 5}
    assert body.later is not None and body.later.x == "y"
    assert body.dotted == "d"
    assert body.anything == [1]
    assert body.model_fields_set == {"name", "count", "ratio", "inner", "items", "table", "later",
                                     "dotted", "anything"}


@pytest.mark.parametrize(("data", "loc"), [
    ({"name": 1}, ("name",)),
    ({"name": None}, ("name",)),
    ({"name": "a", "count": True}, ("count",)),
    ({"name": "a", "count": "1"}, ("count",)),
    ({"name": "a", "count": 1.0}, ("count",)),
    ({"name": "a", "ratio": True}, ("ratio",)),
    ({"name": "a", "ratio": "2"}, ("ratio",)),
    ({"name": "a", "flag": 1}, ("flag",)),
    ({"name": "a", "kind": "c"}, ("kind",)),
    ({"name": "a", "inner": []}, ("inner",)),
    ({"name": "a", "inner": {"n": 1, "tags": "t"}}, ("inner", "tags")),
    ({"name": "a", "items": [{"n": 1}, {"n": "2"}]}, ("items", 1, "n")),
    ({"name": "a", "items": ({"n": 1},)}, ("items",)),
    ({"name": "a", "table": {"k": "v"}}, ("table", "k")),
    ({"name": "a", "m.dotted": 5}, ("m.dotted",)),
])
def test_wrong_types_are_type_errors_at_their_location(data: dict[str, Any], loc: tuple[Any, ...]) -> None:
    e = error(Body, data)
    assert (e.kind, e.loc) == ("type", loc)
    assert e.field == ".".join(str(p) for p in loc)


def test_a_literal_takes_only_its_values_with_their_type() -> None:
    class Flags(Model, strict=True):
        one: Literal[1] = 1

    assert error(Flags, {"one": True}).kind == "type"
    assert Flags.model_validate({"one": 1}).one == 1


def test_missing_required_fields_are_named() -> None:
    assert (error(Body, {}).kind, error(Body, {}).loc) == ("missing", ("name",))
    e = error(Body, {"name": "a", "inner": {"tags": []}})
    assert (e.kind, e.loc) == ("missing", ("inner", "n"))


@pytest.mark.parametrize(("data", "message"), [
    ({"name": "a", "count": -1}, "at least 0"),
    ({"name": "a", "count": 11}, "at most 10"),
    ({"name": "a", "ratio": 0}, "greater than 0"),
])
def test_bounds(data: dict[str, Any], message: str) -> None:
    e = error(Body, data)
    assert e.kind == "bounds" and message in str(e)


def test_a_check_raising_value_error_is_a_value_error() -> None:
    e = error(Body, {"name": "a b"})
    assert (e.kind, e.loc, e.message) == ("value", ("name",), "no spaces, please")
    assert str(e) == "name: no spaces, please"


def test_not_an_object_at_the_top() -> None:
    e = error(Body, ["name"])
    assert (e.kind, e.loc, e.field) == ("type", (), "body")


def test_extra_keys_allowed_kept_and_dumped() -> None:
    body = Body.model_validate({"name": "a", "inner": {"n": 1, "ignored": True}, "score": -100})
    assert body.model_extra == {"score": -100}
    assert body.model_dump()["score"] == -100
    assert body.model_dump()["inner"] == {"n": 1, "tags": []}  # Inner ignores extra keys
    assert "score" not in body.model_fields_set


def test_extra_keys_forbidden() -> None:
    class Strict(Model, extra="forbid"):
        a: int = 0

    e = error(Strict, {"a": 1, "b": 2})
    assert (e.kind, e.loc) == ("extra", ("b",))


def test_lax_models_convert_numbers_paths_and_tuples() -> None:
    class Config(Model):
        rate: float
        where: Path
        names: list[str] = field(default_factory=list)

    c = Config.model_validate({"rate": 1, "where": "/tmp/x", "names": ("a",)})
    assert (c.rate, c.where, c.names) == (1.0, Path("/tmp/x"), ["a"])
    assert Config.model_validate(c.model_dump()) == c  # a dump parses back to an equal model
    assert error(Config, {"rate": "1", "where": "/"}).kind == "type"


def test_keyword_construction_is_validated_and_takes_models() -> None:
    assert Body(name="X", inner=Inner(n=2)).inner == Inner(n=2)
    with pytest.raises(ValidationError):
        Body(name="x", count=99)


def test_defaults_from_factories_are_not_shared() -> None:
    a, b = Body.model_validate({"name": "a"}), Body.model_validate({"name": "b"})
    a.items.append(Inner(n=1))
    assert b.items == []


def test_frozen_models_refuse_changes_and_hash_by_value() -> None:
    class Frozen(Model, strict=True, frozen=True):
        names: list[str] | None = None

    f = Frozen.model_validate({"names": ["a"]})
    with pytest.raises(AttributeError):
        f.names = []  # type: ignore[misc]
    assert hash(f) == hash(Frozen.model_validate({"names": ["a"]}))
    assert f != Frozen.model_validate({"names": ["b"]})
    with pytest.raises(TypeError):
        hash(Inner(n=1))


def test_subclasses_inherit_fields_settings_and_checks() -> None:
    class Child(Body):
        extra_field: int = 0

        @field_validator("extra_field")
        @classmethod
        def _even(cls, value: int) -> int:
            if value % 2:
                raise ValueError("odd")
            return value

    child = Child.model_validate({"name": "A", "extra_field": 2, "other": 1})
    assert (child.name, child.extra_field, child.model_extra) == ("a", 2, {"other": 1})
    assert error(Child, {"name": "a b"}).kind == "value"
    assert error(Child, {"name": "a", "extra_field": 3}).kind == "value"


def test_a_check_overridden_in_a_subclass_runs_once_as_overridden() -> None:
    calls: list[str] = []

    class Base(Model, strict=True):
        v: str = ""

        @field_validator("v")
        @classmethod
        def _check(cls, value: str) -> str:
            calls.append("base")
            return value

    class Sub(Base):
        @field_validator("v")
        @classmethod
        def _check(cls, value: str) -> str:
            calls.append("sub")
            return value

    Sub.model_validate({"v": "x"})
    assert calls == ["sub"]


def test_a_check_for_an_unknown_field_is_a_programming_error() -> None:
    class Wrong(Model):
        a: int = 0

        @field_validator("b")
        @classmethod
        def _check(cls, value: int) -> int:
            return value

    with pytest.raises(TypeError, match="unknown fields"):
        Wrong.model_validate({})


def test_an_aliased_field_is_read_from_its_json_key_only() -> None:
    # JSON names the field by its alias; its Python name is another key there.
    body = Body.model_validate({"name": "a", "dotted": "x"})
    assert body.dotted is None and body.model_extra == {"dotted": "x"}
    assert Body(name="a", dotted="y").dotted == "y"  # keyword construction uses the name

