"""bmsrl: deep-RL passive cell balancing for series Li-ion battery packs.

Importing the package registers the Gymnasium environment ``PassiveBalancing-v0``.
"""

__version__ = "0.1.0"

try:
    from gymnasium.envs.registration import register
except ModuleNotFoundError:  # the Snakefile reads bmsrl.config where only Snakemake is installed
    pass
else:
    register(id="PassiveBalancing-v0", entry_point="bmsrl.env:PassiveBalancingEnv")
