"""The service: one HTTP API (FastAPI) over the library the CLI calls, for annotation leads, data engineers and
ML engineers.

* :mod:`curation.api.tokens` — API tokens (stored hashed) and their roles: viewer < lead < admin.
* :mod:`curation.api.jobs` — background jobs as rows of the store, run by one worker in the service process;
  a restart re-queues what a dead service left running.
* :mod:`curation.api.app` — the routes (``create_app``), the error shape, the audit log; ``curate api`` runs it.
* :mod:`curation.api.settings` — settings from the environment, the secrets check, the API's error kinds.
* :mod:`curation.api.bodies` — request bodies, cursors, upload names.
* :mod:`curation.api.held` — the store held open by the service; :mod:`curation.api.servers` — served models.
"""
