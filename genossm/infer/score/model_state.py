"""Batch operations on a recurrent model's inference state, whatever its nesting.

A state is a tree of tensors whose first axis is the batch (tuples, lists, dicts or dataclasses
of tensors, as the model defines it). Scoring stacks the prefix states of many variants into one
batch, so it needs to concatenate and copy such trees without knowing their layout.
"""

from __future__ import annotations

import dataclasses

import torch


def map_state(function, *states):
    """Apply `function` leafwise to one or more states of the same structure."""
    first = states[0]
    if isinstance(first, torch.Tensor):
        return function(*states)
    if first is None:
        return None
    if isinstance(first, (list, tuple)):
        mapped = [map_state(function, *parts) for parts in zip(*states)]
        return type(first)(mapped) if not hasattr(first, "_fields") else type(first)(*mapped)
    if isinstance(first, dict):
        return {key: map_state(function, *(s[key] for s in states)) for key in first}
    if dataclasses.is_dataclass(first):
        changes = {f.name: map_state(function, *(getattr(s, f.name) for s in states))
                   for f in dataclasses.fields(first)}
        return dataclasses.replace(first, **changes)
    return first  # scalars (e.g. a sequence offset) are shared by the whole batch


def concat_states(states: list):
    """Concatenate states along the batch axis."""
    return map_state(lambda *leaves: torch.cat(leaves, dim=0), *states)


def clone_state(state):
    return map_state(lambda leaf: leaf.clone(), state)
