"""The algorithm registry: every RL algorithm the workflow can train, and what differs between them.

One entry per algorithm (:data:`ALGOS`), in the spirit of rl-baselines3-zoo's ``ALGOS`` mapping.
Everything else derives from it: the config schema's algorithm list, the defaults of
``training.total_steps``, ``training.hyperparams``, ``search.total_steps`` and ``search.space``
(:func:`bmsrl.config.schema`), the training loop (:mod:`bmsrl.train`), model loading (:mod:`bmsrl.agents`), the Snakemake rules
(``workflow/rules/common.smk``), the order, names and colours of tables and figures.

Adding an algorithm is one :class:`AlgoSpec` here (its default hyperparameters and search space included).

The default hyperparameters are sized for the batched environment (``training.n_envs`` = 64 packs
stepped together): an on-policy rollout of ``n_steps`` per pack is ``64 * n_steps`` transitions,
and DQN's ``train_freq`` 1 vec-env step x ``gradient_steps`` 16 is one gradient step per 4
transitions, the study's update shape. PPO and TRPO update on 32 x 64 = 2048 transitions, A2C on
A3C's 5 steps x 64 packs; ARS (:class:`bmsrl.ars.BatchedARS`) runs its candidates on the packs side
by side and counts every simulated transition (``tests/test_algos.py`` checks the update counts).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bmsrl.errors import UserError


@dataclass(frozen=True)
class AlgoSpec:
    """What the workflow needs to know about one algorithm."""

    name: str  #: the config / CLI name
    label: str  #: name in tables and figures
    color: str  #: colour in every figure
    module: str  #: where the class lives
    class_name: str  #: the Stable-Baselines3 / sb3-contrib class (or :mod:`bmsrl.masked_dqn`'s subclass of one)
    #: how SB3's ``learn(log_interval=...)`` counts: "rollout" (on-policy: n_steps x n_envs env
    #: steps), "episode" (off-policy) or "iteration" (ARS: one population evaluation)
    log_unit: str
    #: SB3's default rollout length per env (``n_steps``) for "rollout" algorithms
    default_n_steps: int = 0
    #: the policy samples only valid actions (reads the env's ``action_masks()``); DQN reads them
    #: for its greedy action only, by its own ``greedy_valid_only`` option (:mod:`bmsrl.masked_dqn`)
    masked: bool = False
    #: the optimizer is torch's Adam, which takes ``fused=True`` on the CPU
    adam: bool = False
    #: rewards are scaled by a running return std (VecNormalize) when ``training.normalize_reward``
    normalize_reward: bool = False
    #: env steps (transitions summed over packs) of one training run, the study's budget
    total_steps: int = 15_000_000
    #: constructor keyword arguments (SB3 defaults for everything not listed)
    hyperparams: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    #: env steps of one trial of the hyperparameter search (``search.total_steps``)
    search_steps: int = 1_000_000
    #: the hyperparameter search's space (``search.space``): keyword argument -> distribution
    search_space: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: the keyword arguments of the class's constructor a config may set in ``training.hyperparams``:
    #: its signature less :data:`SET_BY_TRAIN`. Written out so that validating a config (in the
    #: Snakefile, at every start-up) needs no torch import; tests/test_bad_inputs.py checks it against
    #: the installed library's signature.
    keywords: tuple[str, ...] = ()
    #: its policy takes SB3's ``features_extractor_class`` (``training.features``: bmsrl.networks)
    features_extractor: bool = True
    #: the ``env.action_space`` values its policy takes (:mod:`bmsrl.actions`): every algorithm takes
    #: ``discrete``; ``multi_binary`` (one bit per shunt) needs a policy with a Bernoulli head per bit
    action_spaces: tuple[str, ...] = ("discrete",)
    #: measured training throughput [env-steps/s] with the project's settings on the 2-core reference
    #: machine, ``python benchmarks/algos_learn.py --steps ars=5000000`` (docs/performance.md); the run
    #: plan's time estimate (workflow/rules/common.smk). ``None``: not measured.
    steps_per_s: float | None = None

    @property
    def on_policy(self) -> bool:
        return self.log_unit == "rollout"


#: constructor arguments ``bmsrl train`` sets itself (the run's seed, env, device, logging)
SET_BY_TRAIN: tuple[str, ...] = ("policy", "env", "seed", "verbose", "device", "tensorboard_log", "_init_setup_model")

_OFF_POLICY_COMMON = (
    "learning_rate",
    "buffer_size",
    "learning_starts",
    "batch_size",
    "tau",
    "gamma",
    "train_freq",
    "gradient_steps",
    "replay_buffer_class",
    "replay_buffer_kwargs",
    "optimize_memory_usage",
    "n_steps",
)
_DQN_KEYWORDS = (
    *_OFF_POLICY_COMMON,
    "target_update_interval",
    "exploration_fraction",
    "exploration_initial_eps",
    "exploration_final_eps",
    "max_grad_norm",
    "stats_window_size",
    "policy_kwargs",
)
_MASKED_DQN_KEYWORDS = (
    *_DQN_KEYWORDS,
    "greedy_valid_only",
    "double_q",
    "masked_target",
    "target_update_gradient_steps",
)
_PPO_KEYWORDS = (
    "learning_rate",
    "n_steps",
    "batch_size",
    "n_epochs",
    "gamma",
    "gae_lambda",
    "clip_range",
    "clip_range_vf",
    "normalize_advantage",
    "ent_coef",
    "vf_coef",
    "max_grad_norm",
    "use_sde",
    "sde_sample_freq",
    "rollout_buffer_class",
    "rollout_buffer_kwargs",
    "target_kl",
    "stats_window_size",
    "policy_kwargs",
)
_MASKABLE_PPO_KEYWORDS = tuple(k for k in _PPO_KEYWORDS if k not in ("use_sde", "sde_sample_freq"))
_A2C_KEYWORDS = (
    "learning_rate",
    "n_steps",
    "gamma",
    "gae_lambda",
    "ent_coef",
    "vf_coef",
    "max_grad_norm",
    "rms_prop_eps",
    "use_rms_prop",
    "use_sde",
    "sde_sample_freq",
    "rollout_buffer_class",
    "rollout_buffer_kwargs",
    "normalize_advantage",
    "stats_window_size",
    "policy_kwargs",
)
_TRPO_KEYWORDS = (
    "learning_rate",
    "n_steps",
    "batch_size",
    "gamma",
    "cg_max_steps",
    "cg_damping",
    "line_search_shrinking_factor",
    "line_search_max_iter",
    "n_critic_updates",
    "gae_lambda",
    "use_sde",
    "sde_sample_freq",
    "rollout_buffer_class",
    "rollout_buffer_kwargs",
    "normalize_advantage",
    "target_kl",
    "sub_sampling_factor",
    "stats_window_size",
    "policy_kwargs",
)
_ARS_KEYWORDS = (
    "n_delta",
    "n_top",
    "learning_rate",
    "delta_std",
    "zero_policy",
    "alive_bonus_offset",
    "n_eval_episodes",
    "policy_kwargs",
    "stats_window_size",
)

_PPO_HYPERPARAMS = {
    "n_steps": 32,  # rollout per pack: 32 x 64 packs = 2048 transitions per update (the study's)
    "batch_size": 256,  # minibatch [transitions]
    "n_epochs": 10,
    "learning_rate": 3.0e-4,
    "gamma": 0.995,
    "gae_lambda": 0.95,
    "clip_range": 0.2,
    # entropy bonus: "all shunts open" is a strong local optimum (a toggle costs more than one
    # 30 s closure gains); with 0.01 one of 3 seeds left it only after 4.5 M steps, with 0.03 all did
    "ent_coef": 0.03,
}

# A2C: the study's A3C (Mnih et al. 2016: 16 asynchronous workers, t_max 5, RMSprop) made
# synchronous: the 64 packs are the workers, each contributing its 5-step segment to one update.
_A2C_HYPERPARAMS = {
    "n_steps": 5,  # A3C's t_max: 5 x 64 packs = 320 transitions per update, 46,875 updates in 15 M
    "learning_rate": 7.0e-4,  # SB3's (and A3C's) RMSprop step for a batch of this size
    "gamma": 0.995,  # as PPO: an episode is ~200 decisions, the balance pays off late
    "gae_lambda": 1.0,  # A3C's n-step returns (no GAE)
    "ent_coef": 0.03,  # the same "all shunts open" local optimum as PPO (see _PPO_HYPERPARAMS)
}

# TRPO: PPO's rollout shape (so the two trust-region methods see the same data per update).
_TRPO_HYPERPARAMS = {
    "n_steps": 32,  # 32 x 64 packs = 2048 transitions per update (library default 2048 per env
    #                 would be 131,072 transitions per update: 114 updates in 15 M); here 7,324
    "batch_size": 256,  # critic minibatch [transitions]: 8 per rollout, x n_critic_updates 10
    "gamma": 0.995,
    "gae_lambda": 0.95,
    "target_kl": 0.01,  # the trust region: mean KL per policy step (library default)
}

# ARS (Mania et al. 2018), evaluated on the batch by bmsrl.ars.BatchedARS: one iteration runs each
# "+" and "-" candidate on the same packs, 2 x 64 packs x ~200 decisions = ~25,600 transitions, so
# 15 M steps are ~590 updates.
_ARS_HYPERPARAMS = {
    "n_delta": 64,  # one direction per pack: 64 directions per update, each a +/- pair on one pack
    "n_top": 64,  # all of them: ranking by max(r+, r-) would rank packs (easy initial states), not
    #               directions, since both signs of a direction run on the same pack
    "n_eval_episodes": 1,  # episodes per pack per candidate (the +/- pairing removes the pack spread)
    "learning_rate": 0.02,  # step size, divided by the std of the returns (library default)
    "delta_std": 0.05,  # perturbation scale in weight space (library default)
    "policy_kwargs": {"net_arch": []},  # the ARS paper's static linear policy: 48 x 32 + 32 weights
}

# Search spaces (docs/search.md): the hyperparameters the short-budget search can rank, around the
# defaults above. The rollout and update shapes (n_steps, batch_size, train_freq, gradient_steps),
# which are tied to the 64-pack batch, stay fixed.
_LOG_LR = {"type": "float", "low": 1.0e-5, "high": 1.0e-3, "log": True}
_PPO_SPACE = {
    "learning_rate": _LOG_LR,
    "ent_coef": {"type": "float", "low": 1.0e-3, "high": 0.1, "log": True},
    "gamma": {"type": "categorical", "choices": [0.99, 0.995, 0.999]},
    "gae_lambda": {"type": "float", "low": 0.9, "high": 0.99},
    "clip_range": {"type": "categorical", "choices": [0.1, 0.2, 0.3]},
    "n_epochs": {"type": "int", "low": 3, "high": 20},
}

#: both action spaces: SB3's PPO, A2C and sb3-contrib's MaskablePPO (with per-cell masks) and TRPO
#: take MultiBinary; DQN (one Q-value per joint action) and ARS do not
_PER_CELL = ("discrete", "multi_binary")

#: name -> spec, in the order tables and figures list them
ALGOS: dict[str, AlgoSpec] = {
    spec.name: spec
    for spec in (
        AlgoSpec(
            "dqn",
            "DQN",
            "#1f77b4",
            "bmsrl.masked_dqn",
            "MaskedDQN",
            log_unit="episode",
            adam=True,
            total_steps=8_000_000,
            hyperparams={
                "learning_rate": 1.0e-4,
                "buffer_size": 200_000,  # replay buffer [transitions]
                "batch_size": 256,
                "train_freq": 1,  # 1 vec-env step x 64 packs = 64 transitions ...
                "gradient_steps": 16,  # ... and 16 gradient steps: one per 4 transitions
                "target_update_interval": 10_000,  # env steps between target-network updates
                "exploration_initial_eps": 0.1,  # epsilon-greedy 0.1 -> 0.05 ...
                "exploration_final_eps": 0.05,
                "exploration_fraction": 0.1,  # ... over the first 10 % of total_steps
                "gamma": 0.99,
                "learning_starts": 10_000,  # env steps of random play before learning
                # the greedy action is the best valid one (epsilon and the TD target unchanged)
                "greedy_valid_only": True,
            },
            description="Deep Q-network (off-policy, replay buffer), greedy over the valid actions",
            keywords=_MASKED_DQN_KEYWORDS,
            search_steps=500_000,
            search_space={
                "learning_rate": _LOG_LR,
                "batch_size": {"type": "categorical", "choices": [64, 128, 256]},
                "gamma": {"type": "categorical", "choices": [0.98, 0.99, 0.995]},
                "target_update_interval": {"type": "int", "low": 1_000, "high": 20_000, "log": True},
                "exploration_fraction": {"type": "float", "low": 0.05, "high": 0.3},
                "exploration_final_eps": {"type": "float", "low": 0.01, "high": 0.1},
            },
            steps_per_s=3_087,
        ),
        AlgoSpec(
            "ppo",
            "PPO",
            "#ff7f0e",
            "stable_baselines3",
            "PPO",
            log_unit="rollout",
            default_n_steps=2048,
            adam=True,
            normalize_reward=True,
            action_spaces=_PER_CELL,
            hyperparams=_PPO_HYPERPARAMS,
            description="Proximal policy optimisation (on-policy, clipped surrogate)",
            keywords=_PPO_KEYWORDS,
            search_space=_PPO_SPACE,
            steps_per_s=9_804,
        ),
        AlgoSpec(
            "maskable_ppo",
            "Maskable PPO",
            "#e377c2",
            "sb3_contrib",
            "MaskablePPO",
            log_unit="rollout",
            default_n_steps=2048,
            masked=True,
            adam=True,
            normalize_reward=True,
            action_spaces=_PER_CELL,
            hyperparams=_PPO_HYPERPARAMS,
            description="PPO that samples only the actions the invalid-action rules allow (sb3-contrib)",
            keywords=_MASKABLE_PPO_KEYWORDS,
            search_space=_PPO_SPACE,
        ),
        AlgoSpec(
            "a2c",
            "A2C",
            "#2ca02c",
            "stable_baselines3",
            "A2C",
            log_unit="rollout",
            default_n_steps=5,
            normalize_reward=True,
            action_spaces=_PER_CELL,
            hyperparams=_A2C_HYPERPARAMS,
            description="Advantage actor-critic: the synchronous form of the study's A3C",
            keywords=_A2C_KEYWORDS,
            search_space={
                "learning_rate": {"type": "float", "low": 1.0e-5, "high": 3.0e-3, "log": True},
                "ent_coef": {"type": "float", "low": 1.0e-3, "high": 0.1, "log": True},
                "gamma": {"type": "categorical", "choices": [0.99, 0.995, 0.999]},
                "gae_lambda": {"type": "float", "low": 0.9, "high": 1.0},
                "n_steps": {"type": "categorical", "choices": [5, 8, 16, 32]},
            },
            steps_per_s=40_106,
        ),
        AlgoSpec(
            "trpo",
            "TRPO",
            "#9467bd",
            "sb3_contrib",
            "TRPO",
            log_unit="rollout",
            default_n_steps=2048,
            adam=True,
            normalize_reward=True,
            action_spaces=_PER_CELL,
            hyperparams=_TRPO_HYPERPARAMS,
            description="Trust-region policy optimisation (sb3-contrib)",
            keywords=_TRPO_KEYWORDS,
            search_space={
                "learning_rate": {"type": "float", "low": 1.0e-4, "high": 3.0e-3, "log": True},  # the critic's
                "gamma": {"type": "categorical", "choices": [0.99, 0.995, 0.999]},
                "gae_lambda": {"type": "float", "low": 0.9, "high": 0.99},
                "target_kl": {"type": "float", "low": 1.0e-3, "high": 0.05, "log": True},
                "n_critic_updates": {"type": "int", "low": 5, "high": 30},
            },
            steps_per_s=7_538,
        ),
        AlgoSpec(
            # sb3-contrib's ARS with the candidates evaluated side by side on the batch's packs and
            # every simulated transition counted (bmsrl/ars.py says why the library's loop cannot)
            "ars",
            "ARS",
            "#8c564b",
            "bmsrl.ars",
            "BatchedARS",
            log_unit="iteration",
            hyperparams=_ARS_HYPERPARAMS,
            features_extractor=False,
            description="Augmented random search (sb3-contrib's ARS, candidates evaluated on the batch's packs)",
            keywords=_ARS_KEYWORDS,
            # n_delta stays 64 (one direction per pack, n_top = n_delta: see _ARS_HYPERPARAMS)
            search_space={
                "learning_rate": {"type": "float", "low": 1.0e-3, "high": 0.1, "log": True},
                "delta_std": {"type": "float", "low": 0.01, "high": 0.3, "log": True},
            },
            steps_per_s=133_387,
        ),
    )
}


def get(name: str) -> AlgoSpec:
    """The spec of ``name``, or a :class:`UserError` listing the known algorithms."""
    try:
        return ALGOS[name]
    except KeyError:
        raise UserError(f"unknown algorithm {name!r}; choose one of {list(ALGOS)}") from None


def sb3_log_interval(
    name: str, log_interval_steps: int, n_envs: int, hyperparams: dict, episode_steps: int = 200
) -> int:
    """SB3's ``log_interval`` (in the algorithm's own unit) closest to ``log_interval_steps`` env steps.

    ``episode_steps``: decisions of one episode (about 200 on the shipped profiles), for algorithms
    that count episodes; an ARS iteration runs every pack ``n_eval_episodes`` episodes per pass, two
    passes ("+" and "-" candidates) per ``n_envs`` directions.
    """
    spec = get(name)
    if spec.log_unit == "rollout":
        per_unit = hyperparams.get("n_steps", spec.default_n_steps) * n_envs
    elif spec.log_unit == "iteration":  # bmsrl.ars.BatchedARS: each sign's candidates in passes over the packs
        passes = -(-hyperparams.get("n_delta", 8) // n_envs)
        per_unit = 2 * passes * n_envs * hyperparams.get("n_eval_episodes", 1) * episode_steps
    else:
        per_unit = episode_steps
    return max(1, log_interval_steps // per_unit)
