"""An independent re-implementation of the authors' MIMOFormer (ModelForSC / ModelForSCDual), for checking the converter.

Written from shared/spec/mimonets.md (sections 3 and 4) in plain torch, with the authors' module names,
so that ``state_dict()`` has exactly the section-4 keys (``model.transformer_{i}.mha.W_q.weight``,
``model.transformer_{i}.mha.attn.attn_fn.projection_matrix``, ``seq_classifer.mlpblock.0.weight``, ...).
It does NOT import mimo_hf, and its forward pass is written differently from ours (tokens before heads,
(B, L, H, D) layout, einsum over named grid axes instead of batched matmuls), straight from the formulas:

    Performer:  q, k scaled by D_h^-1/4;                 phi(x) = ReLU(P x D_h^-1/4) + 0.001
    FAVOR+S:    q, k scaled by (sqrt(D_h) * M * N)^-1/2;  the same phi
    padded keys and values are zeroed before the feature map (a padded key still adds phi(0) = 0.001)
    qs_n = sum_m a_mn q_mn,  ks_m = sum_n a_mn k_mn,  vs_m = sum_n a_mn v_mn
    A = sum_m sum_t phi(ks_mt) vs_mt^T
    att.:      out_mn = a_mn * phi(qs_n)^T A / phi(qs_n)^T sum_t phi(ks_mt)
    att.+MLP:  out_n  = phi(qs_n)^T A / phi(qs_n)^T sum_m sum_t phi(ks_mt); the residual stream is bundled
               as xs_n = sum_m e_mn x_mn, W_o / LN2 / MLP run on xs_n, and x_mn = e_mn * xs_n at the end.

Like the authors' code (and unlike ours) it does not zero padded queries nor, in att.+MLP, the padded
positions of the residual stream before bundling: with padding inside a bundle the two models differ
for "mimo_att" / "mimo_att_mlp" (by design, see mimo_hf's modeling_mimoformer.py); without padding,
and for "softmax" / "performer" in any case, they must agree.
"""

import math

import torch
from torch import nn

KERNEL_EPSILON = 0.001
ATTENTION_TYPES = ("softmax", "performer", "mimo_att", "mimo_att_mlp")


def phi(x, projection):
    """ReLU random features of the spec: x (..., D) -> ReLU(P x D^-1/4) + 0.001, (..., R)."""
    return torch.relu(torch.einsum("...d,rd->...r", x * x.shape[-1] ** -0.25, projection)) + KERNEL_EPSILON


def sin_cos_table(length, dim, dtype):
    """The Transformer's fixed table: channel 2i holds sin(p / 10000^(2i/dim)), channel 2i+1 the cos."""
    angles = torch.outer(torch.arange(length, dtype=torch.float64),
                         10000.0 ** (-torch.arange(0, dim, 2, dtype=torch.float64) / dim))  # (L, dim/2)
    return torch.stack([angles.sin(), angles.cos()], dim=-1).reshape(length, dim).to(dtype)


# ---------------------------------------------------------------------------------------------------
# Modules (authors' names)
# ---------------------------------------------------------------------------------------------------


class Embeddings(nn.Module):
    def __init__(self, vocab_size, dim, max_len):
        super().__init__()
        self.dim = dim
        self.word_embeddings = nn.Embedding(vocab_size, dim)
        if max_len is not None:  # learned positions; None: the fixed sin/cos table
            self.position_embeddings = nn.Embedding(max_len, dim)
        self.dropout = nn.Dropout(0.1)

    def forward(self, input_ids):  # (B, L) -> (B, L, d)
        length = input_ids.shape[1]
        tokens = self.word_embeddings(input_ids)
        if hasattr(self, "position_embeddings"):
            positions = self.position_embeddings(torch.arange(length))
        else:
            positions = sin_cos_table(length, self.dim, tokens.dtype)
        return self.dropout(tokens + positions[None])


class SoftmaxAttention(nn.Module):
    def forward(self, q, k, v, mask, grid):  # (B, L, H, D) each, mask (B, L)
        scores = torch.einsum("blhd,bthd->bhlt", q, k) / math.sqrt(q.shape[-1])
        scores = scores - 1e6 * (1 - mask)[:, None, None, :]  # padded keys get no weight
        return torch.einsum("bhlt,bthd->blhd", scores.softmax(dim=-1), v)


class FastAttention(nn.Module):
    """performer_pytorch's module, as the authors' Performer wraps it (attn.attn_fn): holds P only."""

    def __init__(self, num_features, head_dim):
        super().__init__()
        self.register_buffer("projection_matrix", torch.zeros(num_features, head_dim))


class PerformerAttention(nn.Module):
    def __init__(self, num_features, head_dim):
        super().__init__()
        self.attn_fn = FastAttention(num_features, head_dim)

    def forward(self, q, k, v, mask, grid):
        p = self.attn_fn.projection_matrix
        keep = mask[:, :, None, None]
        scale = q.shape[-1] ** -0.25
        fq = phi(q * scale, p)  # (B, L, H, R)
        fk = phi(k * scale * keep, p)  # padded keys zeroed BEFORE the feature map
        context = torch.einsum("bthr,bthd->bhrd", fk, v * keep)
        numerator = torch.einsum("blhr,bhrd->blhd", fq, context)
        denominator = torch.einsum("blhr,bthr->blh", fq, fk)
        return numerator / denominator[..., None]


class FavorSAttention(nn.Module):
    """FAVOR+S; with ``dim`` it is the att.+MLP module, whose output stays superposed (one row per n)."""

    def __init__(self, num_features, head_dim, m, n, dim=None):
        super().__init__()
        self.register_buffer("projection_matrix", torch.zeros(num_features, head_dim))
        self.register_buffer("bindings", torch.zeros(1, m, n, 1, 1, head_dim))
        self.superposed = dim is not None
        if self.superposed:
            self.register_buffer("bindings_embedding", torch.zeros(1, m, n, 1, dim))

    def forward(self, q, k, v, mask, grid):
        m, n = grid
        b, length, h, d = q.shape
        g = b // (m * n)
        a = self.bindings[0, :m, :n, 0, 0]  # (m, n, D)
        p = self.projection_matrix
        keep = mask[:, :, None, None]
        scale = (math.sqrt(d) * m * n) ** -0.5
        grid_shape = (g, m, n, length, h, d)
        q = (q * scale).reshape(grid_shape)
        k = (k * scale * keep).reshape(grid_shape)
        v = (v * keep).reshape(grid_shape)
        qs = torch.einsum("gmnlhd,mnd->gnlhd", q, a)  # query bundles over m
        ks = torch.einsum("gmnlhd,mnd->gmlhd", k, a)  # key bundles over n
        vs = torch.einsum("gmnlhd,mnd->gmlhd", v, a)
        fq, fk = phi(qs, p), phi(ks, p)  # (g, n, L, H, R), (g, m, L, H, R)
        big_a = torch.einsum("gmthr,gmthd->ghrd", fk, vs)  # A, summed over m and t
        numerator = torch.einsum("gnlhr,ghrd->gnlhd", fq, big_a)
        if self.superposed:
            denominator = torch.einsum("gnlhr,gmthr->gnlh", fq, fk)  # one normaliser per n
            return numerator / denominator[..., None]  # (g, n, L, H, D)
        denominator = torch.einsum("gnlhr,gmthr->gmnlh", fq, fk)  # per (m, n)
        out = numerator[:, None] / denominator[..., None] * a[None, :, :, None, None, :]  # unbinding
        return out.reshape(b, length, h, d)


class Attention(nn.Module):
    def __init__(self, arch):
        super().__init__()
        dim, heads, head_dim = arch["dim"], arch["heads"], arch["head_dim"]
        self.heads, self.head_dim = heads, head_dim
        self.W_q = nn.Linear(dim, heads * head_dim)
        self.W_k = nn.Linear(dim, heads * head_dim)
        self.W_v = nn.Linear(dim, heads * head_dim)
        kind, r = arch["attention_type"], arch["num_random_features"]
        if kind == "softmax":
            self.attn = SoftmaxAttention()
        elif kind == "performer":
            self.attn = PerformerAttention(r, head_dim)
        else:
            extra = dim if kind == "mimo_att_mlp" else None
            self.attn = FavorSAttention(r, head_dim, arch["m"], arch["n"], extra)
        self.ff = nn.Linear(heads * head_dim, dim)

    def forward(self, x, mask, grid):
        split = lambda t: t.reshape(*t.shape[:-1], self.heads, self.head_dim)  # noqa: E731
        out = self.attn(split(self.W_q(x)), split(self.W_k(x)), split(self.W_v(x)), mask, grid)
        return self.ff(out.flatten(-2))  # (..., L, H*D) -> (..., L, d)


class Transformer(nn.Module):
    """One pre-LN block; for att.+MLP the residual stream is bundled and retrieved around it."""

    def __init__(self, arch):
        super().__init__()
        self.norm1 = nn.LayerNorm(arch["dim"])
        self.mha = Attention(arch)
        self.dropout1 = nn.Dropout(0.1)
        self.norm2 = nn.LayerNorm(arch["dim"])
        self.mlpblock = nn.Sequential(
            nn.Linear(arch["dim"], arch["mlp_dim"]), nn.ReLU(), nn.Dropout(0.1),
            nn.Linear(arch["mlp_dim"], arch["dim"]), nn.Dropout(0.1),
        )

    def forward(self, x, mask, grid):
        attn = self.mha.attn
        if not getattr(attn, "superposed", False):
            x = x + self.dropout1(self.mha(self.norm1(x), mask, grid))
            return x + self.mlpblock(self.norm2(x))
        m, n = grid
        b, length, d = x.shape
        e = attn.bindings_embedding[0, :m, :n, 0]  # (m, n, d)
        xs = torch.einsum("gmnld,mnd->gnld", x.reshape(b // (m * n), m, n, length, d), e)  # residual bundles
        xs = xs + self.dropout1(self.mha(self.norm1(x), mask, grid))
        xs = xs + self.mlpblock(self.norm2(xs))
        return torch.einsum("gnld,mnd->gmnld", xs, e).reshape(b, length, d)  # retrieval: e_mn * xs_n


class Model(nn.Module):
    def __init__(self, arch):
        super().__init__()
        self.num_layers, self.tied = arch["layers"], arch["tied"]
        self.embeddings = Embeddings(arch["vocab_size"], arch["dim"], arch["max_len"])
        if self.tied:
            self.transformer = Transformer(arch)
        else:
            for i in range(self.num_layers):
                setattr(self, f"transformer_{i}", Transformer(arch))
        self.norm = nn.LayerNorm(arch["dim"])

    def forward(self, input_ids, mask, grid):
        x = self.embeddings(input_ids)
        for i in range(self.num_layers):
            x = (self.transformer if self.tied else getattr(self, f"transformer_{i}"))(x, mask, grid)
        return self.norm(x) * mask[:, :, None]


class SCHead(nn.Module):
    def __init__(self, in_features, arch):
        super().__init__()
        self.mlpblock = nn.Sequential(
            nn.Linear(in_features, arch["head_dim_hidden"]), nn.ReLU(), nn.Linear(arch["head_dim_hidden"], arch["classes"]),
        )


class ReferenceForSC(nn.Module):
    """ModelForSC (``dual=False``) or ModelForSCDual (``dual=True``)."""

    def __init__(self, arch):
        super().__init__()
        self.arch = arch
        self.model = Model(arch)
        self.seq_classifer = SCHead(arch["dim"] * (4 if arch["dual"] else 1), arch)  # sic

    def encode(self, input_ids, mask, grid):
        mask = mask.to(self.model.norm.weight.dtype)
        if self.arch["pooling"] == "CLS":
            # Prepend [CLS] = vocab_size - 1 and drop the last position, tokens and mask alike.
            cls = torch.full_like(input_ids[:, :1], self.arch["vocab_size"] - 1)
            input_ids = torch.cat([cls, input_ids[:, :-1]], dim=1)
            mask = torch.cat([torch.ones_like(mask[:, :1]), mask[:, :-1]], dim=1)
        tokens = self.model(input_ids, mask, grid)  # (B, L, d), padded positions zero
        if self.arch["pooling"] == "CLS":
            return tokens[:, 0]
        return tokens.mean(dim=1)  # "MEAN": over all L positions, padding included in the count

    def forward(self, input_ids, mask, input_ids_2=None, mask_2=None, grid=None):
        """Logits (B, classes); B must be a multiple of m * n (the authors' reshape)."""
        grid = grid or (self.arch.get("m", 1), self.arch.get("n", 1))
        if input_ids.shape[0] % (grid[0] * grid[1]):
            raise ValueError(f"batch {input_ids.shape[0]} is not a multiple of the grid {grid}")
        u = self.encode(input_ids, mask, grid)
        if not self.arch["dual"]:
            return self.seq_classifer.mlpblock(u)
        v = self.encode(input_ids_2, mask_2, grid)
        return self.seq_classifer.mlpblock(torch.cat([u, v, u * v, u - v], dim=-1))


# ---------------------------------------------------------------------------------------------------
# Random models
# ---------------------------------------------------------------------------------------------------


def make_arch(*, attention_type, m=1, n=1, vocab_size=12, dim=8, heads=2, head_dim=4, mlp_dim=12, layers=2,
              tied=False, max_len=10, num_random_features=6, pooling="MEAN", classes=3, head_dim_hidden=5, dual=False):
    """The authors' hyper-parameters of a tiny model (``max_len=None``: sin/cos positions)."""
    assert attention_type in ATTENTION_TYPES
    return dict(attention_type=attention_type, m=m, n=n, vocab_size=vocab_size, dim=dim, heads=heads, head_dim=head_dim,
                mlp_dim=mlp_dim, layers=layers, tied=tied, max_len=max_len, num_random_features=num_random_features,
                pooling=pooling, classes=classes, head_dim_hidden=head_dim_hidden, dual=dual)


@torch.no_grad()
def random_reference_model(arch, seed=0):
    """A ReferenceForSC with random weights far from any symmetric initialisation (LayerNorms included),
    Gaussian projections and bipolar keys, in eval mode."""
    gen = torch.Generator().manual_seed(seed)
    model = ReferenceForSC(arch)
    for name, tensor in model.state_dict().items():
        if name.endswith("bindings") or name.endswith("bindings_embedding"):
            tensor.copy_(torch.randint(0, 2, tensor.shape, generator=gen) * 2.0 - 1.0)
        elif name.endswith("projection_matrix"):
            tensor.copy_(torch.randn(tensor.shape, generator=gen))
        elif ("norm" in name) and name.endswith("weight"):
            tensor.copy_(1.0 + 0.3 * torch.randn(tensor.shape, generator=gen))
        elif name.endswith("bias"):
            tensor.copy_(0.2 * torch.randn(tensor.shape, generator=gen))
        elif tensor.dim() == 2 and "embeddings" not in name:
            tensor.copy_(torch.randn(tensor.shape, generator=gen) / tensor.shape[1] ** 0.5)
        else:
            tensor.copy_(0.5 * torch.randn(tensor.shape, generator=gen))
    return model.eval()
