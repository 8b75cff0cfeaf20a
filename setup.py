"""The wheel carries what a learner who never clones needs, besides the package: the
exercise stubs (``exercises/``, never ``solutions/``), the five documents and the
project's reading of them (``docs/``), mapped into the package as
``jaxbp/_starter/exercises/*.py`` and ``jaxbp/_starter/docs/{reading.md,documents/*.txt}``
from where they live in the repository (no copies in the tree). ``jaxbp._resources``
finds them there, or in the checkout for an editable install. Everything else about
the project is in ``pyproject.toml``.
"""

from setuptools import find_packages, setup

STARTER = {"jaxbp._starter.exercises": "exercises", "jaxbp._starter.docs": "docs"}

setup(
    packages=find_packages(include=["jaxbp", "jaxbp.*"]) + list(STARTER),
    package_dir=STARTER,
    package_data={"jaxbp._starter.docs": ["reading.md", "documents/*.txt"]},
)
