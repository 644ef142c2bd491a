"""Training-time controllers: LR drops on a validation plateau, scripted interventions,
loss-spike and non-finite-step monitoring, best-checkpoint tracking."""

from bloomberg_style.controllers.plateau import PlateauDetector
from bloomberg_style.controllers.policy import Decision, LRController
from bloomberg_style.controllers.spike import SpikeMonitor

__all__ = ["Decision", "LRController", "PlateauDetector", "SpikeMonitor"]
