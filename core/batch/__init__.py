"""Batch processing of a shoot (``emocap batch``): many recordings, one take each, on Ray.

- :mod:`core.batch.inputs`: which recordings the inputs name, and each one's take folder.
- :mod:`core.batch.settings`: the analysis and export settings every recording of a batch shares.
- :mod:`core.batch.work`: one recording's work (analyse into its take, then export), as a Ray
  worker runs it; the pipeline itself is the one of ``emocap analyze``.
- :mod:`core.batch.cluster`: start a local Ray instance (loopback only) or join a cluster.
- :mod:`core.batch.runner`: the recordings as Ray tasks: schedule, retry, collect, cancel.
- :mod:`core.batch.progress`: the overall bar and the machine-readable progress stream.
- :mod:`core.batch.summary`: per-recording results and the batch's summary.
- :mod:`core.batch.cli`: the ``emocap batch`` command.

The take folder stays the unit of work: a rerun, or Ray's retry of a task whose worker died,
resumes each take from its stored chunks (core/pipeline.py).
"""
