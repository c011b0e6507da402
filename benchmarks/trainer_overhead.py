"""Time per training step: the Lightning recipe against a plain PyTorch loop.

Both train the same cross-attention fusion model on the same batches (random
tensors shaped like AV-Digits) with the same optimiser. Each side's epoch is timed
from its first to its last batch, so data loading, logging, the progress bar and
the optimiser step are all inside; start-up and checkpointing are not. The two
alternate, and the median of the repeats is reported.

    python benchmarks/trainer_overhead.py [--steps 60] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from polymodal.data.contract import collate
from polymodal.data.dataset import TensorDictDataset
from polymodal.modules.classifier import build_classifier
from polymodal.train.config import OptimConfig
from polymodal.train.recipe import progress_bar
from polymodal.train.tasks.classification import ClassificationModule

SHAPES = {"image": [1, 28, 28], "audio": [40, 101]}


def make_model() -> torch.nn.Module:
    torch.manual_seed(0)
    modalities = {
        "image": {"encoder": "cnn", "shape": SHAPES["image"]},
        "audio": {"encoder": "spectrogram", "shape": SHAPES["audio"]},
    }
    return build_classifier("cross_attention", modalities, num_classes=10, dim=64)


def make_loader(steps: int, batch_size: int) -> DataLoader[Any]:
    n = steps * batch_size
    generator = torch.Generator().manual_seed(0)
    dataset = TensorDictDataset(
        {
            "image": torch.rand(n, *SHAPES["image"], generator=generator),
            "audio": torch.randn(n, *SHAPES["audio"], generator=generator),
            "label": torch.randint(0, 10, (n,), generator=generator),
        }
    )
    return DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collate)


def plain_epoch(loader: DataLoader[Any]) -> float:
    model = make_model().train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
    started = time.perf_counter()
    for batch in loader:
        loss = F.cross_entropy(model(batch).logits, batch["label"])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return time.perf_counter() - started


class EpochTimer(L.Callback):
    def on_train_epoch_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self.started = time.perf_counter()

    def on_train_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self.seconds = time.perf_counter() - self.started


def lightning_epoch(loader: DataLoader[Any]) -> float:
    module = ClassificationModule(make_model(), num_classes=10, optim=OptimConfig(), max_epochs=1)
    timer = EpochTimer()
    with tempfile.TemporaryDirectory() as folder:
        trainer = L.Trainer(
            max_epochs=1,
            accelerator="cpu",
            devices=1,
            callbacks=[timer, progress_bar()],  # as the recipe runs
            logger=L.pytorch.loggers.CSVLogger(folder, name="", version=""),
            enable_checkpointing=False,
            enable_model_summary=False,
            enable_progress_bar=True,
            log_every_n_steps=10,
            limit_val_batches=0,
            deterministic=True,  # as the recipe runs
        )
        trainer.fit(module, train_dataloaders=loader)
    return timer.seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    loader = make_loader(args.steps, args.batch_size)
    plain_epoch(loader)  # warm-up: allocator, kernels
    plain, lightning = [], []
    for _ in range(args.repeats):
        plain.append(plain_epoch(loader) / args.steps)
        lightning.append(lightning_epoch(loader) / args.steps)
    p, q = statistics.median(plain), statistics.median(lightning)
    print(f"threads: {torch.get_num_threads()}, batch {args.batch_size}, {args.steps} steps")
    print(f"plain PyTorch loop : {1000 * p:7.2f} ms/step (median of {args.repeats})")
    print(f"Lightning recipe   : {1000 * q:7.2f} ms/step")
    print(f"overhead           : {100 * (q / p - 1):+.1f} %")


if __name__ == "__main__":
    main()
