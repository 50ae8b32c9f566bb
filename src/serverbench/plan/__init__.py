"""The plan: what a run measures (profiles, stacks and apps selected, the jobs), and resuming one."""
