"""No JAX autodiff inside any backward: the layer, loss and network sources are scanned.

A hand-written backward that called ``jax.vjp`` would pass every gradient check while
teaching nothing, so the sources themselves are read (as Python syntax trees, so that
comments and docstrings that merely mention ``jax.grad`` do not count).
"""

import ast
import pathlib

import pytest

import jaxbp

PACKAGE = pathlib.Path(jaxbp.__file__).parent
SCANNED = sorted(PACKAGE.glob("layers/*.py")) + [PACKAGE / "losses.py",
                                                  PACKAGE / "network.py"]
FORBIDDEN = {"grad", "value_and_grad", "vjp", "jvp", "linear_transpose", "linearize",
             "jacfwd", "jacrev", "jacobian", "hessian"}
JAX_MODULES = {"jax", "jax.api", "jax.ad", "jax.interpreters.ad"}


def autodiff_uses(source: str) -> list[tuple[int, str]]:
    """(line, what) for every use of JAX's autodiff in ``source``.

    Catches ``jax.grad(...)``, ``j.vjp`` after ``import jax as j``, ``from jax import
    vjp`` (with or without ``as``), and attribute chains like ``jax.api.jvp``.
    """
    tree = ast.parse(source)
    jax_names = set()  # local names bound to the jax module
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "jax" or alias.name.startswith("jax."):
                    jax_names.add((alias.asname or alias.name).split(".")[0])
        elif isinstance(node, ast.ImportFrom) and node.module and (
                node.module == "jax" or node.module.startswith("jax.")):
            for alias in node.names:
                if alias.name in FORBIDDEN:
                    found.append((node.lineno, f"from {node.module} import {alias.name}"))
                elif alias.name in ("api", "ad"):
                    jax_names.add(alias.asname or alias.name)
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in FORBIDDEN:
            root = node.value
            while isinstance(root, ast.Attribute):
                root = root.value
            if isinstance(root, ast.Name) and root.id in jax_names:
                found.append((node.lineno, ast.unparse(node)))
    return sorted(found)


@pytest.mark.parametrize("path", SCANNED, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_autodiff_in_layer_loss_and_network_sources(path):
    uses = autodiff_uses(path.read_text(encoding="utf-8"))
    assert not uses, f"{path.name} uses JAX's autodiff: {uses}"


def test_the_scan_covers_every_layer_family():
    names = {p.name for p in SCANNED}
    assert {"dense.py", "activations.py", "conv.py", "pool.py", "reshape.py", "losses.py",
            "network.py"} <= names


@pytest.mark.parametrize("source, what", [
    ("import jax\ndef backward(p, r, dy):\n    return jax.vjp(f, p)[1](dy)\n", "jax.vjp"),
    ("import jax as j\nj.grad(f)\n", "j.grad"),
    ("from jax import vjp\n", "from jax import vjp"),
    ("from jax import jvp as forward_mode\n", "from jax import jvp"),
    ("import jax\njax.linear_transpose(f, x)\n", "jax.linear_transpose"),
    ("import jax.numpy as jnp\nimport jax\ng = jax.value_and_grad(f)\n",
     "jax.value_and_grad"),
    ("import jax\njax.api.jvp(f, (x,), (v,))\n", "jax.api.jvp"),
])
def test_the_scan_finds_planted_autodiff(source, what):
    uses = autodiff_uses(source)
    assert uses and any(what in u for _, u in uses), uses


def test_the_scan_ignores_mentions_in_text():
    source = '"""Checked against jax.grad and jax.vjp."""\n# never jax.jvp here\nx = 1\n'
    assert autodiff_uses(source) == []
