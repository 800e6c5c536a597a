"""Prefect flows and deployments of the Wave2Midi2Wave DAG."""
