"""Exportable forms of MIMOConv and MIMOFormer at one operating point: any batch size, tensor ops only.

The PyTorch forward passes choose the group layout with Python control flow on the batch size
(`group_layout` returns None when k divides B, the partial-group averaging uses `bincount`, and
MIMOConv's CPU path splits the batch into chunks whose size depends on B). `torch.export` cannot keep
the batch dimension symbolic through that: it silently specialises the graph to the example's batch
size. The modules here compute the same thing with tensor operations only:

- `group_positions(B, k)`: which input fills each of the ceil(B / k) * k group cells, for every B
  (the identity when k divides B), equal to `group_layout` wherever that is not None (tested);
- `average_repeats`: `index_add` of the cell outputs and of ones (the repeat counts), so a full batch
  is divided by 1 (exact) and a partial last group averages its members' repeats as in PyTorch;
- the rest calls the model's own sub-modules (stem, binding weight, trunk stages, unbinding,
  encoder layers, heads), so the weights and the arithmetic are the model's. The equivalence with
  the PyTorch forward is checked on every export (`onnx_export.verify`) and by the tests.
"""

import torch
import torch.nn.functional as F
from torch import nn


def group_positions(batch_size, k, device=None):
    """(ceil(B / k) * k,) int64: the input of each group cell; cells of a partial last group of r
    inputs hold its members cyclically (cell i of that group holds member i mod r).

    `batch_size` may be a symbolic size during `torch.export`; only tensor arithmetic follows from it.
    """
    groups = (batch_size + k - 1) // k
    cells = torch.arange(groups * k, device=device)  # (G*k,)
    start = torch.div(cells, k, rounding_mode="floor") * k  # first cell of each cell's group
    size = (batch_size - start).clamp(max=k)  # members of that group: k, or r < k for the last one
    return start + (cells - start) % size


def average_repeats(values, positions, batch_size):
    """(G*k, F) cell outputs -> (B, F): each input's row, the mean over the cells that hold it."""
    summed = values.new_zeros(batch_size, values.shape[1]).index_add(0, positions, values)
    counts = values.new_zeros(batch_size).index_add(0, positions, torch.ones_like(positions, dtype=values.dtype))
    return summed / counts.unsqueeze(1)


class MIMOConvGraph(nn.Module):
    """`MIMOConvForImageClassification` at operating point k as a traceable module: pixel_values -> logits.

    Same computation as `model(pixel_values, num_superpositions=k).logits` in eval mode (up to float
    rounding): group cells by `group_positions`, stem conv + BatchNorm + ReLU per image, binding and
    bundling with the model's operating-point weight (C, k*C), trunk, average pool, unbinding with the N/k slot
    average, repeats of a partial group averaged, classifier.

    The cells are gathered item-major (item i of every group, for i = 0..k-1), each item's stem runs
    on its contiguous batch slice, and the k stem outputs are concatenated along channels into the
    (G, k*C, H, W) input of the binding convolution. The group-major alternative, a reshape of the
    (G*k, C, H, W) stem features into that input, is the same arithmetic, but runtimes that keep
    activations in channel-blocked layouts (OpenVINO's 8-channel blocks) must reorder the features to
    plain layout and back for it: 13% of the int8 time of zoo/mimoconv16-2-n4 at k = 4. Batch slices
    of the pixels and a channel concatenation of whole blocks need no reorder.
    """

    def __init__(self, model, k):
        super().__init__()
        from mimo_hf.models.mimoconv.binding import operating_point_weight

        config = model.config
        if config.num_superpositions % k:
            raise ValueError(f"k={k} is not an operating point of this model; allowed: {config.operating_points}")
        self.model = model.eval()
        self.k = int(k)
        self.capacity = config.num_superpositions
        self.num_features = config.num_features
        binding = model.mimoconv.binding
        # The binding weight of this k, computed once by the model's own function (the PyTorch
        # forward computes the same tensor on every call); a constant lets the quantizer treat the
        # binding as an ordinary int8 convolution.
        with torch.no_grad():
            weight = None if binding is None else operating_point_weight(binding.matrices(), self.k).detach().clone()
        self.register_buffer("binding_weight", weight, persistent=False)
        self.eval()

    def forward(self, pixel_values):  # (B, C, H, W) float32 -> (B, num_labels)
        trunk = self.model.mimoconv
        batch_size = pixel_values.shape[0]
        k = self.k
        positions = None
        if self.binding_weight is None:  # the plain Wide ResNet: N = k = 1, no binding
            bundles = F.relu(trunk.bn1(trunk.conv1(pixel_values)))  # (B, C, H, W)
        else:
            if k > 1:
                positions = group_positions(batch_size, k, pixel_values.device)  # (G*k,) group-major
                item_major = positions.reshape(-1, k).t().reshape(-1)  # cell (i, g) = item i of group g
                pixel_values = pixel_values.index_select(0, item_major)  # (k*G, C_in, H, W)
            cells = pixel_values.reshape(k, -1, *pixel_values.shape[1:])  # (k, G, C_in, H, W)
            stems = [F.relu(trunk.bn1(trunk.conv1(cells[i]))) for i in range(k)]  # k x (G, C, H, W)
            items = torch.cat(stems, dim=1)  # (G, k*C, H, W): the group's items side by side
            bundles = F.conv2d(items, self.binding_weight)  # (G, C, H, W)
        pooled = trunk.stages(bundles).mean(dim=(2, 3))  # (G, F)
        if trunk.unbind is None:
            features = pooled
        else:
            f = self.num_features
            slots = F.relu(trunk.unbind(pooled))  # (G, N*F); slot j holds item j mod k
            features = slots.reshape(-1, self.capacity // self.k, self.k, f).mean(dim=1).reshape(-1, f)  # (G*k, F)
        if positions is not None:
            features = average_repeats(features, positions, batch_size)  # (B, F)
        return self.model.classifier(features)


class MIMOFormerGraph(nn.Module):
    """`MIMOFormerForSequenceClassification` on grid (m, n) as a traceable module:
    (input_ids, attention_mask) -> logits, the same computation as `model(..., mimo_grid=(m, n)).logits`.

    The ONNX graph cannot raise, so the PyTorch forward's input checks (token ids in the vocabulary,
    a free last position for `pooling="cls"`) are the runtime's job (`mimo_hf.deploy.runtime`).
    """

    def __init__(self, model, grid):
        super().__init__()
        from mimo_hf.models.mimoformer.modeling_mimoformer import resolve_grid

        config = model.config
        if config.dual_encoder:
            raise NotImplementedError("ONNX export of dual-encoder (LRA Retrieval) checkpoints is not supported; "
                                      "export a single-encoder checkpoint")
        self.model = model.eval()
        self.grid = resolve_grid(config, grid)
        self.eval()

    def forward(self, input_ids, attention_mask):  # (B, L) int64 each -> (B, num_labels)
        encoder, config = self.model.mimoformer, self.model.config
        m, n = self.grid
        mask = attention_mask
        batch_size = input_ids.shape[0]
        # As the PyTorch forward: inputs shorter than the trained length are padded to it (padding is not
        # neutral in this model). Always padding, by 0 at the trained length, keeps the graph branch-free.
        extra = config.max_position_embeddings - input_ids.shape[1]
        pad = config.pad_token_id if config.pad_token_id is not None else 0
        input_ids = F.pad(input_ids, (0, extra), value=pad)
        mask = F.pad(mask, (0, extra), value=0)
        if config.pooling == "cls":
            cls = torch.full_like(input_ids[:, :1], config.cls_token_id)
            input_ids = torch.cat([cls, input_ids[:, :-1]], dim=1)
            mask = torch.cat([torch.ones_like(mask[:, :1]), mask[:, :-1]], dim=1)
        positions = None
        if m * n > 1:
            positions = group_positions(batch_size, m * n, input_ids.device)
            input_ids, mask = input_ids.index_select(0, positions), mask.index_select(0, positions)
        x = encoder.embeddings(input_ids)  # (B', L, d)
        for i in range(config.num_hidden_layers):
            x = encoder.layers[0 if config.tie_layer_weights else i](x, mask, (m, n))
        mask_f = mask.to(x.dtype).unsqueeze(-1)
        hidden = encoder.norm(x) * mask_f  # (B', L, d)
        if config.pooling == "mean":
            pooled = hidden.mean(dim=1)
        elif config.pooling == "masked_mean":
            pooled = hidden.sum(dim=1) / mask_f.sum(dim=1).clamp(min=1.0)
        else:
            pooled = hidden[:, 0]
        if positions is not None:
            pooled = average_repeats(pooled, positions, batch_size)  # (B, d)
        return self.model.classifier(pooled)
