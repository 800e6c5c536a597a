"""The MAESTRO dataset: metadata of every version, synthetic renders, Beam preprocessing."""
