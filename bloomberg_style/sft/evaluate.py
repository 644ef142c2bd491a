"""Held-out evaluation of a stage: loss on reply tokens, and generated answers scored
against the reference answers (token precision / recall / F1; BERTScore optional).

ChatDoctor compared its answers with real doctors' answers by BERTScore; we add the
plain token-overlap F1 (SQuAD style) that needs no extra model. BERTScore (Zhang et al.
2020) is computed here from a local encoder folder: greedy cosine matching of contextual
token embeddings, P = mean over candidate tokens of the best match in the reference,
R = the same the other way round, F = 2PR / (P + R). Nothing is ever downloaded.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from pathlib import Path
from typing import Any

import torch

from .collate import pad_rows, prompt_ids
from .formats import Example
from .generate import SamplingConfig, generate_text
from .templates import USER, Template, Turn

# Words of letters/digits; each CJK character on its own (Chinese has no spaces).
_TOKEN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]|[^\W_]+", re.UNICODE)


def answer_tokens(text: str) -> list[str]:
    """Lower-cased words and CJK characters; punctuation and spacing ignored."""
    return _TOKEN.findall(text.lower())


def token_prf(prediction: str, reference: str) -> tuple[float, float, float]:
    """Bag-of-tokens precision, recall, F1 of one answer against its reference."""
    pred, ref = answer_tokens(prediction), answer_tokens(reference)
    if not pred or not ref:
        same = float(pred == ref)
        return same, same, same
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0, 0.0, 0.0
    p, r = common / len(pred), common / len(ref)
    return p, r, 2 * p * r / (p + r)


@torch.no_grad()
def heldout_loss(model: torch.nn.Module, rows: list[dict], pad_id: int, batch_size: int = 8) -> float:
    """Mean loss per trained (reply) token over the rows, in nats."""
    model.eval()
    total, count = 0.0, 0.0
    for i in range(0, len(rows), batch_size):
        batch = pad_rows(rows[i : i + batch_size], pad_id)
        n = float(batch["loss_mask"].sum())
        if n:
            loss = model(batch["tokens"], labels=batch["labels"], loss_mask=batch["loss_mask"])
            total += float(loss) * n
            count += n
    return total / count if count else math.nan


def generate_answers(
    model: torch.nn.Module,
    tok,
    template: Template | None,
    examples: list[Example],
    sampling: SamplingConfig,
    retriever=None,
) -> list[dict[str, str]]:
    """Answer each example's last user turn; returns prompt, reference and generated text.

    Our BLOOM samples with its own loop, a HF base through transformers' generate (KV
    cache); template None is a HF tokenizer's own chat template. With a retriever
    (eval.knowledge) the question is answered with its retrieved passages in the prompt,
    and their ids are reported.
    """
    out = []
    for ex in examples:
        question = ex.turns[-2].content
        if ex.context and len(ex.turns) == 2:
            question += "\n" + ex.context
        record: dict = {"prompt": question}
        turns = list(ex.turns[:-1])
        if retriever is not None:
            found = retriever(turns[-1].content)
            turns[-1] = Turn(USER, found.prompt())
            record["retrieved"] = [p.id for p, _ in found.passages]
        if template is None or hasattr(tok, "hf"):  # a HF base's tokenizer
            from .chat_masks import encode_prompt

            ids = encode_prompt(turns, tok, template, system=ex.system, context=ex.context)
        else:
            asked = Example([*turns, ex.turns[-1]], ex.context, ex.system, ex.source) if retriever else ex
            ids, _ = prompt_ids(asked, template, tok)
        record["reference"] = ex.turns[-1].content
        record["generated"] = generate_text(model, tok, ids, sampling)
        out.append(record)
    return out


def knowledge_retriever(kb, model: torch.nn.Module, tok, template: Template | None, top_k: int = 3):
    """eval.knowledge: a Retriever over `kb` whose keywords the model itself is asked for
    (ChatDoctor's step; greedy, 32 tokens), or None when the stage has no knowledge base."""
    if kb is None:
        return None
    from .retrieval import Retriever
    from .templates import ASSISTANT

    greedy = SamplingConfig(temperature=0.0, top_k=0, top_p=1.0, max_new_tokens=32)

    def ask(text: str) -> str:
        ids, _ = prompt_ids(Example([Turn(USER, text), Turn(ASSISTANT, "")]), template, tok)
        return generate_text(model, tok, ids, greedy)

    return Retriever(kb, top_k=top_k, ask_model=ask)


def score_answers(
    answers: list[dict[str, str]], bertscore_model: str = "", layer: int = -1
) -> dict[str, float]:
    scores = [token_prf(a["generated"], a["reference"]) for a in answers]
    n = max(1, len(scores))
    result = {
        "records": len(scores),
        "precision": sum(s[0] for s in scores) / n,
        "recall": sum(s[1] for s in scores) / n,
        "f1": sum(s[2] for s in scores) / n,
        "empty_answers": sum(1 for a in answers if not a["generated"].strip()),
    }
    if bertscore_model and answers:
        p, r, f = bertscore(
            [a["generated"] for a in answers], [a["reference"] for a in answers], bertscore_model, layer
        )
        result.update(bertscore_precision=p, bertscore_recall=r, bertscore_f1=f)
    return result


@torch.no_grad()
def bertscore(
    candidates: list[str], references: list[str], model_path: str, layer: int = -1, batch_size: int = 16
) -> tuple[float, float, float]:
    """Mean BERTScore P, R, F1 with the encoder in `model_path` (a local folder only)."""
    path = Path(model_path)
    if not path.is_dir():
        raise FileNotFoundError(
            f"BERTScore model folder {path} not found; give a local folder (nothing is downloaded)"
        )
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    encoder = AutoModel.from_pretrained(str(path), local_files_only=True).eval()

    def embed(texts: list[str]) -> list[torch.Tensor]:
        out = []
        for i in range(0, len(texts), batch_size):
            enc = tokenizer(
                texts[i : i + batch_size],
                return_tensors="pt",
                padding=True,
                truncation=True,
                return_special_tokens_mask=True,
            )
            special = enc.pop("special_tokens_mask")
            hidden = encoder(**enc, output_hidden_states=True).hidden_states[layer]
            keep = enc["attention_mask"].bool() & ~special.bool()
            for h, k in zip(hidden, keep):
                out.append(torch.nn.functional.normalize(h[k].float(), dim=-1))
        return out

    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    cand, ref = embed(candidates), embed(references)
    ps, rs, fs = [], [], []
    for c, r in zip(cand, ref):
        p = r_ = 0.0
        if len(c) and len(r):
            sim = c @ r.T  # cosine similarities [candidate tokens, reference tokens]
            p = float(sim.max(dim=1).values.mean())  # each candidate token's best match
            r_ = float(sim.max(dim=0).values.mean())  # each reference token's best match
        ps.append(p)
        rs.append(r_)
        fs.append(2 * p * r_ / (p + r_) if p + r_ > 0 else 0.0)
    n = len(fs)
    return sum(ps) / n, sum(rs) / n, sum(fs) / n


# ---- reports ------------------------------------------------------------------------------


def write_report(out_dir: Path, report: dict[str, Any]) -> None:
    """eval.json (everything) and eval.md (a table people read)."""
    (out_dir / "eval.json").write_text(json.dumps(report, indent=1, ensure_ascii=False), encoding="utf-8")
    (out_dir / "eval.md").write_text(markdown_report(report), encoding="utf-8")


def markdown_report(report: dict[str, Any]) -> str:
    before, after = report.get("before", {}), report.get("after", {})
    keys = [
        ("held-out loss (nats/token)", "loss"),
        ("token precision", "precision"),
        ("token recall", "recall"),
        ("token F1", "f1"),
        ("BERTScore F1", "bertscore_f1"),
    ]
    lines = [
        f"# Stage {report.get('stage')} ({report.get('method')})",
        "",
        f"{report.get('heldout_records')} held-out records; generation on {after.get('records', 0)} "
        f"of them (greedy unless set), {report.get('steps')} training steps.",
        "",
        "| metric | before | after |",
        "|---|---|---|",
    ]
    for label, key in keys:
        if key in before or key in after:
            lines.append(f"| {label} | {_fmt(before.get(key))} | {_fmt(after.get(key))} |")
    for sample in report.get("samples", []):
        lines += [
            "",
            f"**Prompt:** {sample['prompt']}",
            "",
            f"- reference: {sample['reference']}",
            f"- generated: {sample['generated']}",
        ]
    return "\n".join(lines) + "\n"


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.4f}" if isinstance(value, float) else str(value)
