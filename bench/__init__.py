"""riskmesh benchmarks: ``python -m bench`` runs them all and writes docs/benchmarks.md.

Each ``bench/bench_*.py`` script also runs on its own (``python bench/bench_query.py``)
and prints its figures beside baselines measured in the same run; its last line,
``FIGURES {json}``, is what the runner reads (see ``bench/benchlib.py``).
"""
