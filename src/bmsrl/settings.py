"""Typed views of the most-read config sections, ``training`` and ``search``.

``TrainingSettings.of(cfg)`` takes the validated config (:func:`bmsrl.config.load_config`: every
key present, types checked) and gives its ``training`` section as a frozen dataclass, so a misspelt
key fails where it is read (``AttributeError``) instead of a ``KeyError`` deep in a run, and a key
the schema gains without a field here fails at once (``TypeError``; tests/test_config.py compares
the fields with the schema). The values are the config's: the defaults live in the schema.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

from bmsrl.errors import UserError


def _section(cls, values: Mapping[str, Any], where: str):
    names = {f.name for f in fields(cls)}
    if set(values) != names:
        raise TypeError(
            f"{where}: the config has keys {sorted(set(values) - names)} that {cls.__name__} lacks, "
            f"and lacks {sorted(names - set(values))} (is the config validated?)"
        )
    return cls(**values)


@dataclass(frozen=True)
class EarlyStoppingSettings:
    """``training.early_stopping``: the plateau rule (:func:`bmsrl.learning.plateaued`)."""

    patience: int  #: evaluations without a rise above the best before them; 0: never stop early
    min_delta: float  #: the smallest rise of the mean evaluation return that counts [reward units]
    min_evaluations: int  #: evaluations before a run may stop early


@dataclass(frozen=True)
class TrainingSettings:
    """The ``training`` section (docs/configuration.md)."""

    n_envs: int  #: packs stepped together in the batched vector env [-]
    total_steps: Mapping[str, int]  #: per algorithm: env steps of one training run
    eval_interval: int  #: env steps between evaluations during training
    eval_episodes: int  #: episodes per evaluation during training [-]
    checkpoint_interval: int  #: env steps between checkpoints
    log_interval: int  #: env steps between TensorBoard scalar logs
    features: str  #: what the policy network sees (bmsrl.networks.FEATURES)
    #: the training packs' load profiles, pack k on profiles[k mod len]; empty: ``profiles.train``
    profiles: Sequence[str]
    early_stopping: EarlyStoppingSettings  #: stop once the evaluation return has stopped rising
    torch_threads: int  #: torch threads per training job [-]
    tuned_hyperparams: bool  #: train with the search's best hyperparameters
    normalize_reward: bool  #: VecNormalize rewards of the on-policy algorithms
    hyperparams: Mapping[str, Mapping[str, Any]]  #: per algorithm: constructor keyword arguments

    @classmethod
    def of(cls, cfg: Mapping[str, Any]) -> TrainingSettings:
        training = dict(cfg["training"])
        training["early_stopping"] = _section(
            EarlyStoppingSettings, training["early_stopping"], "training.early_stopping"
        )
        return _section(cls, training, "training")


def training_profiles(cfg: dict, profile: str) -> tuple[str, ...]:
    """The load profiles of the training packs, pack k on the k-th modulo their number:
    ``training.profiles``, or ``profile`` (``profiles.train`` or ``--profile``) when that is empty."""
    return tuple(TrainingSettings.of(cfg).profiles) or (profile,)


def check_profile_option(cfg: dict, cli_profile: str | None) -> None:
    """Refuse ``--profile`` together with ``training.profiles``: which would the packs follow?"""
    chosen = TrainingSettings.of(cfg).profiles
    if cli_profile is not None and chosen:
        raise UserError(
            f"--profile {cli_profile} and training.profiles {list(chosen)} both choose the training profiles; drop one"
        )


@dataclass(frozen=True)
class SamplerSettings:
    """``search.sampler``: Optuna's TPE sampler."""

    seed: int  #: trial k's sampler is seeded with seed + k
    n_startup_trials: int  #: trials drawn at random before TPE models the finished ones


@dataclass(frozen=True)
class PrunerSettings:
    """``search.pruner``: Optuna's median pruner."""

    n_startup_trials: int  #: finished trials before any trial is pruned
    n_warmup_steps: int  #: env steps a trial trains before it can be pruned


@dataclass(frozen=True)
class SearchSettings:
    """The ``search`` section (docs/configuration.md, docs/search.md)."""

    trials: int  #: trials per algorithm
    total_steps: Mapping[str, int]  #: per algorithm: env steps of one trial
    eval_interval: int  #: env steps between the evaluations a trial reports
    eval_episodes: int  #: search-evaluation packs per report
    seed_offset: int  #: the search's seeds start here (bmsrl.seeds)
    sampler: SamplerSettings
    pruner: PrunerSettings
    space: Mapping[str, Mapping[str, Any]]  #: per algorithm: hyperparameter -> distribution

    @classmethod
    def of(cls, cfg: Mapping[str, Any]) -> SearchSettings:
        search = dict(cfg["search"])
        search["sampler"] = _section(SamplerSettings, search["sampler"], "search.sampler")
        search["pruner"] = _section(PrunerSettings, search["pruner"], "search.pruner")
        return _section(cls, search, "search")
