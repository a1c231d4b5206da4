"""The simulator: real protocol engines on a virtual clock over a faulty network."""
