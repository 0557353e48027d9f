"""Recommenders and RL algorithms (LAAC, LERL, baselines). Imports data, envs, llm and eval."""
