"""Rule tables as data (``*.toml``), installed as ``suite.rule_tables`` (see ``suite.rules``).

This file holds no code: it makes the folder a regular package, so that ``importlib.resources``
finds the tables in every install (a wheel, ``pip install .``, and ``pip install -e .``, whose
finder does not resolve a namespace package nested under ``suite``).
"""
