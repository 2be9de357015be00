"""The paper's manager: least-loaded scheduling with REQUEST / NEXTPRO / CLEAR semantics.

The paper's manager keeps a table per processing node (node ID, current tasks,
number of Workers, CPU efficiency factor) and answers each ``REQUEST`` with the
node of smallest combined load (``NEXTPRO``), incrementing its task count;
``CLEAR`` decrements it. The load formula is not published; hisci uses
``load = tasks / (workers * cpu_factor)``, ties broken by the lowest node ID
(nhit.md section 3.4).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class NodeEntry:
    """One row of the manager's table."""

    node: int
    workers: int = 1
    cpu_factor: float = 1.0
    tasks: int = 0
    done: int = 0

    @property
    def load(self) -> float:
        """Combined load, ``tasks / (workers * cpu_factor)``."""
        return self.tasks / (self.workers * self.cpu_factor)


class Scheduler:
    """Least-loaded dispatch of fragments to processing nodes.

    Parameters
    ----------
    nodes : int
        Number of processing nodes (here: worker processes), IDs ``0..nodes-1``.
    workers : int
        Workers per node.
    cpu_factor : float
        CPU efficiency factor of every node.

    Examples
    --------
    >>> s = Scheduler(2)
    >>> s.request(), s.request(), s.request()
    (0, 1, 0)
    >>> s.clear(0); s.request()
    0
    """

    def __init__(self, nodes: int, *, workers: int = 1, cpu_factor: float = 1.0):
        if nodes < 1:
            raise ValueError(f"a scheduler needs at least one node, got {nodes}")
        self.table = [NodeEntry(k, workers, cpu_factor) for k in range(nodes)]

    def request(self) -> int:
        """``REQUEST`` -> ``NEXTPRO``: the least-loaded node's ID; counts one task on it."""
        entry = min(self.table, key=lambda e: (e.load, e.node))
        entry.tasks += 1
        return entry.node

    def clear(self, node: int) -> None:
        """``CLEAR``: node ``node`` finished one fragment."""
        entry = self.table[node]
        if entry.tasks <= 0:
            raise ValueError(f"CLEAR from node {node}, which has no task in flight")
        entry.tasks -= 1
        entry.done += 1

    @property
    def in_flight(self) -> int:
        """Fragments handed out and not yet cleared."""
        return sum(e.tasks for e in self.table)

    def format_table(self) -> str:
        """The manager's table as text (for the job log)."""
        rows = ["node  workers  cpu_factor  tasks  load   done"]
        rows += [f"{e.node:4d}  {e.workers:7d}  {e.cpu_factor:10.2f}  {e.tasks:5d}  "
                 f"{e.load:5.2f}  {e.done:5d}" for e in self.table]
        return "\n".join(rows)
