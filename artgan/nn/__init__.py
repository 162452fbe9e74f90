"""Network building blocks shared by tasks, and the registry of named architectures.

A model file names its architecture and config; the store rebuilds the network with
``ARCHITECTURES.get(name)(**config)`` before loading the weights, so every architecture
a task ships must be registered here (built-ins) or through the ``register_architectures`` hook.
"""

from artgan.registry import Registry

ARCHITECTURES: Registry = Registry("architecture")
