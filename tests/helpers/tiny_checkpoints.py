"""Tiny random-weight checkpoint folders for tests that need a task the committed zoo does not cover.

The zoo's LRA Image MIMOFormers left it (they stayed at chance, issue 10), but the image route of the
MIMOFormer evaluation (pixels as tokens, no tokenizer, data from ../shared/data/cifar10) is still a
product path; these folders exercise it at a size that runs in seconds.
"""

import json
from pathlib import Path


def lra_image_checkpoint(folder, attention_type="mimo_att_mlp", grid=(2, 2), seed=0):
    """A checkpoint folder (config, weights, training_args.json naming the image task) of a tiny
    MIMOFormer on LRA Image: 1,024 grey-level tokens, 10 classes, no tokenizer. `attention_type`
    "performer" gives the 1x1 baseline."""
    import torch

    from mimo_hf.data.labels import CIFAR10
    from mimo_hf.hub.export import save_hub_folder
    from mimo_hf.models.mimoformer.configuration_mimoformer import MIMOFormerConfig
    from mimo_hf.models.mimoformer.modeling_mimoformer import MIMOFormerForSequenceClassification

    m, n = (1, 1) if attention_type == "performer" else grid
    torch.manual_seed(seed)
    config = MIMOFormerConfig(attention_type=attention_type, mimo_m=m, mimo_n=n, num_random_features=8, vocab_size=256,
                              max_position_embeddings=1024, hidden_size=16, num_attention_heads=2, head_dim=8,
                              intermediate_size=16, num_hidden_layers=1, pad_token_id=0, pooling="mean",
                              id2label=dict(enumerate(CIFAR10)), label2id={name: i for i, name in enumerate(CIFAR10)})
    folder = Path(folder)
    save_hub_folder(MIMOFormerForSequenceClassification(config).eval(), folder, code=False)
    (folder / "training_args.json").write_text(json.dumps({"task": "image", "data_dir": None, "max_length": 1024}))
    return folder
