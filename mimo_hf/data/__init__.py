"""Stage 1, data: images and their augmentation, tokenizers, the Long Range Arena tasks and the ListOps generator."""
