"""The bank simulator: a separate service that behaves like a SEPA bank (DESIGN §6).

`python -m banksim` serves `banksim.app.create_app()`. This package module stays free of
heavy imports because the platform imports `banksim.signing` to verify callbacks.
"""
