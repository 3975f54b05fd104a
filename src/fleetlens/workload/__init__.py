"""The query-workload generator (``fleetlens load``): a mix of query families against the API."""
