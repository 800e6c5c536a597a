"""The Onsets and Frames network: its Keras model (`model.py`) and its training (`training.py`)."""
