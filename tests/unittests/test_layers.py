"""Imports run one way: no module of the package imports from a higher layer.

The layers (README, "Layout"), lowest first; a module may import from its own
layer and the ones below. Every import counts, inside functions too, except
those in a module's ``if __name__ == "__main__":`` block (a command entry
point, which may call the CLI layer). Imports are read with ``ast``: nothing
is imported to check them.
"""

import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[2] / "speechbrain_fsce"

#: Lowest first. A name is a module or a package (which covers its modules).
LAYERS = (
    ("speechbrain_fsce", "fileio", "resources", "testing"),  # package root (lazy exports), files
    ("processing", "nnet"),  # the spectral front end; the network's blocks
    ("models", "losses"),  # FSCE, FSCEEnhancer; the training loss
    ("dataio", "metrics", "reporting"),  # corpora and audio files; scores and their reports
    ("model_folder", "checkpoints"),  # model folders and checkpoints, read as data
    ("inference",),  # loading, chunked / streaming enhancement, export, ONNX
    ("brain", "recipe"),  # training
    ("cli",),  # the console commands
)


def _module_name(path):
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(module):
    """Index in :data:`LAYERS` of a ``speechbrain_fsce[.x[.y]]`` module name."""
    parts = module.split(".")
    name = parts[1] if len(parts) > 1 else parts[0]
    for index, names in enumerate(LAYERS):
        if name in names:
            return index
    raise AssertionError(f"{module} is in no layer: add it to LAYERS (and to the README)")


def _main_guard(node):
    test = getattr(node, "test", None)
    return (
        isinstance(node, ast.If)
        and isinstance(test, ast.Compare)
        and isinstance(test.left, ast.Name)
        and test.left.id == "__name__"
    )


def package_imports(path, module=None):
    """``(line, module)`` of every import of the package in a file (``__main__`` block aside).

    ``module`` is the file's module name (default: from its path in the package).
    """
    tree = ast.parse(path.read_text(encoding="utf-8"))
    module = module or _module_name(path)
    skipped = {id(sub) for node in tree.body if _main_guard(node) for sub in ast.walk(node)}
    found = []
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            name = node.module or ""
            if node.level:  # relative: from the importing module's package
                base = module.split(".")
                base = base if path.name == "__init__.py" else base[:-1]
                base = base[: len(base) - node.level + 1]
                name = ".".join(base + ([name] if name else []))
            found.append((node.lineno, name))
    return [(line, name) for line, name in found if name.split(".")[0] == "speechbrain_fsce"]


FILES = sorted(PACKAGE.rglob("*.py"))


def test_every_module_has_a_layer():
    assert len(FILES) > 30
    for path in FILES:
        layer_of(_module_name(path))


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_import_from_a_higher_layer(path):
    module = _module_name(path)
    own = layer_of(module)
    upward = [
        f"{path.relative_to(PACKAGE.parent)}:{line} imports {name} (layer {layer_of(name)} > {own})"
        for line, name in package_imports(path)
        if layer_of(name) > own
    ]
    assert not upward, "\n".join(upward)


def test_the_checker_sees_imports_in_functions_and_skips_the_main_block(tmp_path):
    fake = tmp_path / "fake.py"
    fake.write_text(
        "from .audio import load_audio\n"
        "def f():\n"
        "    from speechbrain_fsce.cli import enhance_main\n"
        "if __name__ == '__main__':\n"
        "    import speechbrain_fsce.recipe\n"
    )
    found = [name for _, name in package_imports(fake, "speechbrain_fsce.dataio.fake")]
    assert found == ["speechbrain_fsce.dataio.audio", "speechbrain_fsce.cli"]
    assert layer_of("speechbrain_fsce.cli") > layer_of("speechbrain_fsce.dataio.fake")
