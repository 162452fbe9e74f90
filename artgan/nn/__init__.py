"""Network building blocks shared by tasks, and the registry of named architectures.

A model file names its architecture and config; the store rebuilds the network with
``ARCHITECTURES.get(name)(**config)`` before loading the weights. Tasks register their
architectures through the ``register_architectures`` hook, so a model file loads in any
interpreter without set-up: the first lookup loads the plugins.
"""

from artgan.plugins import RegistryView

ARCHITECTURES = RegistryView("architecture")
