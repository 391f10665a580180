"""Training of the micro-expression refiner beyond a single clip (pretraining on macro-expression
video); the per-clip self-supervised training runs inside the pipeline (core/microexpr/)."""
