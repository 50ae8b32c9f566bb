"""Import an object from a "module:attribute" string, the way servers do."""

import importlib
from typing import Any


def load_object(import_string: str) -> Any:
    module_name, _, attribute = import_string.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in attribute.split("."):
        obj = getattr(obj, part)
    return obj
