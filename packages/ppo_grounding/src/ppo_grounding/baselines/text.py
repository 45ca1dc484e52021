"""Word-level tokenisation of missions, observations and action phrases for the small baselines.

The vocabulary is every word the envs can emit (`babyai_text.vocabulary`, both languages), the
digits 0-9 (the descriptions count steps), and the words of the prompt templates ("Goal",
"Observation", ...). Words are lower-cased; anything else maps to UNK. Id 0 is padding.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from pathlib import Path

import babyai_text
import torch
from llm_policy import TEMPLATES
from llm_policy.atomic import atomic_directory
from safetensors.torch import load_model, save_model

PAD, UNK = 0, 1
_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?|\d")


def words_of(text: str) -> list[str]:
    """Lower-cased words and single digits of `text`, punctuation dropped."""
    return _WORD.findall(text.lower())


class WordVocabulary:
    """Maps text to word ids over the envs' vocabulary (fixed: the same ids in every run)."""

    def __init__(self, languages: Sequence[str] = babyai_text.LANGUAGES) -> None:
        words: set[str] = set(str(d) for d in range(10))
        for language in languages:
            words.update(w.lower() for w in babyai_text.vocabulary(language))
        for template in TEMPLATES.values():
            for line in (template.actions_line, template.goal_line, template.observation_line):
                words.update(words_of(re.sub(r"\{[^}]*\}", " ", line)))
        self.words = ["<pad>", "<unk>", *sorted(words)]
        self.index = {w: i for i, w in enumerate(self.words)}

    def __len__(self) -> int:
        return len(self.words)

    def encode(self, text: str) -> list[int]:
        """Word ids of `text` (at least one: an empty text encodes as [UNK])."""
        ids = [self.index.get(w, UNK) for w in words_of(text)]
        return ids or [UNK]

    def batch(self, texts: Sequence[str]) -> torch.Tensor:
        """(B, L) padded ids of each text (padding 0 at the end)."""
        return pad([self.encode(t) for t in texts])


def pad(sequences: Sequence[Sequence[int]]) -> torch.Tensor:
    """(B, L) long tensor, each sequence followed by PAD up to the longest."""
    length = max(len(s) for s in sequences)
    out = torch.zeros(len(sequences), length, dtype=torch.long)
    for i, s in enumerate(sequences):
        out[i, : len(s)] = torch.as_tensor(s, dtype=torch.long)
    return out


class GRUEncoder(torch.nn.Module):
    """Word embedding + one-layer GRU; the text's code is the GRU state after its last word."""

    def __init__(self, embedding: torch.nn.Embedding, hidden: int) -> None:
        super().__init__()
        self.embedding = embedding
        self.gru = torch.nn.GRU(embedding.embedding_dim, hidden, batch_first=True)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """ids (B, L), padded with PAD at the end -> (B, hidden)."""
        lengths = (ids != PAD).sum(1).clamp(min=1)
        outputs, _ = self.gru(self.embedding(ids))
        # padding comes after the words, so the output at the last word has not seen it
        return outputs[torch.arange(ids.shape[0]), lengths - 1]


def split_prompt(prompt: str) -> tuple[str, str]:
    """(mission, history) of a prompt in a `llm_policy.TEMPLATES` layout: line 0 lists the
    actions, line 1 is the goal ("Goal of the agent: ..."), the rest are the observations and
    the actions between them. The action list is dropped (the actions are encoded on their own)."""
    lines = prompt.split("\n")
    if len(lines) < 3:
        raise ValueError(
            "the prompt does not have the template's layout (actions line, goal line, "
            f"observations): {prompt!r}"
        )
    goal = lines[1].split(":", 1)[-1]
    return goal.strip(), "\n".join(lines[2:])


def save_network(
    directory: str | os.PathLike, name: str, network: torch.nn.Module, meta: dict
) -> Path:
    """Publish `directory` with <name>.safetensors (the weights) and <name>.json (`meta`, which
    holds what rebuilds the network and the vocabulary's words), atomically, as one directory."""
    with atomic_directory(directory, marker=f"{name}.json") as tmp:
        save_model(network, str(tmp / f"{name}.safetensors"))
        (tmp / f"{name}.json").write_text(json.dumps(meta, indent=1) + "\n")
    return Path(directory)


def read_network_meta(directory: str | os.PathLike, name: str, vocabulary: WordVocabulary) -> dict:
    """The <name>.json that save_network wrote, refused when the words it was trained with differ
    from this version's vocabulary (its embeddings would read the wrong rows)."""
    meta = json.loads((Path(directory) / f"{name}.json").read_text())
    if vocabulary.words != meta["vocabulary"]:
        raise ValueError(
            f"{directory} was trained with another word vocabulary; load it with the "
            "ppo-grounding version that saved it."
        )
    return meta


def load_network(directory: str | os.PathLike, name: str, network: torch.nn.Module) -> None:
    """Fill `network` with the weights save_network wrote (shapes and names must match)."""
    load_model(network, str(Path(directory) / f"{name}.safetensors"))
