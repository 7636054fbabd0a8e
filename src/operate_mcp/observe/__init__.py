"""Observation: what happened around an execution and whether it is what was expected.

The cluster before and after (`context.py`), outcome checks run as data (`outcomes.py`), log parsing and
error templates (`logparse.py`, `templates.py`), anomaly rules and learned baselines (`anomalies.py`,
`baselines.py`). It reads the cluster (kube) and past runs (records); `workflows/observe.py` wires it
after every execution.
"""
