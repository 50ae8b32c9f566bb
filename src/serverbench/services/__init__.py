"""Services an app needs beside its server (a database), planned like stacks: commands, never spawned."""
