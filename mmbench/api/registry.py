"""Name -> factory registries for models and datasets, filled by decorators and entry points.

Registration by import alone is the most common cause of "unknown model" errors in other
harnesses, so mmbench also discovers factories through the entry-point groups `mmbench.models`
and `mmbench.datasets`: installing a plugin package is enough. Entry points are loaded lazily,
one at a time, so a broken plugin is reported by name and never hides the others.
"""
from __future__ import annotations

import difflib
import inspect
import typing
from importlib.metadata import entry_points
from typing import Any, Callable

from mmbench.api.model import MultimodalVAE
from mmbench.errors import MMBenchError, PluginError


class Registry:
    """Maps names to factory callables; `group` is the entry-point group searched on a miss."""

    def __init__(self, kind: str, group: str, product: type | None = None):
        self.kind = kind
        self.group = group
        self.product = product
        self._factories: dict[str, Callable[..., Any]] = {}
        self._entry_points: dict[str, Any] | None = None
        self.broken: dict[str, str] = {}

    def register(self, name: str | None = None) -> Callable[[Callable], Callable]:
        """Decorator: register a factory under `name` (default: the function's name)."""

        def decorator(factory: Callable) -> Callable:
            self.add(name or factory.__name__, factory)
            return factory

        return decorator

    def add(self, name: str, factory: Callable) -> None:
        if not callable(factory):
            raise PluginError(f"{self.kind} {name!r}: {factory!r} is not callable")
        self._check_product(name, factory)
        known = self._factories.get(name)
        if known is not None and known is not factory:
            raise PluginError(
                f"{self.kind} name {name!r} is registered twice "
                f"({_where(known)} and {_where(factory)}); rename one of them"
            )
        self._factories[name] = factory

    def _check_product(self, name: str, factory: Callable) -> None:
        """Refuse, at registration, a factory that cannot build `self.product`: a class that is not
        a subclass, or a function whose return annotation names another class. (What an
        unannotated function returns is still checked when it is built.)"""
        if self.product is None:
            return
        built = factory if inspect.isclass(factory) else _return_annotation(factory)
        if inspect.isclass(built) and not issubclass(built, self.product):
            raise PluginError(f"{self.kind} {name!r}: {_where(factory)} builds {built.__name__}, "
                              f"not a subclass of mmbench.{self.product.__name__}")
        if not _takes_a_positional(factory):
            raise PluginError(f"{self.kind} {name!r}: {_where(factory)} must take the DatasetSpec as its first argument")

    def _discover(self) -> dict[str, Any]:
        """Entry points by name. Two packages declaring one name is an error naming both (which one
        would win depends on sys.path order), reported as a broken name rather than resolved."""
        if self._entry_points is None:
            found: dict[str, list[Any]] = {}
            for ep in entry_points(group=self.group):
                if ep.value not in [e.value for e in found.get(ep.name, [])]:
                    found.setdefault(ep.name, []).append(ep)
            self._entry_points = {}
            for name, eps in found.items():
                if len(eps) == 1:
                    self._entry_points[name] = eps[0]
                else:
                    sources = " and ".join(f"{ep.value} ({_distribution(ep)})" for ep in eps)
                    self.broken[name] = f"declared by two packages: {sources}; uninstall or rename one"
        return self._entry_points

    def _load(self, name: str) -> Callable | None:
        ep = self._discover().get(name)
        if ep is None:
            return None
        try:
            factory = ep.load()
        except (Exception, SystemExit) as exc:  # any import failure of a plugin, sys.exit() included, is reported
            reason = f"{type(exc).__name__}: {exc}".splitlines()[0]
            self.broken[name] = f"cannot import {ep.value} ({reason})"
            return None
        if not callable(factory):
            self.broken[name] = f"{ep.value} is not a callable factory"
            return None
        try:
            self.add(name, factory)
        except PluginError as exc:  # wrong product, no spec parameter: broken, by name
            self.broken[name] = f"{ep.value}: {str(exc).split(': ', 1)[-1]}"
            return None
        return factory

    def get(self, name: str) -> Callable:
        """The factory for `name`; a miss raises a one-line error with close names."""
        factory = self._factories.get(name) or self._load(name)
        if factory is not None:
            return factory
        if name in self.broken:
            raise PluginError(f"{self.kind} {name!r} is broken: {self.broken[name]}")
        close = difflib.get_close_matches(name, self.names(), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise MMBenchError(
            f"unknown {self.kind} {name!r}{hint} (known: {', '.join(self.names()) or 'none'})"
        )

    def names(self) -> list[str]:
        """All usable names; loads every entry point so broken plugins land in `self.broken`."""
        for name in self._discover():
            if name not in self._factories and name not in self.broken:
                self._load(name)
        return sorted(self._factories)


def _distribution(ep: Any) -> str:
    dist = getattr(ep, "dist", None)
    return f"package {dist.name}" if dist is not None else "unknown package"


def _return_annotation(factory: Callable) -> Any:
    """The resolved return annotation of `factory`, or None when it has none or it cannot be resolved."""
    try:
        return typing.get_type_hints(factory).get("return")
    except Exception:  # an annotation naming something not importable here is not ours to judge
        return None


def _takes_a_positional(factory: Callable) -> bool:
    try:
        params = list(inspect.signature(factory).parameters.values())
    except (TypeError, ValueError):  # builtins without a signature: let the build decide
        return True
    return any(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL) for p in params)


def _where(obj: Callable) -> str:
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', repr(obj))}"


MODELS = Registry("model", "mmbench.models", product=MultimodalVAE)
DATASETS = Registry("dataset", "mmbench.datasets")

def register_model(name: str | None = None, *, recipe: dict[str, Any] | None = None,
                   recipe_source: str | None = None) -> Callable[[Callable], Callable]:
    """Decorator: register a model factory under `name` (default: the function's name).

    The factory rules, the whole plugin contract besides `MultimodalVAE` itself:
    - it is a MultimodalVAE subclass, or a callable returning one (annotate the return type and a
      wrong one is refused here, at registration; otherwise when it is built);
    - its first parameter is positional and receives the `DatasetSpec` of the data;
    - every other parameter has a default: those are the model's options, each settable as
      `--set NAME=VALUE` (or `model.NAME=VALUE`) and written into the record's config; a tier's
      model recipe (latent_dim, beta, ...) applies to the options a model has.
    - `recipe` (optional) is the training its paper used, as `train` settings (epochs,
      batch_size, lr, warmup_steps), with `recipe_source` saying where it comes from: the `full`
      tier trains the model with it (`--set` still overrides), the record names it, and a board
      of models trained with different recipes says so. The smaller tiers keep one recipe for all.
    Outside packages register through the `mmbench.models` entry-point group instead of importing
    mmbench at import time; the rules are the same.
    """
    if recipe is not None and not (isinstance(recipe, dict) and recipe and isinstance(recipe_source, str) and recipe_source.strip()):
        raise PluginError("register_model: a recipe is a non-empty dict of train settings and needs a recipe_source")

    def decorator(factory: Callable) -> Callable:
        if recipe is not None:
            factory.training_recipe = {"settings": dict(recipe), "source": recipe_source}
        return MODELS.register(name)(factory)

    return decorator


def model_recipe(name: str) -> dict[str, Any] | None:
    """The training recipe model `name` declared ({"settings": ..., "source": ...}), or None."""
    return getattr(MODELS.get(name), "training_recipe", None)


def register_dataset(name: str | None = None) -> Callable[[Callable], Callable]:
    """Decorator: register a dataset factory `factory(data_root, *, tier, seed, **options)` that
    returns a MultimodalDataset (entry-point group `mmbench.datasets`)."""
    return DATASETS.register(name)


def list_models() -> list[str]:
    return MODELS.names()


def list_datasets() -> list[str]:
    return DATASETS.names()


def model_options(name: str) -> dict[str, Any]:
    """The keyword options a model factory takes, with their defaults (for `--set` checks)."""
    return _options(MODELS.get(name))


def dataset_options(name: str) -> dict[str, Any]:
    return _options(DATASETS.get(name))


def _options(factory: Callable) -> dict[str, Any]:
    params = list(inspect.signature(factory).parameters.values())[1:]  # first one is positional
    return {p.name: p.default for p in params if p.kind is p.KEYWORD_ONLY or p.default is not p.empty}


def _check_options(registry: Registry, name: str, factory: Callable, options: dict[str, Any]) -> None:
    known = _options(factory)
    unknown = set(options) - set(known)
    if unknown:
        raise MMBenchError(f"{registry.kind} {name!r} has no option(s) {', '.join(sorted(unknown))} "
                           f"(options: {', '.join(sorted(known))})")


def create_model(name: str, spec, **options):
    """Build model `name` for a dataset described by `spec`; checks the result is a MultimodalVAE."""
    factory = MODELS.get(name)
    _check_options(MODELS, name, factory, options)
    try:
        model = factory(spec, **options)
    except MMBenchError:
        raise
    except Exception as exc:
        raise PluginError(f"model {name!r} failed to build: {type(exc).__name__}: {exc}") from exc
    if not isinstance(model, MultimodalVAE):
        raise PluginError(
            f"model {name!r} returned {type(model).__name__}, not a mmbench.MultimodalVAE"
        )
    return model


def get_dataset(name: str, data_root, **options):
    """Build (or load from the cache under `data_root`) dataset `name`; options go to its factory."""
    factory = DATASETS.get(name)
    _check_options(DATASETS, name, factory, options)
    return factory(data_root, **options)
