"""The run: jobs executed on a host, stacks started and verified, faults turned into verdicts."""
