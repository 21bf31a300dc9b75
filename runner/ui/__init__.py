"""``runner ui``: a local web view of runner's history (the ``ui`` extra: ``pip install 'runner[ui]'``).

Nothing here is imported unless ``runner ui`` runs, so the other commands never pay for the
web framework.  The view reads history only through :class:`runner.app.App`, like the CLI:

- :mod:`runner.ui.server`  the Starlette app and the uvicorn server (pages, live output, downloads);
- :mod:`runner.ui.views`   what each page shows, as plain data;
- :mod:`runner.ui.metrics` scalar metrics found in an experiment's artifacts (CSV, JSON lines, TensorBoard).
"""
