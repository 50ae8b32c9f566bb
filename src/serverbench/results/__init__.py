"""Results: the typed model of results.json, its schema history, the atomic store, aggregation."""
