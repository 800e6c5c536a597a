"""The sustain-pedal network: the network, its decoding and key releases (`pedal.py`) and its
training and tuning (`training.py`)."""
