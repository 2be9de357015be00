"""Call a Dash callback over HTTP the way the browser does, by the ids it reads.

The body is built from the app's own ``/_dash-dependencies``, so a callback that gains an
input or a state keeps working in these tests; values not given are sent as ``None``."""

from __future__ import annotations

from typing import Any


def dash_call(client: Any, output_part: str, values: dict[str, Any], changed: str) -> Any:
    """POST ``/_dash-update-component`` for the callback whose output contains ``output_part``.

    ``values`` maps ``"id.property"`` to the value sent; returns the test client's response.
    """
    callbacks = client.get("/_dash-dependencies").get_json()
    callback = next(c for c in callbacks if output_part in c["output"])

    def props(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{**i, "value": values.get(f"{i['id']}.{i['property']}")} for i in items]

    outputs = [dict(zip(("id", "property"), part.rsplit(".", 1), strict=True))
               for part in callback["output"].strip(".").split("...")]
    body = {"output": callback["output"], "outputs": outputs if len(outputs) > 1 else outputs[0],
            "inputs": props(callback["inputs"]), "state": props(callback["state"]),
            "changedPropIds": [changed]}
    return client.post("/_dash-update-component", json=body)
