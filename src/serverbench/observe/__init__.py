"""Observation of the machine: resource sampling, kernel counters, environment, host limits,
the noise around each measured window and the doctor's checks before a run."""
