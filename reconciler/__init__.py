"""arkerctl: a declarative, GitOps-style reconciler for the Arker VM platform."""

__all__ = ["__version__"]

__version__ = "0.1.0"
