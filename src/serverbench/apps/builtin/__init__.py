"""The built-in apps: the seed report's (reproduced with no app of the user's) and the workloads'."""
