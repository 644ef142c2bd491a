"""Talk to a tuned model: the stage's template, multi-turn history, sampling, streaming.

The template comes from the model folder's sft.json (written by every SFT stage), from
a recipe, or by name; history is re-rendered with it every turn, exactly as training
rendered conversations. A Hugging Face base with a chat template of its own (and no
template of ours asked for) chats in that template. With a knowledge base (--knowledge)
each question first retrieves passages (sft/retrieval.py); they are shown with their ids
and put in the prompt of that turn only, the history keeps the question as asked.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from .collate import encode_segments
from .generate import SamplingConfig, generate_text
from .templates import ASSISTANT, TOKENIZER_TEMPLATE, USER, Template, Turn, get_template, template_from_dict


def template_for_model(
    path: str | Path, name: str = "", recipe: str = "", stage: str = "", tok=None
) -> Template | None:
    """--template NAME, else the recipe's (stage's, default last stage's) template, else the
    model folder's sft.json, else the tokenizer's own chat template (None), else alpaca."""
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
        if spec.get("name") == TOKENIZER_TEMPLATE:
            return None
        return template_from_dict({k: v for k, v in spec.items() if k != "name"}, spec.get("name", ""))
    if getattr(tok, "chat_template", None):
        return None
    return get_template("alpaca")


@dataclass
class ChatSession:
    model: object
    tok: object
    template: Template | None  # None: the HF tokenizer's own chat template
    sampling: SamplingConfig
    system: str | None = None
    turns: list[Turn] = field(default_factory=list)
    retriever: object | None = None  # retrieval.Retriever; its ask_model is set to this session's
    on_retrieval: object | None = None  # called with each retrieval.Retrieval (to show it)
    last_retrieval: object | None = None

    def __post_init__(self) -> None:
        if self.retriever is not None and self.retriever.ask_model is None:
            self.retriever.ask_model = self.ask

    def prompt_ids(self, message: str, turns: list[Turn] | None = None) -> list[int]:
        turns = [*(self.turns if turns is None else turns), Turn(USER, message)]
        if self.template is None or hasattr(self.tok, "hf"):  # a HF base's tokenizer
            from .chat_masks import encode_prompt

            return encode_prompt(turns, self.tok, self.template, system=self.system)
        return encode_segments(
            self.template.render(turns, system=self.system, add_generation_cue=True), self.tok
        ).ids

    def ask(self, text: str, max_new_tokens: int = 32) -> str:
        """A one-off greedy answer outside the history (the keyword step of retrieval)."""
        cfg = SamplingConfig(temperature=0.0, top_k=0, top_p=1.0, max_new_tokens=max_new_tokens)
        return generate_text(self.model, self.tok, self.prompt_ids(text, turns=[]), cfg)

    def reply(self, message: str, on_text=None) -> str:
        """Answer `message` given the history; the exchange joins the history."""
        asked = message
        if self.retriever is not None:
            self.last_retrieval = self.retriever(message)
            if self.on_retrieval is not None:
                self.on_retrieval(self.last_retrieval)
            asked = self.last_retrieval.prompt()
        ids = self.prompt_ids(asked)
        if self.sampling.seed is not None:  # a fresh draw per turn, reproducible per session
            self.sampling.seed += 1
        text = generate_text(self.model, self.tok, ids, self.sampling, on_text=on_text)
        self.turns += [Turn(USER, message), Turn(ASSISTANT, text)]
        return text

    def reset(self) -> None:
        self.turns = []


def knowledge_retriever(path: str | Path, top_k: int = 3):
    """A Retriever over the JSONL knowledge base at `path` (the model asks for keywords)."""
    from .retrieval import KnowledgeBase, Retriever

    return Retriever(KnowledgeBase.load(path), top_k=top_k)


def show_retrieval(retrieval) -> None:
    """Print the keywords and the retrieved passages' ids (stderr, like the other notes)."""
    import sys

    print(retrieval.shown(), file=sys.stderr, flush=True)
