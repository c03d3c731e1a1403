"""The speech toolkit behind main.py: audio, features, text units, data, models,
decoding, metrics, training and inference, one concept per module."""

__version__ = "0.1.0"
