"""Model code, one folder per architecture; each folder runs alone as Hub remote code (torch, transformers, siblings)."""
