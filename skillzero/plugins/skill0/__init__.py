"""First-party SKILL0 plugin (entry point ``skill0``): skills at training, zero at
inference (arXiv 2604.02268).

- :mod:`~skillzero.plugins.skill0.plugin`: the hooks (import-light);
- :mod:`~skillzero.plugins.skill0.curriculum`: :class:`SkillCurriculum`, the budget
  schedule and helpfulness ranking (pure logic);
- :mod:`~skillzero.plugins.skill0.callback`: the ``skill0_curriculum`` trainer callback;
- ``conf/algo/skill0.yaml``: ``algo=skill0`` (GRPO + PPO clip + entropy bonus, no KL,
  the curriculum callback, and ``skills=category``).

See ``docs/skills.md``.
"""
