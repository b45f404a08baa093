"""First-party WebShop environment plugin (entry point ``webshop``).

WebShop (Yao et al. 2022) in one process, without Flask, Java or a second environment:
the shop's pages as text, its search engine (BM25), its purchase reward, its goals and
splits, verl-agent's observations, rewards and validity rules, and prompts with a skill
slot. Modules:

- :mod:`~skillzero.plugins.webshop.plugin`: the hooks (import-light);
- :mod:`~skillzero.plugins.webshop.config`: ``WebshopConfig``;
- :mod:`~skillzero.plugins.webshop.data`: where the shop comes from, tasks of a split;
- :mod:`~skillzero.plugins.webshop.catalogue`: readers for WebShop's product files;
- :mod:`~skillzero.plugins.webshop.goals`: human and synthetic goals, splits;
- :mod:`~skillzero.plugins.webshop.shop`: the compiled, memory-mapped shop folder;
- :mod:`~skillzero.plugins.webshop.search`: the BM25 index (bm25s);
- :mod:`~skillzero.plugins.webshop.simulator`: pages, clickables, sessions;
- :mod:`~skillzero.plugins.webshop.reward`: ``get_reward`` and its parts;
- :mod:`~skillzero.plugins.webshop.env`: ``WebshopEnv``;
- :mod:`~skillzero.plugins.webshop.prompt`: prompt builder and action parser;
- :mod:`~skillzero.plugins.webshop.metrics`: success, score, per-category success;
- :mod:`~skillzero.plugins.webshop.generate`: the project's own catalogues;
- :mod:`~skillzero.plugins.webshop.check`: ``skillzero webshop check | build | generate``.

See ``docs/webshop.md``.
"""
