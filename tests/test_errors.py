"""docs/errors.md is generated from strongroom.errors; these tests keep the two in step.

Regenerate the page with ``.venv/bin/python scripts/errorlist.py > docs/errors.md``.
"""

from __future__ import annotations

import importlib.util
import inspect
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

from strongroom import errors
from strongroom.errors import ALL_ERRORS, StrongroomError

ROOT = Path(__file__).resolve().parent.parent
ErrorClass = type[StrongroomError]
Family = tuple[str, tuple[ErrorClass, ...]]


def _load_errorlist() -> ModuleType:
    """Import scripts/errorlist.py (scripts/ is not a package)."""
    path = ROOT / "scripts" / "errorlist.py"
    spec = importlib.util.spec_from_file_location("errorlist", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ERRORLIST = _load_errorlist()
render: Callable[[], str] = ERRORLIST.render
family_of: Callable[[ErrorClass], Family] = ERRORLIST.family_of
FAMILIES: tuple[Family, ...] = ERRORLIST.FAMILIES
CLI_CODES: tuple[tuple[int, str], ...] = ERRORLIST.CLI_CODES


def test_docs_errors_md_is_the_generated_page() -> None:
    page = (ROOT / "docs" / "errors.md").read_text(encoding="utf-8")
    assert page == render(), (
        "docs/errors.md is stale: run `.venv/bin/python scripts/errorlist.py > docs/errors.md`"
    )


def test_all_errors_lists_every_error_class_once() -> None:
    defined = {
        obj
        for obj in vars(errors).values()
        if inspect.isclass(obj) and issubclass(obj, StrongroomError)
    }
    assert len(ALL_ERRORS) == len(set(ALL_ERRORS))
    assert set(ALL_ERRORS) == defined


def test_every_class_has_a_meaning_and_a_remedy() -> None:
    for cls in ALL_ERRORS:
        assert ERRORLIST.meaning(cls), f"{cls.__name__} has no docstring to document"
        assert cls.default_remedy.strip(), f"{cls.__name__} has no default remedy"


def test_a_subclass_keeps_the_exit_code_of_its_family() -> None:
    for cls in ALL_ERRORS:
        _, roots = family_of(cls)
        assert cls.exit_code == roots[0].exit_code, (
            f"{cls.__name__} exits {cls.exit_code} but its family "
            f"({roots[0].__name__}) exits {roots[0].exit_code}"
        )


def test_each_documented_family_has_an_exit_code_of_its_own() -> None:
    codes: dict[int, str] = {}
    for title, roots in FAMILIES:
        family_codes = {root.exit_code for root in roots}
        assert len(family_codes) == 1, f"the roots of {title!r} disagree: {family_codes}"
        code = family_codes.pop()
        assert code not in codes, f"{title!r} and {codes[code]!r} share exit code {code}"
        codes[code] = title
    for code, text in CLI_CODES:
        assert code not in codes, f"CLI code {code} ({text}) is also {codes[code]!r}"


def test_every_direct_subclass_of_the_base_roots_a_documented_family() -> None:
    roots = {root for _, family_roots in FAMILIES for root in family_roots}
    for cls in ALL_ERRORS:
        if cls.__bases__ == (StrongroomError,):
            assert cls in roots, (
                f"{cls.__name__} starts a new error family: give it an exit code of its "
                "own and add it to FAMILIES in scripts/errorlist.py"
            )


def test_exit_codes_are_usable_by_a_shell() -> None:
    for cls in ALL_ERRORS:
        assert 1 <= cls.exit_code <= 125, f"{cls.__name__} exits {cls.exit_code}"
