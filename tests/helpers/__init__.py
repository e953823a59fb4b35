"""Importable helpers shared by the tests, imported as ``tests.helpers.<module>``.

Worker processes and Ray actors unpickle evaluators and models by reference, so
these live in real modules (the repository root must be on ``sys.path``, as it is
under ``python -m pytest``):

- ``codec``: every valid token sequence of a codec.
- ``controller``: spaces and an independent log-probability oracle for the controller tests.
- ``fake_search``: a fake search that drives callbacks as the tuner does.
- ``models``: symbolized model classes and the foundation issue's space.
- ``results``: a tiny module space whose evaluator "trains" weights to the reward
  (reading runs, keeping weights).
- ``tuner``: spaces, evaluators with injected faults, scripted algorithms, the
  driver of the SIGKILL tests (``python -m tests.helpers.tuner``).
"""
