"""Fitting face models to observed landmarks: identity per clip, expression and pose per frame."""
