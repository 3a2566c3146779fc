"""The seed policy of the study: which integer seed each pack, episode and trial starts from
(docs/model.md, "Seeds"), and the rule that no tuning or search ever sees an evaluation pack.

Every function takes the validated config (:func:`bmsrl.config.load_config`); the config's
validator refuses a config whose tuning or search seeds meet a held-out one (:func:`seed_problem`).
"""

from __future__ import annotations

from typing import Any


def episode_seeds(cfg: dict[str, Any], seed: int) -> list[int]:
    """The evaluation seeds of training seed ``seed``: episode e starts from the pack drawn with
    ``evaluation.seed_offset + 1000 * seed + e`` (docs/model.md, "Seeds")."""
    ev = cfg["evaluation"]
    return [ev["seed_offset"] + 1000 * seed + episode for episode in range(ev["episodes"])]


def evaluation_seeds(cfg: dict[str, Any]) -> set[int]:
    """Every integer seed a final evaluation episode starts from (:func:`episode_seeds` of every training seed)."""
    return {s for seed in cfg["seeds"] for s in episode_seeds(cfg, seed)}


def training_eval_seed(cfg: dict[str, Any], seed: int) -> int:
    """Seed of the packs the agents are evaluated on during training (pack k draws from
    ``SeedSequence(this, spawn_key=(k,))``): disjoint from training and final evaluation seeds."""
    return cfg["evaluation"]["seed_offset"] + 1000 * seed + 500


def tuning_seeds(cfg: dict[str, Any]) -> range:
    """The integer seeds of the tune_baselines episodes: ``seed_offset + k``, k < episodes."""
    tuning = cfg["baselines"]["tuning"]
    return range(tuning["seed_offset"], tuning["seed_offset"] + tuning["episodes"])


def search_eval_seed(cfg: dict[str, Any]) -> int:
    """Seed of the search-evaluation packs (pack k draws from ``SeedSequence(this, spawn_key=(k,))``):
    every trial is scored on the same packs."""
    return cfg["search"]["seed_offset"]


def search_train_seed(cfg: dict[str, Any], trial: int) -> int:
    """Seed of search trial ``trial`` (python, numpy, torch and its training packs)."""
    return cfg["search"]["seed_offset"] + 1 + trial


def search_seeds(cfg: dict[str, Any]) -> range:
    """Every integer seed the search uses: :func:`search_eval_seed` and each trial's :func:`search_train_seed`."""
    return range(search_eval_seed(cfg), search_train_seed(cfg, cfg["search"]["trials"]))


def held_out_seeds(cfg: dict[str, Any]) -> dict[int, str]:
    """The seeds no search may use, each with what it seeds: the final evaluation's and the
    evaluation during training (model selection)."""
    held_out = {s: "evaluation seed" for s in evaluation_seeds(cfg)}
    held_out.update({training_eval_seed(cfg, s): f"training-evaluation seed (training seed {s})" for s in cfg["seeds"]})
    return held_out


def seed_problem(cfg: dict[str, Any]) -> str | None:
    """``key.path: message`` when the tuning or the search seeds meet a held-out seed, else ``None``."""
    tuning = tuning_seeds(cfg)
    clash = sorted(s for s in evaluation_seeds(cfg) if s in tuning)
    if clash:
        return (
            f"baselines.tuning.seed_offset: tuning seeds {tuning.start}..{tuning.stop - 1} include "
            f"evaluation seed {clash[0]} (evaluation.seed_offset + 1000 * seed + episode); "
            f"tuning must never see an evaluation pack"
        )
    searched = search_seeds(cfg)
    held_out = held_out_seeds(cfg)
    clash = sorted(s for s in held_out if s in searched)
    if clash:
        return (
            f"search.seed_offset: search seeds {searched.start}..{searched.stop - 1} include "
            f"{held_out[clash[0]]} {clash[0]}; the search must never see an evaluation pack"
        )
    return None
