"""rayrec: LLM-enhanced reinforcement-learning recommenders that train, tune and serve on Ray."""

__version__ = "0.1.0"
