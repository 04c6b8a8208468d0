"""Inside a grading kernel: the course's cells and checks always run against the course's code.

The grader calls these functions between cells through the kernel's ``user_expressions`` (which
input transformers do not touch). :func:`install` runs first, before any student code, and
records the pristine state of:

- every ``dlsaudio`` module (its names, its functions' code and defaults, its classes'
  attributes) and its ``sys.modules`` entry; modules imported later are recorded the moment
  their body has run, by an import hook that also refuses a module file whose hash differs from
  the course's copy;
- the names of ``builtins``, ``math``, ``torch``, ``torch.nn``, ``torch.nn.functional``,
  ``numpy`` and the methods of ``torch.Tensor`` and ``torch.nn.Module``, which checks compute
  with;
- IPython's cell transformers, AST transformers and event callbacks, and the methods of the
  shell and the kernel, which decide what a cell runs and how its outcome is reported;
- the names a course cell binds to package objects (``checks``, ``check_sampler``).

:func:`restore` puts all of it back and says what differed; the grader calls it after every
student cell and before every course cell. :func:`settle` does the same after a course cell:
whatever changed *while the course's cell ran* was changed by student code it called, and a
check during which that happened does not count.

This is a guard against a submission's code, not a security boundary: it all lives in the
process that runs the student's code, so a submission written against this very file (editing
the records below through the garbage collector, say) can defeat it. See the package docstring
of :mod:`dlsaudio.grade` for what is isolated and what is not.
"""

from __future__ import annotations

import functools
import gc
import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import sys
import threading
import types

PACKAGE = "dlsaudio"
WATCHED = ("builtins", "math", "torch", "torch.nn", "torch.nn.functional", "numpy")
WATCHED_CLASSES = ("torch.Tensor", "torch.nn.Module")
_IGNORED_NAMES = {"__warningregistry__", "_", "__", "___"}

_state: _State | None = None


def _is_package_name(name: str) -> bool:
    return name == PACKAGE or name.startswith(PACKAGE + ".")


def _from_package(value) -> bool:
    """True for a module, function or class of the course package."""
    if isinstance(value, types.ModuleType):
        return _is_package_name(value.__name__)
    if isinstance(value, (types.FunctionType, type)):
        return _is_package_name(getattr(value, "__module__", "") or "")
    return False


def _shadowing(obj) -> dict:
    """The attributes of an instance that hide a method of its class (``shell.run_cell = ...``
    would decide what every later cell runs)."""
    cls = type(obj)
    return {k: v for k, v in vars(obj).items() if callable(getattr(cls, k, None))}


def _forget_last_error(shell) -> None:
    """Drop the references a failed cell leaves to its frames (``sys.last_traceback``, the
    shell's last result and traceback printer), so memory its locals held is freed.

    The collection runs after every student cell, so it must be cheap: :meth:`_State.record`
    freezes (``gc.freeze``) the objects of the pristine state, the half million that torch and
    its compiler bring, and a collection scans only what the notebook made since (a full scan
    took 0.3 s on a 2-core machine, a millisecond once frozen)."""
    for name in ("last_type", "last_value", "last_traceback", "last_exc"):
        if hasattr(sys, name):
            setattr(sys, name, None)
    result = getattr(shell, "last_execution_result", None)
    error = getattr(result, "error_in_exec", None)
    if isinstance(error, BaseException):
        error.__traceback__ = None
    for printer in (getattr(shell, "InteractiveTB", None), getattr(shell, "SyntaxTB", None)):
        if printer is not None and hasattr(printer, "tb"):
            printer.tb = None
    gc.collect()


def _function_state(fn: types.FunctionType) -> tuple:
    return (fn.__code__, fn.__defaults__, fn.__kwdefaults__)


def _hooked_by_torch(current, saved) -> bool:
    """``torch.optim.Optimizer`` wraps a subclass's ``step`` in its profiling hook when the first
    instance is made (a check's counting optimizer, say): the library's doing, not tampering.
    Only torch's own wrapper around the recorded function counts."""
    if not (isinstance(current, types.FunctionType) and current is not saved):
        return False
    return current.__code__ is _torch_hook_code() and getattr(current, "__wrapped__", None) is saved


@functools.cache
def _torch_hook_code() -> types.CodeType:
    """The code object of the wrapper ``torch.optim.Optimizer`` puts around ``step``."""
    import torch

    return torch.optim.Optimizer.profile_hook_step(lambda *args, **kwargs: None).__code__


def _unwrap(value):
    return value.__func__ if isinstance(value, (staticmethod, classmethod)) else value


class _Namespace:
    """The names of one module or class, and the code of its functions, as first seen."""

    def __init__(self, label: str, owner, *, whole: bool) -> None:
        self.label, self.owner, self.whole = label, owner, whole
        self.names = {
            k: v
            for k, v in vars(owner).items()
            if k not in _IGNORED_NAMES and (whole or callable(_unwrap(v)))
        }
        self.functions = {
            k: _function_state(_unwrap(v))
            for k, v in self.names.items()
            if isinstance(_unwrap(v), types.FunctionType)
        }
        path = getattr(owner, "__path__", None)
        self.path = list(path) if isinstance(path, list) else None

    def restore(self) -> list[str]:
        changed = []
        current = vars(self.owner)
        for name, value in list(self.names.items()):
            if _hooked_by_torch(current.get(name), value):
                self.names[name] = fn = current[name]
                self.functions[name] = _function_state(fn)
                continue
            if current.get(name, _MISSING) is not value:
                setattr(self.owner, name, value)
                changed.append(f"{self.label}.{name}")
        if self.whole:
            for name in [k for k in current if k not in self.names and k not in _IGNORED_NAMES]:
                if not isinstance(current[name], types.ModuleType):
                    delattr(self.owner, name)
                    changed.append(f"{self.label}.{name} (added)")
        for name, saved in self.functions.items():
            fn = _unwrap(self.names[name])
            if _function_state(fn) != saved:
                fn.__code__, fn.__defaults__, fn.__kwdefaults__ = saved
                changed.append(f"{self.label}.{name} (its code)")
        if self.path is not None and list(self.owner.__path__) != self.path:
            self.owner.__path__[:] = self.path
            changed.append(f"{self.label}.__path__")
        return changed


_MISSING = object()


class _ModuleRecord:
    def __init__(self, module: types.ModuleType, *, own: bool) -> None:
        self.module = module
        self.parts = [_Namespace(module.__name__, module, whole=own)]
        if own:
            for value in vars(module).values():
                if isinstance(value, type) and value.__module__ == module.__name__:
                    self.parts.append(
                        _Namespace(f"{module.__name__}.{value.__qualname__}", value, whole=True)
                    )

    def restore(self) -> list[str]:
        changed = []
        name = self.module.__name__
        if sys.modules.get(name) is not self.module:
            sys.modules[name] = self.module
            changed.append(f"sys.modules[{name!r}]")
        for part in self.parts:
            changed += part.restore()
        return changed


class _CheckedLoader(importlib.abc.Loader):
    """Loads a package module from the source bytes whose hash the course recorded, then
    records its pristine state before any other code can see it."""

    def __init__(self, path: str, digests: dict[str, str]) -> None:
        self.path, self.digests = path, digests

    def create_module(self, spec):
        return None

    def exec_module(self, module) -> None:
        with open(self.path, "rb") as handle:
            source = handle.read()
        expected = self.digests.get(self.path)
        if expected is not None and hashlib.sha256(source).hexdigest() != expected:
            assert _state is not None
            _state.pending.append(f"file {self.path} (changed on disk; not imported)")
            raise ImportError(
                f"{self.path} differs from the course's copy; the grader imports only the "
                "course's own package"
            )
        exec(compile(source, self.path, "exec"), module.__dict__)
        if _state is not None:  # a module imported a second time keeps its first record
            _state.modules.setdefault(module.__name__, _ModuleRecord(module, own=True))


class _PackageFinder(importlib.abc.MetaPathFinder):
    def __init__(self, digests: dict[str, str]) -> None:
        self.digests = digests

    def find_spec(self, name, path=None, target=None):
        if not _is_package_name(name):
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or not isinstance(spec.loader, importlib.machinery.SourceFileLoader):
            return spec
        loader = _CheckedLoader(spec.origin, self.digests)
        return importlib.util.spec_from_file_location(
            name,
            spec.origin,
            loader=loader,
            submodule_search_locations=spec.submodule_search_locations,
        )


class _State:
    def __init__(self, digests: dict[str, str]) -> None:
        self.pending: list[str] = []
        self.finder = _PackageFinder(digests)
        self.bindings: dict[str, object] = {}
        self.before: dict[str, int] = {}
        self.record()

    def record(self) -> None:
        """Take the current state as the pristine one."""
        import IPython

        self.modules: dict[str, _ModuleRecord] = {}
        for name, module in list(sys.modules.items()):
            if (
                _is_package_name(name)
                and isinstance(module, types.ModuleType)
                and name != __name__  # this module's own record changes as it works
            ):
                self.modules[name] = _ModuleRecord(module, own=True)
        for name in WATCHED:
            self.modules[name] = _ModuleRecord(importlib.import_module(name), own=False)
        self.classes = []
        for dotted in WATCHED_CLASSES:
            module, _, attr = dotted.rpartition(".")
            cls = getattr(importlib.import_module(module), attr)
            self.classes.append(_Namespace(dotted, cls, whole=False))
        self.shell = IPython.get_ipython()
        for cls in (*type(self.shell).__mro__, *type(self.shell.kernel).__mro__):
            if cls is not object:
                self.classes.append(_Namespace(cls.__qualname__, cls, whole=False))
        self.instances = [self.shell, self.shell.kernel]
        self.instance_names = [_shadowing(obj) for obj in self.instances]
        self.lists = self._shell_lists()
        self.saved_lists = {key: list(value) for key, value in self.lists.items()}
        self.callbacks = {k: list(v) for k, v in self.shell.events.callbacks.items()}
        gc.freeze()  # no student code has run: nothing here is a failed cell's garbage

    def _shell_lists(self) -> dict[str, list]:
        manager = self.shell.input_transformer_manager
        return {
            "input_transformer_manager.cleanup_transforms": manager.cleanup_transforms,
            "input_transformer_manager.line_transforms": manager.line_transforms,
            "input_transformer_manager.token_transformers": manager.token_transformers,
            "input_transformers_post": self.shell.input_transformers_post,
            "ast_transformers": self.shell.ast_transformers,
        }

    def restore_shell(self) -> list[str]:
        changed = []
        for key, lst in self.lists.items():
            owner_name, _, attr = key.rpartition(".")
            owner = self.shell.input_transformer_manager if owner_name else self.shell
            if getattr(owner, attr) is not lst:
                setattr(owner, attr, lst)
                changed.append(f"shell.{key}")
            if lst != self.saved_lists[key]:
                lst[:] = self.saved_lists[key]
                changed.append(f"shell.{key}")
        for event, saved in self.callbacks.items():
            if self.shell.events.callbacks.get(event) != saved:
                self.shell.events.callbacks[event] = list(saved)
                changed.append(f"shell.events[{event!r}]")
        for obj, saved in zip(self.instances, self.instance_names, strict=True):
            label = "shell" if obj is self.shell else "kernel"
            current = _shadowing(obj)
            for name in set(current) | set(saved):
                if current.get(name, _MISSING) is not saved.get(name, _MISSING):
                    if name in saved:
                        vars(obj)[name] = saved[name]
                    else:
                        del vars(obj)[name]
                    changed.append(f"{label}.{name}")
        if sys.gettrace() is not None or sys.getprofile() is not None:
            changed.append("sys.settrace/setprofile")
        sys.settrace(None)
        sys.setprofile(None)
        threading.settrace(None)
        threading.setprofile(None)
        if sys.meta_path[:1] != [self.finder]:
            if self.finder in sys.meta_path:
                sys.meta_path.remove(self.finder)
            sys.meta_path.insert(0, self.finder)
            changed.append("sys.meta_path")
        return changed

    def restore(self) -> list[str]:
        _forget_last_error(self.shell)
        changed = self.pending
        self.pending = []
        changed += self.restore_shell()
        for record in list(self.modules.values()):
            changed += record.restore()
        for cls in self.classes:
            changed += cls.restore()
        user = self.shell.user_ns
        for name, value in self.bindings.items():
            if user.get(name, _MISSING) is not value:
                user[name] = value
                changed.append(f"the name `{name}` of your notebook")
        self.before = {k: id(v) for k, v in user.items()}
        return sorted(set(changed), key=changed.index)

    def settle(self, trusted: bool) -> list[str]:
        user = self.shell.user_ns
        for name, value in list(user.items()):
            if self.before.get(name) != id(value):
                if _from_package(value):
                    self.bindings[name] = value
                else:
                    self.bindings.pop(name, None)
        if trusted:  # no student code has run yet: what the cell changed is the course's doing
            self.record()
        return self.restore()


def _settle_lazy_imports() -> None:
    """Do now what libraries otherwise do on first use and that would look like tampering:
    the inline matplotlib backend registers its figure hook on the first figure, and importing
    ``torch._dynamo`` (the first optimizer step does) rewraps ``torch.manual_seed``."""
    import torch._dynamo  # noqa: F401

    try:
        import matplotlib.pyplot as plt
    except ImportError:
        return
    plt.close(plt.figure())


def install(digests_path: str | None = None) -> str:
    """Record the pristine state (before any student code) and hook package imports.

    Args:
        digests_path: a JSON file mapping each package source file to its sha256; a package
            module whose file differs is not imported.

    Returns:
        A JSON list of what differed (empty).
    """
    global _state
    _settle_lazy_imports()
    digests = {}
    if digests_path:
        with open(digests_path, encoding="utf-8") as handle:
            digests = json.load(handle)
    _state = _State(digests)
    sys.meta_path.insert(0, _state.finder)
    sys.dont_write_bytecode = True
    return json.dumps([])


def restore() -> str:
    """Put back everything recorded; return a JSON list of what differed."""
    if _state is None:
        raise RuntimeError("the grading guard was not installed")
    return json.dumps(_state.restore())


def settle(trusted: bool = False) -> str:
    """After a course cell: keep the names it bound, then :func:`restore`.

    Args:
        trusted: no student code has run yet, so whatever the cell changed (a library that
            registers a hook when imported) becomes part of the pristine state.
    """
    if _state is None:
        raise RuntimeError("the grading guard was not installed")
    return json.dumps(_state.settle(trusted))


def run_extra_check(source: str, name: str) -> None:
    """Run the staff check ``name`` from ``source`` (a module's text) against the notebook's
    names: each parameter of the check receives the notebook variable of the same name.

    Raises:
        NameError: the notebook has no variable for one of the parameters.
        AssertionError: whatever the check raises.
    """
    import inspect

    if _state is None:
        raise RuntimeError("the grading guard was not installed")
    module = types.ModuleType("dlsaudio_extra_checks")
    exec(compile(source, "<extra checks>", "exec"), module.__dict__)
    check = getattr(module, name)
    user = _state.shell.user_ns
    arguments = {}
    for parameter in inspect.signature(check).parameters:
        if parameter not in user:
            raise NameError(f"`{parameter}` is not defined in your notebook")
        arguments[parameter] = user[parameter]
    check(**arguments)
