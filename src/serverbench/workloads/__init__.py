"""Built-in workloads where the server choice matters: a database, I/O waits, payload sizes."""
