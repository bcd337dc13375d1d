"""Corpus generation, tokenizer training and training loops for the shipped models."""
