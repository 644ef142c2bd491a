"""Run a recipe's stages in order, each from the previous stage's model.

A stage whose folder holds COMPLETE is skipped (its model becomes the next base), so a
re-run picks up where the last one stopped: at the first unfinished stage, from its
newest checkpoint. Everything that can be checked without a model (recipe values, data
files, the base path, batch arithmetic) is checked before the first stage trains.
"""

from __future__ import annotations

import json
from pathlib import Path

from tqdm import tqdm

from bloomberg_style.training.distributed import barrier, init_distributed, on_main_rank

from .formats import DataError, load_examples
from .recipe import Recipe, RecipeError
from .train import COMPLETE, StageResult, run_stage


def is_complete(out_dir: Path) -> bool:
    return (Path(out_dir) / COMPLETE).is_file()


def read_report(out_dir: Path) -> dict:
    path = Path(out_dir) / "eval.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def check_base(recipe: Recipe, base: str) -> None:
    """The base must be a model we can load; the recipe's hint says how to make it."""
    from bloomberg_style.artifacts import model_kind

    try:
        model_kind(base)
    except FileNotFoundError as exc:
        hint = f"; {recipe.base_hint}" if recipe.base_hint else ""
        raise RecipeError(f"{recipe.source or 'recipe'}: base {base!r}: {exc}{hint}") from None


def plan(recipe: Recipe) -> list[tuple[str, Path, bool]]:
    """(stage, output folder, complete) for every stage, in order."""
    return [(s.name, recipe.stage_dir(s), is_complete(recipe.stage_dir(s))) for s in recipe.stages]


def prepare(recipe: Recipe, is_main: bool) -> None:
    """Generate the demo data if the recipe asks for it; read and check every record of
    every pending stage (a malformed record stops the run before any training)."""
    if recipe.demo_data.dir and is_main:
        from bloomberg_style.demo.instructions import write_demo_data

        write_demo_data(recipe.demo_data.dir, recipe.demo_data.records, recipe.demo_data.seed)
    barrier()
    for i, stage in enumerate(recipe.stages):
        if is_complete(recipe.stage_dir(stage)):
            continue
        where = f"{recipe.source or 'recipe'}: stages[{i}] ({stage.name}).data"
        d = stage.data
        try:
            for key, patterns in (("train", d.train), ("valid", d.valid)):
                if patterns:
                    load_examples(patterns, d.format, d.fields, d.bad_records, where=f"{where}.{key}")
        except DataError as exc:
            raise RecipeError(str(exc)) from None


def run_recipe(recipe: Recipe, log=None) -> list[StageResult]:
    """Run (or resume) every stage; returns one result per stage that ran or was skipped."""
    first_pending = next((s for s in recipe.stages if not is_complete(recipe.stage_dir(s))), None)
    threads = first_pending.torch_threads if first_pending else 0
    dist = init_distributed(threads)
    if log is None:
        log = tqdm.write if dist.is_main else (lambda *_: None)

    def check() -> None:
        prepare(recipe, dist.is_main)
        base = recipe.base
        for stage in recipe.stages:  # the first stage to run must find its base
            if not is_complete(recipe.stage_dir(stage)):
                check_base(recipe, base)
                break
            base = str(recipe.stage_dir(stage))

    # Every rank checks (prepare has a barrier inside); rank 0's verdict stops them all.
    on_main_rank(check, RecipeError, every_rank=True, catch=(RecipeError, DataError), describe=str)

    results: list[StageResult] = []
    base = recipe.base
    for stage in recipe.stages:
        out = recipe.stage_dir(stage)
        if is_complete(out):
            log(f"stage {stage.name}: complete ({out / COMPLETE}); skipping")
            results.append(StageResult(stage.name, out, complete=True, report=read_report(out)))
            base = str(out)
            continue
        result = run_stage(recipe, stage, base, dist, log=log)
        results.append(result)
        if not result.complete:
            break
        base = str(out)
    return results
