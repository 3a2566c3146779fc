"""Reference lines of the training curves: the return each baseline earns on the very packs the
agents are evaluated on during training (the same seeds, env, profile and reward), so a curve can
be read against "doing nothing" and against the threshold controllers."""

from __future__ import annotations

import numpy as np

from bmsrl.baselines import make_baseline
from bmsrl.env import BalancingTask, pack_rng
from bmsrl.seeds import training_eval_seed
from bmsrl.task_config import task_kwargs


def baseline_returns(cfg: dict, seed: int, baselines: dict[str, dict | None],
                     ocv_table: str | None = None) -> dict[str, np.ndarray]:
    """``{baseline: episode returns}`` on the training-evaluation packs of training seed ``seed``.

    ``baselines`` maps each baseline's name to its settings (``None``: none needed). The packs are
    those the train stage's evaluation callback resets (``training.eval_episodes`` packs, pack k from
    ``SeedSequence(training_eval_seed, spawn_key=(k,))``); each runs one deterministic episode, and
    its return is the sum of the (raw, unnormalised) rewards until its episode ends.
    """
    n = cfg["training"]["eval_episodes"]
    task = BalancingTask(n_packs=n, **task_kwargs(cfg, cfg["profiles"]["train"], ocv_table))
    start = training_eval_seed(cfg, seed)
    drawn = [task.draw_initial_state(pack_rng(start, k)) for k in range(n)]
    soc, soh = np.stack([d[0] for d in drawn]), np.stack([d[1] for d in drawn])
    returns = {}
    for name, settings in baselines.items():
        policy = make_baseline(name, task.params.n_cells, settings)
        obs = task.reset_packs(np.arange(n), soc, soh)
        total, done = np.zeros(n), np.zeros(n, dtype=bool)
        while not done.all():
            actions, _ = policy.predict(obs, deterministic=True)
            obs, reward, terminated, truncated, _ = task.step(actions)
            total += np.where(done, 0.0, reward)
            done |= terminated | truncated
        returns[name] = total
    return returns
