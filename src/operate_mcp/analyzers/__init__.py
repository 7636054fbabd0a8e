"""Analyzers: rules in code that read Kubernetes objects and say what is wrong, citing their evidence.

Pure: objects in, findings out (model/finding.py); no kubectl, no files, no clock. The caller reads each
resource once per namespace and hands the objects in, with a `Related` view (events, owners) built from
them. One module per resource kind; `registry.ALL` lists what `diagnose` runs, `registry.CORE` what post-execution
validation runs on the touched workloads.
"""
