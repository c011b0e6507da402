"""A collection split by document across several :class:`TokenIndex` shards.

Each shard (on a machine of its own, in a deployment) answers a query with its own
best ``k``, scored exactly; the front end keeps the best ``k`` of their union. Since
every returned score is the full late-interaction score, the merged list is what one
index over the whole collection would return from the same candidates — sharding
changes where the work runs, not the ranking. Here the shards are searched in turn.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from polymodal.errors import DataError
from polymodal.methods.ret.index import TokenIndex


class ShardedIndex:
    """Shards holding consecutive document rows: shard ``s`` holds the rows after
    those of shards ``0 … s-1``.

    Args:
        shards: indexes built by one model version.

    Raises:
        DataError: no shard, or shards stamped by different model versions.
    """

    def __init__(self, shards: Sequence[TokenIndex]) -> None:
        versions = {shard.model_version for shard in shards}
        if len(versions) != 1:
            raise DataError(
                f"shards must come from one model version, got {sorted(versions) or 'no shard'}; "
                "rebuild them with one model"
            )
        self.shards = list(shards)
        sizes = torch.tensor([0, *(len(shard) for shard in shards)])
        self.offsets = sizes.cumsum(0)[:-1]  # (S,) first row of each shard

    def __len__(self) -> int:
        return sum(len(shard) for shard in self.shards)

    def search(self, query: Tensor, k: int = 10) -> tuple[Tensor, Tensor]:
        """Top ``k`` of every shard's top ``k``, by score.

        Args:
            query: (B, Q, E) query tokens.

        Returns:
            scores (B, k) descending and global document rows (B, k) (-1 pads).
        """
        scores, rows = [], []
        for shard, offset in zip(self.shards, self.offsets.tolist(), strict=True):
            s, r = shard.search(query, k)
            scores.append(s)
            rows.append(torch.where(r >= 0, r + offset, -1))
        best = torch.cat(scores, dim=1).topk(k, dim=1)
        return best.values, torch.cat(rows, dim=1).gather(1, best.indices)
