"""MIMOFormer: a pre-LN Transformer encoder (Long Range Arena setting) that attends in superposition.

Forward pass for a batch of B sequences of length L on an m x n grid (g = m * n inputs per group):

    input_ids (B, L), attention_mask (B, L)
      -> group consecutive inputs in runs of g (a partial last group is filled by cycling its members)
      -> token + position embeddings, dropout                          (B', L, d), B' = ceil(B / g) * g
      -> blocks, each  x = x + Drop(Attn(LN1(x)));  x = x + MLP(LN2(x))
           attention "softmax" / "performer": per input
           "mimo_att":     Q, K, V, W_o per input; FAVOR+S core once per group
           "mimo_att_mlp": Q, K, V per input; the core's output stays superposed; the residual
                           stream is bundled with keys e_mn, W_o + LN2 + MLP run on the n bundles,
                           and each input is read back as e_mn * bundle at the end of the block
      -> final LN, times the attention mask, pooling                  (B', d)
      -> average the repeats of a partial group's members              (B, d)
      -> head Linear(d, c) - ReLU - Linear(c, labels)                  (B, num_labels)

Spec: ``shared/spec/mimonets.md`` section 3. This file runs as Hub remote code, so it imports only
torch, transformers and its sibling files.
"""

import math
from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput
from transformers.utils import ModelOutput

from .configuration_mimoformer import MIMOFormerConfig, check_default_grid, check_grid
from .favor import bipolar_keys, fused_favor_attention, orthogonal_gaussian_projection


@dataclass
class MIMOFormerModelOutput(ModelOutput):
    """Per-input encodings of MIMOFormer.

    Args:
        pooler_output (`torch.FloatTensor` of shape `(batch_size, hidden_size)`): pooled encoding per input.
        last_hidden_state (`torch.FloatTensor` of shape `(batch_size, sequence_length, hidden_size)`):
            final LayerNorm output times the attention mask, per input (repeats of a partial group's
            members averaged).
    """

    pooler_output: Optional[torch.FloatTensor] = None
    last_hidden_state: Optional[torch.FloatTensor] = None


def group_layout(batch_size, group_size):
    """Which input fills each position of the ceil(B / g) * g grid cells, or None if g divides B.

    Groups are consecutive runs of g inputs, cell (m, n) of a group holding its input m * n_grid + n.
    A partial last group of r < g inputs is filled by cycling its own members (cell i holds member
    i mod r), so no input is dropped and no input borrows another group's sequences.
    """
    full = batch_size - batch_size % group_size
    if full == batch_size:
        return None
    tail = full + torch.arange(group_size) % (batch_size - full)
    return torch.cat([torch.arange(full), tail])


def sinusoidal_positions(num_positions, dim):
    """The Transformer's fixed sin/cos table (num_positions, dim)."""
    position = torch.arange(num_positions, dtype=torch.float32).unsqueeze(1)
    frequency = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    table = torch.zeros(num_positions, dim)
    table[:, 0::2] = torch.sin(position * frequency)
    table[:, 1::2] = torch.cos(position * frequency)
    return table


class MIMOFormerEmbeddings(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size)
        if config.position_embedding_type == "learned":
            self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        else:
            # Persistent so that transformers v5 (which builds models on the meta device and loads
            # only saved tensors) restores it; it is rebuilt in _init_weights for fresh models.
            self.register_buffer("sinusoidal_table", sinusoidal_positions(config.max_position_embeddings, config.hidden_size))
            self.position_embeddings = None
        self.dropout = nn.Dropout(config.embedding_dropout_prob)

    def forward(self, input_ids):  # (B, L) -> (B, L, d)
        length = input_ids.shape[1]
        positions = self.position_embeddings.weight[:length] if self.position_embeddings is not None else self.sinusoidal_table[:length]
        return self.dropout(self.word_embeddings(input_ids) + positions)


class MIMOFormerAttention(nn.Module):
    """Multi-head attention with projections d -> H * D_h (with bias) and output W_o: H * D_h -> d."""

    def __init__(self, config):
        super().__init__()
        self.config = config
        inner = config.num_attention_heads * config.head_dim
        self.query = nn.Linear(config.hidden_size, inner)
        self.key = nn.Linear(config.hidden_size, inner)
        self.value = nn.Linear(config.hidden_size, inner)
        self.output = nn.Linear(inner, config.hidden_size)
        if config.attention_type != "softmax":
            self.register_buffer("projection_matrix", torch.zeros(config.num_random_features, config.head_dim))
        if config.attention_type in ("mimo_att", "mimo_att_mlp"):
            self.register_buffer("bindings", torch.zeros(config.mimo_m, config.mimo_n, config.head_dim))

    def reset_buffers(self):
        if hasattr(self, "projection_matrix"):
            self.projection_matrix.copy_(orthogonal_gaussian_projection(*self.projection_matrix.shape))
        if hasattr(self, "bindings"):
            self.bindings.copy_(bipolar_keys(*self.bindings.shape))

    def core(self, hidden, mask, grid):
        """Attention without W_o.

        hidden (B, L, d), mask (B, L) with B = G * m * n -> (B, L, H * D_h) per input, or for
        "mimo_att_mlp" (G, n, L, H * D_h), the superposed output of each query bundle.
        """
        b, length, d_model = hidden.shape
        h, dh = self.config.num_attention_heads, self.config.head_dim
        kind = self.config.attention_type
        if kind == "softmax":
            q, k, v = (proj(hidden).view(b, length, h, dh).transpose(1, 2) for proj in (self.query, self.key, self.value))
            keep = mask[:, None, None, :].bool()  # (B, 1, 1, L): attend to real tokens only
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=keep)  # (B, H, L, D)
            return out.transpose(1, 2).reshape(b, length, h * dh)
        # FAVOR+ / FAVOR+S. Padded queries, keys and values are zero (the authors zero keys and
        # values; zeroing queries too keeps padding from disturbing the other inputs of a bundle).
        m, n = grid
        keys = None if kind == "performer" else self.bindings[:m, :n]
        out = fused_favor_attention(hidden.view(-1, m, n, length, d_model), mask.view(-1, m, n, length), self.query,
                                    self.key, self.value, self.projection_matrix, self.config.kernel, keys, h,
                                    keep_superposed=kind == "mimo_att_mlp")
        if kind == "mimo_att_mlp":
            return out  # (G, n, L, H * D)
        return out.view(b, length, h * dh)


class MIMOFormerLayer(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config
        self.norm1 = nn.LayerNorm(config.hidden_size)
        self.attention = MIMOFormerAttention(config)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.norm2 = nn.LayerNorm(config.hidden_size)
        self.mlp = nn.Sequential(
            nn.Linear(config.hidden_size, config.intermediate_size),
            nn.ReLU(),
            nn.Dropout(config.hidden_dropout_prob),
            nn.Linear(config.intermediate_size, config.hidden_size),
            nn.Dropout(config.hidden_dropout_prob),
        )
        if config.attention_type == "mimo_att_mlp":
            self.register_buffer("bindings_embedding", torch.zeros(config.mimo_m, config.mimo_n, config.hidden_size))

    def reset_buffers(self):
        if hasattr(self, "bindings_embedding"):
            self.bindings_embedding.copy_(bipolar_keys(*self.bindings_embedding.shape))

    def forward(self, x, mask, grid):  # x (B, L, d), mask (B, L) -> (B, L, d)
        attended = self.attention.core(self.norm1(x), mask, grid)
        if self.config.attention_type != "mimo_att_mlp":
            x = x + self.dropout(self.attention.output(attended))
            return x + self.mlp(self.norm2(x))
        m, n = grid
        b, length, d = x.shape
        e = self.bindings_embedding[:m, :n, None, :]  # (m, n, 1, d)
        # Padded positions are zeroed before bundling so that padding never leaks into other inputs.
        x = x * mask.unsqueeze(-1).to(x.dtype)
        bundles = (x.view(-1, m, n, length, d) * e).sum(dim=1)  # (G, n, L, d): residual bundled over m
        bundles = bundles + self.dropout(self.attention.output(attended))
        bundles = bundles + self.mlp(self.norm2(bundles))
        return (bundles.unsqueeze(1) * e).reshape(b, length, d)  # each input read back as e_mn * bundle_n


def _load_with_file_errors(load, name_or_path):
    """Run `load()`; a weights file that cannot be read is reported with its path and what to do.

    safetensors says only "header too large" (or "invalid JSON in header") for a truncated, corrupt or
    non-safetensors file, without naming it; the path is what a user needs to find and replace it.
    (The same function as in modeling_mimoconv.py: each model folder runs alone as remote code.)
    """
    try:
        return load()
    except Exception as error:  # safetensors' SafetensorError derives from Exception only
        if type(error).__name__ != "SafetensorError" and "safetensors" not in type(error).__module__:
            raise
        import os

        where = str(name_or_path)
        path = os.path.join(where, "model.safetensors") if os.path.isdir(where) else f"model.safetensors of {where}"
        raise OSError(
            f"{path}: cannot read the weights ({error}): the file is corrupt, truncated or not a safetensors "
            "file; download it again (or re-export the folder)"
        ) from error


class MIMOFormerPreTrainedModel(PreTrainedModel):
    config_class = MIMOFormerConfig
    base_model_prefix = "mimoformer"
    main_input_name = "input_ids"

    def __init__(self, config, *args, **kwargs):
        # Overrides given at load (from_pretrained kwargs, a pipeline's model_kwargs) bypass the
        # config's __init__; check them here, before any weights are read.
        config.default_grid = check_default_grid(config.mimo_m, config.mimo_n, getattr(config, "default_grid", None))
        super().__init__(config, *args, **kwargs)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs):
        load = super().from_pretrained
        return _load_with_file_errors(lambda: load(pretrained_model_name_or_path, *args, **kwargs),
                                      pretrained_model_name_or_path)

    @torch.no_grad()
    def _init_weights(self, module):
        # The LRA reference initialisation: embeddings N(0, 0.02), PyTorch-default linear layers, unit
        # LayerNorms; the fixed random buffers (keys, projections) are drawn here and saved with the weights.
        if isinstance(module, nn.Linear):
            module.reset_parameters()
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, std=0.02)
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
        elif isinstance(module, (MIMOFormerAttention, MIMOFormerLayer)):
            module.reset_buffers()
        elif isinstance(module, MIMOFormerEmbeddings) and module.position_embeddings is None:
            module.sinusoidal_table.copy_(sinusoidal_positions(*module.sinusoidal_table.shape))


def resolve_grid(config, mimo_grid):
    if config.attention_type in ("softmax", "performer"):
        if mimo_grid is not None and tuple(mimo_grid) != (1, 1):
            raise ValueError(f"attention_type={config.attention_type!r} runs one input at a time; mimo_grid must be None or (1, 1)")
        return 1, 1
    return check_grid(config, mimo_grid)


def check_inputs(config, input_ids, attention_mask):
    if not isinstance(input_ids, torch.Tensor) or input_ids.dim() != 2:
        shape = tuple(input_ids.shape) if isinstance(input_ids, torch.Tensor) else type(input_ids).__name__
        raise ValueError(f"input_ids must be a (batch, sequence_length) tensor, got {shape}")
    if input_ids.is_floating_point() or input_ids.dtype == torch.bool:
        # Not cast: a float here is usually a pixel or feature tensor passed by mistake, not token ids.
        raise TypeError(f"input_ids must hold integer token ids (torch.long), got dtype {input_ids.dtype}")
    if input_ids.shape[0] == 0 or input_ids.shape[1] == 0:
        raise ValueError(f"input_ids is empty: shape {tuple(input_ids.shape)}")
    if input_ids.shape[1] > config.max_position_embeddings:
        raise ValueError(
            f"sequence length {input_ids.shape[1]} exceeds max_position_embeddings={config.max_position_embeddings}"
        )
    low, high = int(input_ids.min()), int(input_ids.max())
    if low < 0 or high >= config.vocab_size:
        raise ValueError(f"token ids must lie in [0, {config.vocab_size}), got values in [{low}, {high}]")
    if attention_mask is None:
        return torch.ones_like(input_ids)
    if attention_mask.shape != input_ids.shape:
        raise ValueError(f"attention_mask has shape {tuple(attention_mask.shape)} but input_ids has {tuple(input_ids.shape)}")
    return attention_mask


class MIMOFormerModel(MIMOFormerPreTrainedModel):
    """MIMOFormer encoder without a head: a pooled encoding per input (B, d)."""

    def __init__(self, config):
        super().__init__(config)
        self.embeddings = MIMOFormerEmbeddings(config)
        count = 1 if config.tie_layer_weights else config.num_hidden_layers
        self.layers = nn.ModuleList([MIMOFormerLayer(config) for _ in range(count)])
        self.norm = nn.LayerNorm(config.hidden_size)
        self.post_init()

    def get_input_embeddings(self):
        return self.embeddings.word_embeddings

    def set_input_embeddings(self, value):
        self.embeddings.word_embeddings = value

    def forward(self, input_ids, attention_mask=None, mimo_grid=None, return_dict=None, **kwargs):
        r"""
        mimo_grid (`tuple(int, int)`, *optional*):
            Grid (m, n) to run at, m <= mimo_m and n <= mimo_n (e.g. (2, 2) on a 4x4 model); m * n
            inputs share one attention computation. Defaults to the full grid.
        """
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        m, n = resolve_grid(self.config, mimo_grid)
        mask = check_inputs(self.config, input_ids, attention_mask)
        batch_size = input_ids.shape[0]

        length = input_ids.shape[1]
        trained = self.config.max_position_embeddings
        if length < trained:
            # Checkpoints are trained on inputs padded to max_position_embeddings, and padding is not
            # neutral in the authors' model: the ReLU kernel gives every padded key phi(0) = 0.001 in the
            # attention normaliser, and mean pooling divides by the padded length. Shorter inputs (a
            # pipeline's plain or longest padding) are therefore padded to the trained length here, so
            # a result never depends on how much padding the caller asked for.
            pad = self.config.pad_token_id if self.config.pad_token_id is not None else 0
            input_ids = F.pad(input_ids, (0, trained - length), value=pad)
            mask = F.pad(mask, (0, trained - length), value=0)

        if self.config.pooling == "cls":
            # The authors' layout: prepend [CLS] = vocab_size - 1 and drop the last position. Refuse
            # rather than silently drop a real token.
            if bool(mask[:, -1].any()):
                rows = torch.nonzero(mask[:, -1]).flatten().tolist()
                raise ValueError(
                    f"pooling='cls' drops the last position, but inputs {rows[:10]} have a real token there; "
                    "pad every input with at least one [PAD] token"
                )
            cls = torch.full_like(input_ids[:, :1], self.config.cls_token_id)
            input_ids = torch.cat([cls, input_ids[:, :-1]], dim=1)
            mask = torch.cat([torch.ones_like(mask[:, :1]), mask[:, :-1]], dim=1)

        positions = group_layout(batch_size, m * n)
        if positions is not None:
            positions = positions.to(input_ids.device)
            input_ids, mask = input_ids[positions], mask[positions]  # (B', L)

        x = self.embeddings(input_ids)  # (B', L, d)
        for i in range(self.config.num_hidden_layers):
            x = self.layers[0 if self.config.tie_layer_weights else i](x, mask, (m, n))
        mask_f = mask.to(x.dtype).unsqueeze(-1)  # (B', L, 1)
        hidden = self.norm(x) * mask_f  # (B', L, d)

        if self.config.pooling == "mean":
            pooled = hidden.mean(dim=1)  # padded positions count in the denominator (authors)
        elif self.config.pooling == "masked_mean":
            pooled = hidden.sum(dim=1) / mask_f.sum(dim=1).clamp(min=1.0)
        else:
            pooled = hidden[:, 0]

        if positions is not None:
            # Average the repeats of the partial group's members back into one row per input.
            counts = torch.bincount(positions, minlength=batch_size).to(x.dtype)  # (B,)
            pooled = pooled.new_zeros(batch_size, pooled.shape[1]).index_add_(0, positions, pooled) / counts[:, None]
            hidden = hidden.new_zeros(batch_size, *hidden.shape[1:]).index_add_(0, positions, hidden) / counts[:, None, None]

        hidden = hidden[:, :length]  # the caller's positions (the rest is internal padding, all zero)
        if not return_dict:
            return (pooled, hidden)
        return MIMOFormerModelOutput(pooler_output=pooled, last_hidden_state=hidden)


class MIMOFormerClassificationHead(nn.Module):
    """Linear(in, c) - ReLU - Linear(c, labels), the LRA head."""

    def __init__(self, in_features, config):
        super().__init__()
        self.mlpblock = nn.Sequential(
            nn.Linear(in_features, config.classifier_hidden_size),
            nn.ReLU(),
            nn.Linear(config.classifier_hidden_size, config.num_labels),
        )

    def forward(self, features):
        return self.mlpblock(features)


def classification_loss(logits, labels):
    if labels is None:
        return None
    if labels.shape[0] != logits.shape[0]:
        raise ValueError(f"labels has {labels.shape[0]} rows but the batch has {logits.shape[0]} inputs")
    labels = labels.to(logits.device)
    return F.cross_entropy(logits, labels if labels.is_floating_point() else labels.long())


class MIMOFormerForSequenceClassification(MIMOFormerPreTrainedModel):
    """MIMOFormer with the LRA classification head: per-input logits and loss.

    With `config.dual_encoder` (LRA Retrieval) it encodes two documents with the same encoder and
    classifies [u, v, u*v, u-v] of their pooled encodings u, v.
    """

    def __init__(self, config):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.mimoformer = MIMOFormerModel(config)
        in_features = (4 if config.dual_encoder else 1) * config.hidden_size
        self.classifier = MIMOFormerClassificationHead(in_features, config)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, labels=None, mimo_grid=None, input_ids_2=None,
                attention_mask_2=None, return_dict=None, **kwargs):
        r"""
        labels (`torch.LongTensor` of shape `(batch_size,)`, *optional*): class indices for the loss.
        mimo_grid (`tuple(int, int)`, *optional*): grid (m, n) to run at; defaults to the full grid.
        input_ids_2, attention_mask_2: the second document of each pair (dual encoder only).
        Extra tokenizer outputs such as `token_type_ids` are accepted and ignored.
        """
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        features = self.mimoformer(input_ids, attention_mask=attention_mask, mimo_grid=mimo_grid, return_dict=True).pooler_output
        if self.config.dual_encoder:
            if input_ids_2 is None:
                raise ValueError("this is a dual encoder (config.dual_encoder=True): pass both input_ids and input_ids_2")
            if input_ids_2.shape[0] != input_ids.shape[0]:
                raise ValueError(f"input_ids has {input_ids.shape[0]} rows but input_ids_2 has {input_ids_2.shape[0]}")
            v = self.mimoformer(input_ids_2, attention_mask=attention_mask_2, mimo_grid=mimo_grid, return_dict=True).pooler_output
            features = torch.cat([features, v, features * v, features - v], dim=-1)  # (B, 4d)
        elif input_ids_2 is not None:
            raise ValueError("input_ids_2 is only accepted by dual encoders (config.dual_encoder=True)")
        logits = self.classifier(features)  # (B, num_labels)
        loss = classification_loss(logits, labels)
        if not return_dict:
            return (logits,) if loss is None else (loss, logits)
        return SequenceClassifierOutput(loss=loss, logits=logits)
