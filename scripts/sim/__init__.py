"""The conversation simulator (issue 10): scripted buyers with goals talk to the real Rasa server and the
platform sandbox; ``sim.metrics`` judges the conversations, ``sim.report`` writes nlu/reports/simulation.md,
``sim.app.run`` ties them together (``scripts/simulate.py`` is the command line)."""
