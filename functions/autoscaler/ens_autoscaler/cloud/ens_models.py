"""The ENS SDK's models, loaded one class at a time instead of ~1,084 modules at once.

`alibabacloud_ens20171110.models/__init__.py` imports every request and response
model of the whole API (~290 ms and ~12 MB of a cold start); an invocation uses
two requests and their responses. The SDK's client and models only ever reach a
model as an attribute of that package (`main_models.X`), so a stand-in package
whose `__getattr__` imports the one file that defines `X` gives them the very
same classes: nothing the SDK builds, checks or sends changes.

The stand-in relies on the generated layout (`models/_snake_case_name.py`, nested
models in their parent's file). If a release lays the package out otherwise, the
first name it cannot find loads the real package and every later name comes from
there: slower, never wrong.
"""
from __future__ import annotations

import importlib
import importlib.util
import re
import sys
import types
from typing import Any, Callable, Iterator

PACKAGE = "alibabacloud_ens20171110.models"
_WORD = re.compile(r"[A-Z][a-z0-9]*|[a-z0-9]+")


def candidates(name: str) -> Iterator[str]:
    """Where the generated layout puts `name`: its own file, else a parent's (longest first).

    `RescaleDeviceServiceResponseBodyResourceDetailInfos` lives in
    `_rescale_device_service_response_body`.
    """
    words = [w.lower() for w in _WORD.findall(name)]
    for end in range(len(words), 0, -1):
        yield "_" + "_".join(words[:end])


class LazyModels(types.ModuleType):
    """The models package, one class per first use; the real package once the layout surprises."""

    def __init__(self, package: str, path: list[str], locate: Callable[[str], Iterator[str]]) -> None:
        super().__init__(package)
        self.__path__ = path  # submodules import from the real directory, without its __init__
        self._locate = locate
        self._real: types.ModuleType | None = None

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        if self._real is None:
            for module in self._locate(name):
                if importlib.util.find_spec(f"{self.__name__}.{module}") is None:
                    continue
                found = getattr(importlib.import_module(f"{self.__name__}.{module}"), name, None)
                if found is not None:
                    setattr(self, name, found)
                    return found
                break
            self._real = _load_real(self)
        return getattr(self._real, name)

    @property
    def lazy(self) -> bool:
        """False once a name outside the known layout made it load the whole package."""
        return self._real is None


def _load_real(stand_in: types.ModuleType) -> types.ModuleType:
    """Run the real `__init__` (it reuses the submodules already loaded) and keep it in
    sys.modules; modules that bound the stand-in keep reaching it through `__getattr__`."""
    del sys.modules[stand_in.__name__]
    try:
        return importlib.import_module(stand_in.__name__)
    except BaseException:
        sys.modules[stand_in.__name__] = stand_in
        raise


def install(locate: Callable[[str], Iterator[str]] = candidates) -> types.ModuleType:
    """Put the stand-in where the SDK looks for its models, unless some package is there already
    (then that one is used as it is). Returns what `alibabacloud_ens20171110.models` now is."""
    held = sys.modules.get(PACKAGE)
    if held is not None:
        return held
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return importlib.import_module(PACKAGE)  # not a package directory: nothing to be lazy about
    stand_in = LazyModels(PACKAGE, list(spec.submodule_search_locations), locate)
    sys.modules[PACKAGE] = stand_in
    importlib.import_module(PACKAGE.rpartition(".")[0]).models = stand_in  # type: ignore[attr-defined]
    return stand_in

