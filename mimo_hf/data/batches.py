"""Batches as dicts keyed by the model's input names, so that every loop calls `model(**inputs)`.

`TensorDict` serves rows of equally long tensors (e.g. `ImageTensors.tensors()`: "pixel_values" and
"labels"; `SequenceTensors.tensors()`: "input_ids", "attention_mask", [the second document's], "labels");
a `DataLoader` over it yields one dict per batch. `split_labels` separates the labels from the inputs.
"""

import torch


class TensorDict(torch.utils.data.Dataset):
    """Rows of named tensors with a common first dimension; item i is {name: tensor[i]}."""

    def __init__(self, tensors):
        sizes = {name: tensor.shape[0] for name, tensor in tensors.items()}
        if len(set(sizes.values())) != 1:
            raise ValueError(f"tensors of a TensorDict need the same number of rows, got {sizes}")
        self.tensors = dict(tensors)

    def __len__(self):
        return next(iter(self.tensors.values())).shape[0]

    def __getitem__(self, index):
        return {name: tensor[index] for name, tensor in self.tensors.items()}

    def head(self, count):
        """The first `count` rows (all of them if there are fewer)."""
        return TensorDict({name: tensor[:count] for name, tensor in self.tensors.items()})


def split_labels(batch):
    """(model inputs, labels) of a batch dict."""
    inputs = dict(batch)
    return inputs, inputs.pop("labels")
