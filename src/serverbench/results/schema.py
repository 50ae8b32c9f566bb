"""`python -m serverbench.results.schema` prints the JSON Schema of results.json, generated from
the typed model; docs/results.schema.json is that output, checked in and tested to match."""

from __future__ import annotations

import json

from serverbench.results.store import json_schema

if __name__ == "__main__":
    print(json.dumps(json_schema(), indent=1, sort_keys=True))
