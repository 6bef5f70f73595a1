"""Several detection datasets with the same classes read as one (VOC 07+12 trainval)."""

from __future__ import annotations

import bisect
import dataclasses
from collections.abc import Sequence

from torch.utils.data import Dataset

from ...registry import DATASETS
from ..problems import Skipped


@DATASETS.register_module()
class ConcatDataset(Dataset):
    """Concatenation of ``datasets`` (configs or built datasets), which must have the same
    ``class_names``. Exposes the detection-dataset interface over the union: ``img_ids``,
    ``aspect_ratios``, ``get_ann(idx)``, ``class_names``, ``label_to_cat_id``."""

    def __init__(self, datasets: Sequence[dict | Dataset]) -> None:
        if not datasets:
            raise ValueError("ConcatDataset needs at least one dataset")
        self.datasets = [DATASETS.build(d) if isinstance(d, dict) else d for d in datasets]
        first = self.datasets[0]
        for i, ds in enumerate(self.datasets[1:], start=1):
            if list(getattr(ds, "class_names", [])) != list(getattr(first, "class_names", [])):
                raise ValueError(
                    f"ConcatDataset: dataset {i} ({ds!r}) has classes "
                    f"{getattr(ds, 'class_names', None)}, dataset 0 ({first!r}) has "
                    f"{getattr(first, 'class_names', None)}; they must match"
                )
        self.class_names = list(getattr(first, "class_names", []))
        self.label_to_cat_id = list(getattr(first, "label_to_cat_id", self.class_names))
        self.cumulative_sizes: list[int] = []
        total = 0
        for ds in self.datasets:
            total += len(ds)
            self.cumulative_sizes.append(total)
        self.img_ids = [i for ds in self.datasets for i in getattr(ds, "img_ids", [])]
        self.aspect_ratios = [a for ds in self.datasets for a in getattr(ds, "aspect_ratios", [])]

    def __len__(self) -> int:
        return self.cumulative_sizes[-1]

    def _locate(self, idx: int) -> tuple[Dataset, int]:
        if idx < 0:
            idx += len(self)
        if not 0 <= idx < len(self):
            raise IndexError(f"index {idx} out of range for ConcatDataset of length {len(self)}")
        which = bisect.bisect_right(self.cumulative_sizes, idx)
        start = self.cumulative_sizes[which - 1] if which else 0
        return self.datasets[which], idx - start

    def __getitem__(self, idx: int):
        dataset, local = self._locate(idx)
        sample = dataset[local]
        if isinstance(sample, Skipped):  # its index in the concatenation, not in its part
            return dataclasses.replace(sample, index=idx + len(self) if idx < 0 else idx)
        return sample

    def get_ann(self, idx: int) -> dict:
        dataset, local = self._locate(idx)
        return dataset.get_ann(local)

    def describe(self, idx: int) -> str:
        """Where sample ``idx`` comes from (its dataset's ``describe``)."""
        dataset, local = self._locate(idx)
        describe = getattr(dataset, "describe", None)
        return describe(local) if callable(describe) else f"sample {local} of {dataset!r}"

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def __repr__(self) -> str:
        return f"ConcatDataset({', '.join(repr(d) for d in self.datasets)})"
