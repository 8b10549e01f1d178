"""The layout's rules (docs/architecture.md): layers, no circles, public names across modules, a
docstring per module, every subpackage packaged, and one table of options behind every front end."""

from __future__ import annotations

import argparse
import ast
import inspect
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from conftest import REPO
from nst_runtime.options import FrameOptions, Options, make_options, option_fields, option_names

PACKAGE = REPO / "nst_runtime"


def _modules(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.py") if "__pycache__" not in p.parts)


def test_the_import_contracts_hold():
    """import-linter's contracts in pyproject.toml: layers, no circles, onnxruntime only in vgg."""
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from importlinter.cli import lint_imports; sys.exit(lint_imports(no_cache=True))",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "broken" not in proc.stdout.lower().replace("0 broken", "")


def test_every_subpackage_is_packaged():
    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(REPO).parts) for p in PACKAGE.rglob("__init__.py")}
    assert found <= listed, f"not in pyproject.toml's packages: {sorted(found - listed)}"


def test_every_module_says_what_it_is_for():
    for path in _modules(PACKAGE):
        doc = ast.get_docstring(ast.parse(path.read_text()))
        assert doc and doc.strip(), f"{path.relative_to(REPO)} has no docstring"


@pytest.mark.parametrize("root", ["nst_runtime", "tests", "bench"])
def test_no_private_name_crosses_a_module_boundary(root: str):
    offenders = []
    for path in _modules(REPO / root):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.ImportFrom):
                continue
            if node.level or (node.module or "").startswith(("nst_runtime", "nst_export")):
                names = [a.name for a in node.names if a.name.startswith("_") and not a.name.startswith("__")]
                offenders += [f"{path.relative_to(REPO)}:{node.lineno} {n}" for n in names]
    assert not offenders, offenders


# --- one table of options ---


def test_stylize_takes_every_option_of_the_table():
    import nst_runtime as nst

    parameters = inspect.signature(nst.stylize).parameters
    for name in option_names("python"):
        assert name in parameters, name
        assert parameters[name].default == Options.__dataclass_fields__[name].default
        assert name in nst.stylize.__doc__


def test_every_cli_flag_of_the_table_is_there_with_its_default_and_help():
    from nst_runtime.cli.stylize import build_parser
    from nst_runtime.cli.video import build_parser as video_parser

    for parser, table in ((build_parser(), Options), (video_parser(), FrameOptions)):
        actions = {a.dest: a for a in parser._actions}  # argparse has no public list of its arguments
        for f, spec in option_fields(table, "cli"):
            action = actions[f.name]
            assert action.option_strings == ["--" + f.name.replace("_", "-")]
            assert action.default == f.default and action.help == spec.help
            assert list(action.choices or ()) == list(spec.choices)


def test_the_worker_takes_every_key_of_the_table_and_documents_it():
    from nst_runtime.worker.protocol import parse_options

    protocol_doc = (REPO / "docs" / "worker-protocol.md").read_text()
    for f, _ in option_fields(Options, "worker"):
        options = parse_options({f.name: f.default}, 1)
        assert options == make_options(**{f.name: f.default}), f.name
        assert re.search(rf"`{f.name}`", protocol_doc), f"docs/worker-protocol.md does not name {f.name}"
    for name in option_names("worker", FrameOptions):
        assert f"`{name}`" in protocol_doc


def test_the_front_ends_parse_an_option_the_same_way():
    """size 0, one number of steps, a strength, a memory size and an init file: the CLI's, the
    worker's and stylize()'s keywords all end in the same Options."""
    from nst_runtime.cli.common import options_from_args
    from nst_runtime.cli.stylize import build_parser
    from nst_runtime.worker.protocol import parse_options

    flags = "--size 0 --steps 7 --strength 0.3 --max-memory 2G --init start.png --style-blend 2"
    args = build_parser().parse_args(["c.png", "s.png", "-o", "o.png", *flags.split()])
    values = {"size": 0, "steps": 7, "strength": 0.3, "max_memory": "2G", "init": "start.png", "style_blend": [2]}
    from_cli, from_worker, from_python = options_from_args(args), parse_options(values, 1), make_options(**values)
    assert from_cli == from_worker == from_python
    assert from_python.size is None and from_python.steps == (7,) and from_python.init_image == "start.png"
    assert from_python.max_memory == 2 << 30 and from_python.style_weight < 1.0
    with pytest.raises(TypeError, match="unexpected option 'sizes'"):
        make_options(sizes=3)


def test_the_old_keyword_of_the_style_blend_still_works():
    with pytest.warns(DeprecationWarning, match="style_blend"):
        assert make_options(style_weights=[1, 2]).style_blend == (1.0, 2.0)


def test_parse_ints_and_friends_are_what_the_table_kinds_say():
    from nst_runtime.cli.common import PARSERS

    kinds = {spec.kind for table in (Options, FrameOptions) for _, spec in option_fields(table, "cli")}
    assert kinds - {"choice"} <= set(PARSERS)
    with pytest.raises(argparse.ArgumentTypeError):
        PARSERS["number"]("inf")
