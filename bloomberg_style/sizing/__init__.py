"""Sizing a run before spending a GPU budget: BloombergGPT section 3.2 as a calculator.

compute budget -> compute-optimal size by every method -> data-limited choice -> shape ->
steps, days and memory per GPU. `run_sizing(SizingInputs())` gives the paper's answers.
"""

from .accelerators import ACCELERATORS, Accelerator, get_accelerator
from .budget import ComputeBudget, compute_budget
from .calculator import SizingResult, run_sizing
from .chinchilla import (
    APPROACHES,
    EPOCH,
    HOFFMANN,
    LossLaw,
    Optimum,
    PowerLaw,
    compute_optimal,
    fit_power_law,
)
from .data_limit import DataMix, SizeChoice, choose_size, data_mix
from .inputs import SizingInputs
from .memory import MemoryEstimate, estimate_memory, memory_table
from .plan import PAPER_RAMP, BatchPhase, TrainingPlan, parse_batch_ramp, plan_training, steps_for_tokens
from .report import format_report, result_to_dict
from .shape import Shape, levine_width, search_shape, shape_for_layers

__all__ = [
    "ACCELERATORS",
    "APPROACHES",
    "EPOCH",
    "HOFFMANN",
    "PAPER_RAMP",
    "Accelerator",
    "BatchPhase",
    "ComputeBudget",
    "DataMix",
    "LossLaw",
    "MemoryEstimate",
    "Optimum",
    "PowerLaw",
    "Shape",
    "SizeChoice",
    "SizingInputs",
    "SizingResult",
    "TrainingPlan",
    "choose_size",
    "compute_budget",
    "compute_optimal",
    "data_mix",
    "estimate_memory",
    "fit_power_law",
    "format_report",
    "get_accelerator",
    "levine_width",
    "memory_table",
    "parse_batch_ramp",
    "plan_training",
    "result_to_dict",
    "run_sizing",
    "search_shape",
    "shape_for_layers",
    "steps_for_tokens",
]
