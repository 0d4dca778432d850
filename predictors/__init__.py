"""Foresight forecasting: models behind one interface, calibration, model
selection, backtests on real traffic, and the prediction gRPC service."""

import os

# OpenMP (scikit-learn's boosting) spin-waits for its threads by default. With
# another busy process on the machine (the controller, Open vSwitch, a second
# training job) the spinning threads starve the working one: training the slices
# lab's model took 428 s instead of 6 s next to one busy core. Passive waiting
# costs nothing measurable when the machine is idle. Set here, before scikit-learn
# loads in this process and in the training processes it spawns; an explicit
# setting in the environment wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
