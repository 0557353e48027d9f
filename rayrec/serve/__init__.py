"""Ray Serve apps: the shared LLM planner (with its OpenAI-compatible route) and its client.

Import ``rayrec.serve.planner`` / ``rayrec.llm.planner_client`` directly; this package stays light so
that importing the client inside an EnvRunner does not pull FastAPI routes it never uses.
"""
