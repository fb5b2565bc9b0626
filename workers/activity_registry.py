"""Activity implementations onto their queues, as the step catalogue declares them.

The worker hands over the implementations it built; their queue role, and whether their
name, input and result match what the workflows call, come from workflows/steps.py. A
mismatch stops the worker at start-up instead of failing payments at run time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from temporalio import activity

from workflows.queues import ROLES, Role
from workflows.steps import BY_NAME, Step

Implementation = Callable[..., Any]


class CatalogueMismatchError(Exception):
    """An implementation the catalogue does not declare, or declares differently."""


def step_of(implementation: Implementation) -> Step[Any, Any]:
    """The catalogued step an `@activity.defn` implementation runs, its types checked."""
    # the SDK's own reading of the decorator (the Worker reads it the same way)
    definition = activity._Definition.must_from_callable(implementation)
    step = BY_NAME.get(definition.name or "")
    if step is None:
        raise CatalogueMismatchError(f"activity {definition.name!r} is not in workflows/steps.py")
    result_type = type(None) if definition.ret_type is None else definition.ret_type
    if definition.arg_types != [step.input_type] or result_type is not step.result_type:
        raise CatalogueMismatchError(
            f"activity {step.name} takes {definition.arg_types} and returns {result_type}; "
            f"the catalogue says {step.input_type} and {step.result_type}"
        )
    return step


def activities_by_role(
    implementations: Iterable[Implementation], roles: Sequence[Role]
) -> dict[Role, list[Implementation]]:
    """Each implementation under its step's role; every step of `roles` must be implemented."""
    by_role: dict[Role, list[Implementation]] = {role: [] for role in ROLES}
    implemented: set[str] = set()
    for implementation in implementations:
        step = step_of(implementation)
        by_role[step.role].append(implementation)
        implemented.add(step.name)
    missing = sorted(
        name for name, step in BY_NAME.items() if step.role in roles and name not in implemented
    )
    if missing:
        raise CatalogueMismatchError(f"no implementation for {missing}")
    return by_role
