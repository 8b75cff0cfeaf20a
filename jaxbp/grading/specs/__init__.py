"""One grading spec module per exercise module: ``activations`` grades
``01_activations.py``, ``dense`` grades ``03_dense.py``, and so on.

Each declares ``MODULE`` (the exercise module it grades) and ``EXERCISES`` (built with
:func:`jaxbp.grading.spec.exercise`, in the module's order). Adding a file here adds its
exercises to the set: :mod:`jaxbp.grading.registry` finds it.
"""
