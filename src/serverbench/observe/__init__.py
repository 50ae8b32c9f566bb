"""Observation of the machine: resource sampling, kernel counters, environment, host limits."""
