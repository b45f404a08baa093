"""First-party skill banks and skill providers (entry point ``skills``).

- :mod:`~skillzero.plugins.skills.plugin`: the hooks (import-light);
- :mod:`~skillzero.plugins.skills.bank`: :class:`SkillBank` and :func:`load_bank`
  (SkillRL-style JSON, or a folder of Markdown files with ``skill_mapping.json``);
- :mod:`~skillzero.plugins.skills.providers`: the ``category``, ``all`` and
  ``embedding`` providers;
- :mod:`~skillzero.plugins.skills.embedding`: the all-MiniLM-L6-v2 sentence encoder;
- ``banks/``: the banks shipped with skillzero (``skills.bank=alfworld``).

See ``docs/skills.md``.
"""
