"""First-party GRPO-family plugin (entry point ``grpo``): advantage estimators and
PPO-style loss terms.

- :mod:`~skillzero.plugins.grpo.plugin`: the hooks (import-light);
- :mod:`~skillzero.plugins.grpo.advantages`: ``grpo`` (:class:`GRPOAdvantage`) and
  ``gigpo`` (:class:`GiGPOAdvantage`);
- :mod:`~skillzero.plugins.grpo.losses`: ``ppo_clip`` (:class:`PPOClipLoss`), ``kl``
  (:class:`LowVarKLLoss`) and ``entropy`` (:class:`EntropyLoss`);
- ``conf/algo/{grpo,gigpo}.yaml``: ``algo=grpo`` and ``algo=gigpo`` with verl-agent's
  ALFWorld settings.
"""
