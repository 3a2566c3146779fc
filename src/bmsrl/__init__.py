"""bmsrl: deep-RL passive cell balancing for series Li-ion battery packs.

Importing the package registers the Gymnasium environment ``PassiveBalancing-v0``.
"""

from gymnasium.envs.registration import register

__version__ = "0.1.0"

register(
    id="PassiveBalancing-v0",
    entry_point="bmsrl.env:PassiveBalancingEnv",
)
