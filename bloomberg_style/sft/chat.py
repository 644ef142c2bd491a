"""Talk to a tuned model: the stage's template, multi-turn history, sampling, streaming.

The template comes from the model folder's sft.json (written by every SFT stage), from
a recipe, or by name; history is re-rendered with it every turn, exactly as training
rendered conversations.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from .collate import encode_segments
from .generate import SamplingConfig, generate_text
from .templates import ASSISTANT, USER, Template, Turn, get_template, template_from_dict


def template_for_model(path: str | Path, name: str = "", recipe: str = "", stage: str = "") -> Template:
    """--template NAME, else the recipe's (stage's, default last stage's) template, else the
    model folder's sft.json, else alpaca."""
    custom: dict[str, Template] = {}
    if recipe:
        from .recipe import load_recipe

        r = load_recipe(recipe)
        custom = r.custom_templates()
        if not name:
            chosen = next((s for s in r.stages if s.name == stage), None) if stage else r.stages[-1]
            if chosen is None:
                raise ValueError(
                    f"recipe {recipe} has no stage {stage!r}; stages: {[s.name for s in r.stages]}"
                )
            return r.template_for(chosen)
    if name:
        return get_template(name, custom)
    info = Path(path) / "sft.json"
    if info.is_file():
        spec = json.loads(info.read_text(encoding="utf-8"))["template"]
        return template_from_dict({k: v for k, v in spec.items() if k != "name"}, spec.get("name", ""))
    return get_template("alpaca")


@dataclass
class ChatSession:
    model: object
    tok: object
    template: Template
    sampling: SamplingConfig
    system: str | None = None
    turns: list[Turn] = field(default_factory=list)

    def prompt_ids(self, message: str) -> list[int]:
        turns = [*self.turns, Turn(USER, message)]
        return encode_segments(
            self.template.render(turns, system=self.system, add_generation_cue=True), self.tok
        ).ids

    def reply(self, message: str, on_text=None) -> str:
        """Answer `message` given the history; the exchange joins the history."""
        ids = self.prompt_ids(message)
        if self.sampling.seed is not None:  # a fresh draw per turn, reproducible per session
            self.sampling.seed += 1
        text = generate_text(self.model, self.tok, ids, self.sampling, on_text=on_text)
        self.turns += [Turn(USER, message), Turn(ASSISTANT, text)]
        return text

    def reset(self) -> None:
        self.turns = []
