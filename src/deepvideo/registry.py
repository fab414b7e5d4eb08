"""Named choices: one :class:`Registry` per kind (models, trackers, detectors, flow methods,
data formats, ...).

A registry maps names to builders (functions or classes).  Adding a choice is one decorated
builder::

    TRACKERS = Registry("tracker")

    @TRACKERS.register("sort")
    class Sort: ...

    TRACKERS.build("sort", max_age=3)

An unknown name raises ``ValueError`` naming the closest registered one ("did you mean
...?") or else listing them all; an option the builder does not take raises ``ValueError``
listing those it does.
"""

from __future__ import annotations

import difflib
import inspect
import numbers
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from types import MappingProxyType
from typing import Any, Generic, TypeVar

__all__ = ["Registry"]

B = TypeVar("B", bound=Callable[..., Any])

_KEYWORD = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


def _closest(word: str, choices: Iterable[str]) -> str | None:
    match = difflib.get_close_matches(word, list(choices), n=1)
    return match[0] if match else None


def _check_number(key: str, value: Any, param: inspect.Parameter | None, owner: str) -> None:
    """A ``ValueError`` for a non-number ``value`` of an option whose default is a number
    (an integer where the default is one; ``None`` passes where the annotation allows it)."""
    default = param.default if param is not None else None
    if isinstance(default, bool) or not isinstance(default, (int, float)):
        return
    if value is None and "None" in str(param.annotation):
        return
    kind = numbers.Integral if isinstance(default, int) else numbers.Real
    if isinstance(value, bool) or not isinstance(value, kind):
        wanted = "an integer" if kind is numbers.Integral else "a number"
        raise ValueError(f"{key}: {owner} takes {wanted}, got {value!r}")


class Registry(Generic[B]):
    """Builders of one ``kind`` of choice (``"model"``, ``"tracker"``, ...) by name.

    ``load``, if given, runs once before the first lookup: it imports the modules whose
    builders register themselves (so that a new module needs no edit elsewhere).
    """

    def __init__(self, kind: str, load: Callable[[], None] | None = None) -> None:
        self.kind = kind
        self._load = load
        self._builders: dict[str, B] = {}
        self._info: dict[str, Mapping[str, Any]] = {}

    def register(self, name: str, **info: Any) -> Callable[[B], B]:
        """Decorator: register a builder as ``name``, with ``info`` about it (see :meth:`info`).
        One builder may be registered under several names; a name only once."""
        if not isinstance(name, str) or not name:
            raise ValueError(f"a {self.kind} name must be a non-empty string, got {name!r}")

        def add(builder: B) -> B:
            if name in self._builders:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._builders[name], self._info[name] = builder, MappingProxyType(dict(info))
            return builder

        return add

    def _entries(self) -> dict[str, B]:
        if self._load is not None:
            load, self._load = self._load, None  # a lookup while loading does not load again
            try:
                load()
            except BaseException:
                self._load = load
                raise
        return self._builders

    def get(self, name: str) -> B:
        """The builder registered as ``name``; ``ValueError`` naming a close match if unknown."""
        builders = self._entries()
        if name not in builders:
            close = _closest(name, builders) if isinstance(name, str) else None
            hint = f"did you mean {close}?" if close else f"one of {', '.join(builders)}"
            raise ValueError(f"unknown {self.kind} {name!r}; {hint}")
        return builders[name]

    def info(self, name: str) -> Mapping[str, Any]:
        """The ``info`` that ``name`` was registered with (read-only)."""
        self.get(name)
        return self._info[name]

    def check(self, name: str, options: Mapping[str, Any], set_by_caller: Collection[str] = ()) -> Callable[..., Any]:
        """The builder of ``name`` once ``options`` fit its signature.

        Raises ``ValueError`` for an unknown name, for an option the builder does not take
        (listing those it does but ``set_by_caller``; a builder taking ``**kwargs`` takes any)
        and for a required one missing.
        """
        builder = self.get(name)
        params = inspect.signature(builder).parameters.values()
        named = [p.name for p in params if p.kind in _KEYWORD and p.name not in set_by_caller]
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            for key in options:
                if key not in named and key not in set_by_caller:
                    close = _closest(key, named)
                    hint = f" (did you mean {close}?)" if close else ""
                    raise ValueError(f"{self.kind} {name!r} has no option {key!r}{hint}; "
                                     f"options: {', '.join(named) or 'none'}")
        missing = [p.name for p in params if p.kind in _KEYWORD and p.default is p.empty and p.name not in options]
        if missing:
            raise ValueError(f"{self.kind} {name!r} needs {', '.join(missing)}")
        by_name = {p.name: p for p in params}
        for key, value in options.items():
            _check_number(key, value, by_name.get(key), f"{self.kind} {name!r}")
        return builder

    def build(self, name: str, /, **options: Any) -> Any:
        """Call the builder of ``name`` with ``options`` (checked as by :meth:`check`)."""
        return self.check(name, options)(**options)

    def names(self) -> tuple[str, ...]:
        """The registered names, in the order they were registered."""
        return tuple(self._entries())

    def __contains__(self, name: object) -> bool:
        return name in self._entries()

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries())

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, names={self.names()})"
