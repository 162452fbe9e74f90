"""The weights artgan ships, installed as the ``artgan_models`` package.

Layout: ``<task>/<name>.safetensors`` with a model card ``<task>/<name>.md`` beside it.
"""
