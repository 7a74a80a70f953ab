"""Measuring models on devices: the protocol (a leaf), device profiles, runners, and the campaign that
exports, runs and stores."""
