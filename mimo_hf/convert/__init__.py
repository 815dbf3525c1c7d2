"""Conversion of checkpoints trained with the authors' code into checkpoint folders."""
