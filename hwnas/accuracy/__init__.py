"""Accuracy: data sets and splits, training, zero-cost proxies."""
