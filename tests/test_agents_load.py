"""bmsrl.agents.load_to_act: a model loaded to act (without its optimizer, whose construction imports
torch._dynamo) predicts exactly what the model loaded the library's way predicts."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

from bmsrl import algos
from bmsrl.agents import _NoOptimizer, algorithm_class, load_to_act
from bmsrl.config import load_config
from bmsrl.learning import features_of, new_model
from bmsrl.vec_env import BatchedBalancingVecEnv


@pytest.mark.parametrize(
    ("algo", "features"), [*((name, "raw") for name in algos.ALGOS), ("ppo", "cell_set_physics"), ("dqn", "cell_set")]
)
def test_a_model_loaded_to_act_predicts_as_the_library_loads_it(tmp_path, algo, features):
    cfg = load_config()
    cfg["training"]["features"] = features
    env = BatchedBalancingVecEnv(8)  # 8 x n_steps 32: one minibatch of 256
    hyperparams = {k: v for k, v in cfg["training"]["hyperparams"][algo].items() if k != "buffer_size"}
    if "buffer_size" in cfg["training"]["hyperparams"][algo]:
        hyperparams["buffer_size"] = 1000  # the test's model, not the study's replay memory
    extractor = features_of(cfg) if algos.get(algo).features_extractor and features != "raw" else None
    if features != "raw" and extractor is None:
        pytest.skip(f"{algo} takes no features extractor")
    model = new_model(algo, env, seed=1, hyperparams=hyperparams, features=extractor)
    model.save(tmp_path / "model.zip")
    library = algorithm_class(algo).load(tmp_path / "model.zip", device="cpu")
    acting = load_to_act(algorithm_class(algo), tmp_path / "model.zip")
    if algo != "ars":  # ARS's policy has no optimizer
        assert isinstance(acting.policy.optimizer, _NoOptimizer)
    rng = np.random.default_rng(0)
    obs = rng.uniform(-1.0, 1.0, (500, *env.observation_space.shape)).astype(np.float32)
    np.testing.assert_array_equal(
        acting.predict(obs, deterministic=True)[0], library.predict(obs, deterministic=True)[0]
    )
    if "action_masks" in inspect.signature(library.predict).parameters:
        masks = rng.random((500, env.task.n_actions)) < 0.5
        masks[:, 0] = True  # all shunts open is always allowed
        np.testing.assert_array_equal(
            acting.predict(obs, deterministic=True, action_masks=masks)[0],
            library.predict(obs, deterministic=True, action_masks=masks)[0],
        )
