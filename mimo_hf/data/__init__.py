"""Stage 1, data: images and their augmentation, tokenizers, the Long Range Arena tasks and the ListOps generator."""


class DataError(ValueError):
    """Data that cannot be used as given (a missing column, an image that does not decode, labels that do not
    match): the message says what to change. The command-line scripts print it as one line; it stays a
    ValueError for code that catches those."""
