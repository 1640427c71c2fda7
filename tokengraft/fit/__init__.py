"""Fitting a transplant's new rows to the base model, with the body frozen.

Pure tensor functions (no loading, no files): :mod:`~tokengraft.fit.states` runs a decoder
body to its hidden states (final, or after the first ``k`` layers); :mod:`~tokengraft.fit.output`
fits output rows to cached final states (a convex problem: no backward through the body);
:mod:`~tokengraft.fit.hidden` fits input rows so that the body, reading the new tokens,
reproduces the base model's hidden states at byte-aligned positions. ``heal``'s ``fit`` mode
orchestrates them under a wall-clock budget.
"""
