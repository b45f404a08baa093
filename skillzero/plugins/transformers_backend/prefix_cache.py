"""Key/value states of prompt prefixes, kept across :meth:`generate` calls.

Agent prompts repeat themselves: every prompt of an env starts with the same chat header
and instructions, every prompt of an episode with the same task, and the members of a
group, who play the same game, share their first observation for a few turns. Prefilling
such a prompt again recomputes keys and values that were computed before.

The cache stores the keys and values of prompts in blocks of ``block_size`` tokens. A
block is identified by its tokens and by the block before it, so a block is only found
again after the very same prefix: the states of a token depend on everything before it.
Looking a prompt up walks its blocks from the start and returns the longest cached run.
Memory is bounded by ``max_tokens``; the least recently used blocks go first, and since a
lookup touches a prefix's blocks from its end back to its start, a block is always
evicted before the blocks it extends (no unreachable blocks are kept). The states are
only valid for the weights they were computed with: the backend clears the cache when the
weights change.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import torch


@dataclass
class _Block:
    parent: int | None
    tokens: tuple[int, ...]
    states: torch.Tensor  # (layers, 2, kv_heads, block_size, head_dim): keys, values


class PrefixCache:
    """An LRU cache of prompt-prefix key/value states, in blocks of ``block_size`` tokens,
    holding at most ``max_tokens`` tokens."""

    def __init__(self, block_size: int = 16, max_tokens: int = 8192) -> None:
        if block_size < 1:
            raise ValueError(f"prefix cache block_size must be >= 1, got {block_size}")
        if max_tokens < 0:
            raise ValueError(f"prefix cache max_tokens must be >= 0, got {max_tokens}")
        self.block_size = block_size
        self.max_tokens = max_tokens
        self._blocks: OrderedDict[int, _Block] = OrderedDict()

    def __len__(self) -> int:
        """The number of cached blocks."""
        return len(self._blocks)

    @property
    def tokens(self) -> int:
        """The number of tokens whose states are cached."""
        return len(self._blocks) * self.block_size

    def clear(self) -> None:
        """Forget every cached state (the weights changed)."""
        self._blocks.clear()

    def _keys(self, tokens: Sequence[int], blocks: int) -> list[tuple[int, tuple[int, ...]]]:
        size = self.block_size
        keys = []
        parent: int | None = None
        for b in range(blocks):
            chunk = tuple(tokens[b * size : (b + 1) * size])
            key = hash((parent, chunk))
            keys.append((key, chunk))
            parent = key
        return keys

    def match(self, tokens: Sequence[int], limit: int) -> tuple[int, list[torch.Tensor]]:
        """The longest cached prefix of ``tokens`` of at most ``limit`` tokens: its length
        (a multiple of ``block_size``) and its blocks' states, oldest first."""
        found: list[int] = []
        parent: int | None = None
        for key, chunk in self._keys(tokens, max(0, limit) // self.block_size):
            block = self._blocks.get(key)
            # the hash names a block; its content and parent make the match exact
            if block is None or block.tokens != chunk or block.parent != parent:
                break
            found.append(key)
            parent = key
        for key in reversed(found):
            self._blocks.move_to_end(key)
        return len(found) * self.block_size, [self._blocks[k].states for k in found]

    def insert(
        self, tokens: Sequence[int], states: Sequence[tuple[torch.Tensor, torch.Tensor]]
    ) -> None:
        """Cache the full blocks of ``tokens``; ``states`` holds one ``(keys, values)``
        pair per layer, each ``(kv_heads, len(tokens), head_dim)``."""
        if self.max_tokens < self.block_size:
            return
        size = self.block_size
        keys = self._keys(tokens, len(tokens) // size)
        parent: int | None = None
        present: list[int] = []
        fresh: torch.Tensor | None = None  # the states from the first missing block on
        first_missing = 0
        for b, (key, chunk) in enumerate(keys):
            block = self._blocks.get(key)
            if block is None:
                if fresh is None:
                    first_missing = b * size
                    fresh = torch.stack(
                        [
                            torch.stack((k[:, first_missing:], v[:, first_missing:]))
                            for k, v in states
                        ]
                    )
                start = b * size - first_missing
                piece = fresh[:, :, :, start : start + size].clone()
                self._blocks[key] = _Block(parent, chunk, piece)
            elif block.tokens != chunk or block.parent != parent:
                break  # a hash collision: keep the cached block, stop here
            present.append(key)
            parent = key
        # most recent = closest to the start, so a block leaves before its prefix does
        for key in reversed(present):
            self._blocks.move_to_end(key)
        while len(self._blocks) * self.block_size > self.max_tokens:
            self._blocks.popitem(last=False)
