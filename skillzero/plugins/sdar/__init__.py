"""First-party SDAR plugin (entry point ``sdar``): self-distilled agentic RL and the
baselines of its codebase.

- :mod:`~skillzero.plugins.sdar.plugin`: the hooks (import-light);
- :mod:`~skillzero.plugins.sdar.losses`: ``sdar`` (:class:`SDARLoss`, the gated
  self-distillation term) and ``skill_sd`` (:class:`SkillSDLoss`);
- :mod:`~skillzero.plugins.sdar.advantages`: ``rlsd`` (:class:`RLSDAdvantage`);
- :mod:`~skillzero.plugins.sdar.teacher`: the teacher prompt and the ``sdar_teacher``
  callback that adds ``teacher_log_probs`` to the batch;
- ``conf/algo/``: ``algo=sdar``, ``grpo_opsd``, ``opsd``, ``skill_sd``, ``rlsd`` and
  ``skill_grpo`` with the released code's settings.

See ``docs/sdar.md``.
"""
