"""Stage 4, the Hub: export of checkpoint folders, model cards, push configs, publishing."""
