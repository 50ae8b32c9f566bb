"""Apps under test: the registry of built-in and user apps, importing and inspecting an app."""
