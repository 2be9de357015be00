"""Shared N-Hit code: the ``.hits`` stream, the trigger kernels, the event file and its checker.

Not a plugin folder (no meta.json): the three N-Hit plugins ``nhit_simulate``,
``nhit_trigger`` and ``nhit_check`` import it, so none imports another's entry module.
"""
