"""Workflows: plugin folders whose entry is ``workflow.json`` (steps linked by named outputs).

``model`` reads workflow.json, ``graph`` checks it against a registry and expands it into
a flat plan, ``local`` runs a plan in processes, ``cache`` remembers succeeded steps, and
``cwl`` exports and imports CWL v1.2.
"""

from .model import WORKFLOW_FILE, FromStep, FromWorkflow, Step, Workflow

__all__ = ["WORKFLOW_FILE", "FromStep", "FromWorkflow", "Step", "Workflow"]
