"""runner: run a Python script unchanged in a container, locally or on Kubernetes."""

__version__ = "0.1.0"
