"""The workflow models resolve their field types without the module that defines them.

The workflow sandbox decodes payloads with `typing.get_type_hints`, which evaluates string
annotations in `sys.modules[cls.__module__]`; inside the sandbox that holds only the modules
a workflow imported itself. So the model modules keep real (evaluated) annotations, and a
workflow may import its types from `workflows.models` or from the submodule alike.
"""

from __future__ import annotations

import dataclasses
import typing
from unittest import mock

import workflows.models as models


def test_every_model_field_type_is_evaluated_where_it_is_defined() -> None:
    classes = [
        value
        for name in models.__all__
        if dataclasses.is_dataclass(value := getattr(models, name)) and isinstance(value, type)
    ]
    assert len(classes) > 40
    for cls in classes:
        for field_name, annotation in cls.__annotations__.items():
            assert not isinstance(annotation, str), f"{cls.__name__}.{field_name}"
        # as the sandbox sees it: no module of the class's own to resolve names in
        with mock.patch.dict("sys.modules", {cls.__module__: None}):
            typing.get_type_hints(cls)
