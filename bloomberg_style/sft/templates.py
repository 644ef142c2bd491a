"""Prompt templates: how a conversation becomes text, and which parts of it are trained.

A template renders a conversation into segments. Prompt segments (system text, user
turns and the cue that asks for a reply) are context only; every assistant reply and
the end-of-document token after it are trained. Training and chat render with the same
function, so the model sees at inference exactly the prompt layout it was tuned on.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

USER, ASSISTANT, SYSTEM = "user", "assistant", "system"
TOKENIZER_TEMPLATE = "tokenizer"  # the template name meaning "a HF tokenizer's own chat template"


@dataclass(frozen=True)
class Turn:
    role: str  # "user" or "assistant"
    content: str


@dataclass(frozen=True)
class Segment:
    """A piece of the rendered sequence; `eod` marks the end-of-document token (no text)."""

    text: str = ""
    train: bool = False
    eod: bool = False


@dataclass(frozen=True)
class Template:
    """Text around the turns. `user` and `user_with_context` hold `{content}` (and `{context}`)."""

    name: str
    system: str = ""  # once, before the first user turn
    system_with_context: str = ""  # used instead of `system` when the record has a context (Alpaca input)
    user: str = "{content}"  # one user turn, ending with the cue for the reply
    user_with_context: str = ""  # first user turn when there is a context; "" = append it to content
    separator: str = "\n"  # after a reply's end token, before the next user turn

    def validate(self, where: str = "template") -> Template:
        if "{content}" not in self.user:
            raise ValueError(f"{where}.user must contain '{{content}}', got {self.user!r}")
        if self.user_with_context and not all(
            k in self.user_with_context for k in ("{content}", "{context}")
        ):
            raise ValueError(
                f"{where}.user_with_context must contain '{{content}}' and '{{context}}', "
                f"got {self.user_with_context!r}"
            )
        return self

    def user_text(self, content: str, context: str = "") -> str:
        if context and self.user_with_context:
            return _fill(self.user_with_context, content=content, context=context)
        if context:
            content = f"{content}\n\n{context}"
        return _fill(self.user, content=content)

    def render(
        self,
        turns: list[Turn],
        context: str = "",
        system: str | None = None,
        add_generation_cue: bool = False,
    ) -> list[Segment]:
        """Segments of a conversation that alternates user/assistant, starting with the user.

        With `add_generation_cue` the conversation ends with a user turn and the result is
        the prompt for the next reply (chat, generation eval).
        """
        check_turns(turns, ends_with_user=add_generation_cue)
        if system is None:
            system = self.system_with_context if (context and self.system_with_context) else self.system
        segments: list[Segment] = []
        pending = system  # untrained text not yet emitted (joined so it is encoded in one piece)
        for i, turn in enumerate(turns):
            if turn.role == USER:
                pending += self.user_text(turn.content, context if i == 0 else "")
            else:
                segments.append(Segment(pending))
                segments.append(Segment(turn.content, train=True))
                segments.append(Segment(eod=True, train=True))
                pending = self.separator
        if add_generation_cue:
            segments.append(Segment(pending))
        return [s for s in segments if s.eod or s.text]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _fill(pattern: str, **values: str) -> str:
    # str.replace, not str.format: user text may hold braces ({"a": 1} in a question).
    for key, value in values.items():
        pattern = pattern.replace("{" + key + "}", value)
    return pattern


def check_turns(turns: list[Turn], ends_with_user: bool) -> None:
    if not turns:
        raise ValueError("a conversation needs at least one turn")
    for i, turn in enumerate(turns):
        expected = USER if i % 2 == 0 else ASSISTANT
        if turn.role != expected:
            raise ValueError(
                f"turn {i} has role {turn.role!r}; turns must alternate user/assistant starting with user"
            )
        if not isinstance(turn.content, str):
            raise ValueError(f"turn {i} content must be a string, got {type(turn.content).__name__}")
    last = turns[-1].role
    if ends_with_user and last != USER:
        raise ValueError("a prompt for generation must end with a user turn")
    if not ends_with_user and last != ASSISTANT:
        raise ValueError("a training conversation must end with an assistant turn")


_ALPACA_SYSTEM = "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n"
_ALPACA_SYSTEM_CTX = (
    "Below is an instruction that describes a task, paired with an input that provides further context. "
    "Write a response that appropriately completes the request.\n\n"
)

BUILTIN_TEMPLATES: dict[str, Template] = {
    # Stanford Alpaca's prompt; ChatDoctor tuned with it (its instruction field names the doctor role).
    "alpaca": Template(
        name="alpaca",
        system=_ALPACA_SYSTEM,
        system_with_context=_ALPACA_SYSTEM_CTX,
        user="### Instruction:\n{content}\n\n### Response:\n",
        user_with_context="### Instruction:\n{content}\n\n### Input:\n{context}\n\n### Response:\n",
        separator="\n\n",
    ),
    # FinGPT's instruction-tuning prompt.
    "fingpt": Template(
        name="fingpt",
        user="Instruction: {content}\nAnswer: ",
        user_with_context="Instruction: {content}\nInput: {context}\nAnswer: ",
        separator="\n",
    ),
    # ChatGLM-style Chinese QA (Med-ChatGLM, LawGPT_zh): 问 (question) / 答 (answer).
    "qa-zh": Template(name="qa-zh", user="问：{content}\n答：", separator="\n"),
    # HuaTuo-style medical prompt: "Below is a question; answer it correctly with medical
    # knowledge", then ### 问题 (question) / ### 回答 (answer).
    "huatuo": Template(
        name="huatuo",
        system="下面是一个问题，运用医学知识来正确回答提问。\n",
        user="### 问题:\n{content}\n### 回答:\n",
        user_with_context="### 问题:\n{content}\n{context}\n### 回答:\n",
        separator="\n",
    ),
    # Plain English QA and multi-turn chat.
    "qa": Template(name="qa", user="Question: {content}\nAnswer: ", separator="\n"),
    "chat": Template(name="chat", user="User: {content}\nAssistant: ", separator="\n"),
}


def get_template(name: str, custom: dict[str, Template] | None = None) -> Template:
    """A recipe's own template first, then the built-in ones."""
    table = {**BUILTIN_TEMPLATES, **(custom or {})}
    if name not in table:
        raise ValueError(
            f"unknown template {name!r}; known templates: {sorted(table)} "
            f"(or {TOKENIZER_TEMPLATE}: a HF base's own chat template)"
        )
    return table[name]


def template_from_dict(data: dict[str, Any], name: str = "") -> Template:
    known = {"name", "system", "system_with_context", "user", "user_with_context", "separator"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(
            f"template {name or data.get('name')!r}: unknown key(s) {unknown}; known: {sorted(known)}"
        )
    for key, value in data.items():
        if not isinstance(value, str):
            raise ValueError(f"template {name!r}: {key} must be a string, got {value!r}")
    return Template(**{"name": name, **data}).validate(f"templates.{name or data.get('name')}")
