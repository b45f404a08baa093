"""First-party Search-QA environment plugin (entry point ``search``).

Search-R1's protocol as verl-agent runs it: the agent searches a retrieval server with
``<search> query </search>`` and answers with ``<answer> text </answer>``; the reward is
the exact match of the answer. Modules:

- :mod:`~skillzero.plugins.search.plugin`: the hooks (import-light);
- :mod:`~skillzero.plugins.search.config`: ``SearchConfig``;
- :mod:`~skillzero.plugins.search.datasets`: the question loader and the env's tasks;
- :mod:`~skillzero.plugins.search.generate`: the generated QA world (the default task);
- :mod:`~skillzero.plugins.search.env`: ``SearchEnv``;
- :mod:`~skillzero.plugins.search.prompt`: prompt builder and action parser;
- :mod:`~skillzero.plugins.search.scoring`: answer normalisation, exact match, F1;
- :mod:`~skillzero.plugins.search.metrics`: success overall and per data source;
- :mod:`~skillzero.plugins.search.encoder`, :mod:`~skillzero.plugins.search.index`:
  dense encoders, BM25 and faiss indexes;
- :mod:`~skillzero.plugins.search.server`: the micro-batching retrieval server;
- :mod:`~skillzero.plugins.search.client`: the env's pooled HTTP client;
- :mod:`~skillzero.plugins.search.manager`: the server a run starts for itself;
- :mod:`~skillzero.plugins.search.cli`: ``skillzero search serve|index|generate|...``.

See ``docs/search.md``.
"""
